"""Reaching a Dask scheduler: how long to wait, and a check that one answers at an address.

``distributed.Client`` bounds only the TCP connection by its timeout. A socket that accepts and
stays silent, or an HTTP server, leaves it waiting for the handshake forever, and a Client that
failed to start blocks the interpreter's exit for twice its timeout while it closes. So the sweep
(and the CLI, before its heavy imports) first asks the address for its identity, every step
under one deadline, and names the address when nothing answers as a scheduler.

Imports Dask only when called: ``iislib evaluate --scheduler`` fails fast on a bad address.
"""

from __future__ import annotations

from typing import Any

DEFAULT_TIMEOUT = 30.0  # seconds: Dask's own default for distributed.comm.timeouts.connect
NEEDS_DISTRIBUTED = (
    'scheduler= needs Dask distributed: pip install "iislib[cluster]" (or "dask[distributed]")'
)


def connect_timeout() -> float:
    """Seconds to wait for a Dask scheduler: Dask's ``distributed.comm.timeouts.connect`` (30 s
    unless configured: ``dask.config.set``, ``DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s``)."""
    try:
        import dask.config
        import distributed  # noqa: F401  (it registers the distributed.* defaults)
        from dask.utils import parse_timedelta
    except ImportError:
        return DEFAULT_TIMEOUT
    return float(parse_timedelta(dask.config.get("distributed.comm.timeouts.connect"), "s"))


def check_scheduler(address: str, timeout: float) -> None:
    """Return once a Dask scheduler at ``address`` has told its identity; else, after at most
    ``timeout`` seconds, raise ValueError naming the address and what happened.

    Runs in a thread of its own, so that it works inside a running event loop (a Jupyter
    kernel). TLS settings come from Dask's configuration, as for a ``Client``.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        from distributed.comm import connect
        from distributed.security import Security
    except ImportError as e:
        raise ValueError(NEEDS_DISTRIBUTED) from e

    async def identity() -> Any:
        comm = await connect(address, timeout=timeout,
                             **Security().get_connection_args("client"))  # fmt: skip
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    async def bounded() -> Any:
        return await asyncio.wait_for(identity(), timeout)

    def fail(why: str) -> ValueError:
        return ValueError(f"cannot reach the Dask scheduler {address!r}: {why}")

    with ThreadPoolExecutor(1, thread_name_prefix="iislib-dask-check") as pool:
        try:
            reply = pool.submit(asyncio.run, bounded()).result()
        except (TimeoutError, asyncio.TimeoutError):  # distinct classes before Python 3.11
            raise fail(f"nothing answered as a Dask scheduler within {timeout:g} s (a "
                       "scheduler's address looks like tcp://host:8786)") from None  # fmt: skip
        except (OSError, ValueError, TypeError) as e:
            raise fail(" ".join(str(e).split()) or type(e).__name__) from e
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind != "Scheduler":
        raise fail(f"it answered as a {kind or type(reply).__name__}, not a Dask scheduler")
