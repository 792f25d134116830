"""A Jupyter kernel client for headless runs that cannot sleep through a reply.

Seen here (papermill 2.7, nbclient 0.11, jupyter_client 8.10, pyzmq 27.3; ipykernel 7.4 and
6.31 alike): after the widget cell of ``02_qualitative`` in a full run, the kernel sends its
``execute_reply`` (its timestamp is in the cell metadata) and goes idle, but the client's
asyncio poll of the shell socket misses the socket's edge-triggered wake-up and sleeps until
its timeout ends, when it finds the reply waiting. papermill's default timeout is none, so
``make figures`` hung forever; with a cell timeout it waited that long and then went on.

``SlicedPollKernelManager`` (pass it as papermill's ``kernel_manager_class``) builds clients
whose channels poll in slices of ``POLL_SLICE`` seconds: each slice's end checks the socket
again, so a missed wake-up costs at most one slice and timeouts keep their meaning.
"""

from __future__ import annotations

from queue import Empty
from time import monotonic
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import Type

POLL_SLICE = 1.0


class SlicedPollChannel(AsyncZMQSocketChannel):
    """``get_msg`` that polls in ``POLL_SLICE``-second slices until ``timeout`` (None: forever)."""

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else monotonic() + timeout
        while True:
            left = POLL_SLICE if deadline is None else deadline - monotonic()
            try:
                return await super().get_msg(timeout=max(0.0, min(POLL_SLICE, left)))
            except Empty:
                if deadline is not None and monotonic() >= deadline:
                    raise


class SlicedPollKernelClient(AsyncKernelClient):
    shell_channel_class = Type(SlicedPollChannel)
    iopub_channel_class = Type(SlicedPollChannel)


class SlicedPollKernelManager(AsyncKernelManager):
    client_factory = Type(SlicedPollKernelClient)  # what ``client()`` builds
