"""The demo's web server: a Voila kernel manager that bounds the number of live kernels.

Voila starts one kernel (about 160 MB with the demo loaded) for every page view, reloads
included. ``demo/voila.json`` (what ``make demo`` passes) sets jupyter_server's idle culler, so
that a kernel whose page is gone is shut down, and makes Voila use :class:`DemoKernelManager`,
which refuses a new page once ``max_kernels`` kernels are alive: the browser gets an HTTP 503
page that says why, instead of a kernel the server cannot afford.
"""

from __future__ import annotations

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado.web import HTTPError
from traitlets import Integer


def full_message(live: int, cull_timeout: int) -> str:
    """The text of the "too many users" page (one line: it is the HTTP reason phrase)."""
    wait = f"a page closed less than {cull_timeout} s ago still holds one" if cull_timeout else ""
    return (
        f"The demo is full: {live} {'page is' if live == 1 else 'pages are'} open, "
        "the most this server allows. "
        f"Try again in a minute{f' ({wait})' if wait else ''}."
    )


class DemoKernelManager(AsyncMappingKernelManager):
    """``AsyncMappingKernelManager`` that starts no kernel beyond ``max_kernels`` live ones."""

    max_kernels = Integer(
        10,
        config=True,
        help="""The most kernels alive at once (one per open demo page, about 160 MB each).
        A page asked for beyond it gets an HTTP 503 page saying the demo is full.
        0 or less: no limit.""",
    )

    def live_kernels(self) -> int:
        """Kernels running, starting or shutting down (each still holds its memory)."""
        # a starting kernel is in _pending_kernels only; one shutting down is in both
        return len(set(self.list_kernel_ids()) | set(self._pending_kernels))

    async def start_kernel(self, *, kernel_id: str | None = None, path=None, **kwargs) -> str:
        # No await between this check and jupyter_client registering the new kernel as
        # pending: two page views at once cannot both pass it at max_kernels - 1.
        if kernel_id is None or kernel_id not in self:
            live = self.live_kernels()
            if 0 < self.max_kernels <= live:
                self.log.warning(
                    "Refused a kernel: %d alive, max_kernels=%d", live, self.max_kernels
                )
                raise HTTPError(503, reason=full_message(live, self.cull_idle_timeout))
        return await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
