"""Process-wide settings for fast CPU inference (what each sweep worker sets up once)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import sys
import threading
import time

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit
_TRIM_THRESHOLD = 1 << 30

_allocator_tuned: bool | None = None


def keep_freed_memory() -> bool:
    """Let glibc reuse freed activation buffers instead of handing them back to the OS.

    Every forward pass allocates and frees the same 1-30 MB activations. By default glibc serves
    blocks above its mmap threshold with fresh mappings and trims the top of the heap back to
    the OS, so each pass page-faults all its buffers in again: 15-20% of a 2-core sweep's time
    (``benchmarks/bench_sweep.py``). Raising both thresholds keeps the memory in the process: its
    resident size stays at its peak instead of shrinking between passes.

    Idempotent. Returns True when the allocator was tuned; False where libc is not glibc
    (macOS, musl, Windows), which changes nothing.
    """
    global _allocator_tuned
    if _allocator_tuned is None:
        _allocator_tuned = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):
                return False
            _allocator_tuned = bool(
                mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
                and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
            )
    return _allocator_tuned


def set_threads(threads: int) -> None:
    """Use ``threads`` threads in OpenCV and torch (one worker's share of the cores)."""
    import cv2

    cv2.setNumThreads(threads)
    if "torch" in sys.modules:  # never import torch just to configure it
        import torch

        torch.set_num_threads(threads)


def exit_with_parent(parent: int, interval: float = 1.0) -> threading.Thread:
    """End this process within about ``interval`` seconds of the death of ``parent``, the pid
    that started it (a sweep's worker initializer: ``exit_with_parent(os.getpid())`` pickled).

    A loky worker (about 450 MB with a model loaded) never checks its parent: after a SIGKILLed
    sweep it finishes the jobs already queued to it, then waits joblib's idle timeout (300 s)
    and 30 s more before it exits. A daemon thread here polls ``os.getppid()``: once the process
    has been re-parented, the sweep is gone and ``os._exit`` ends it at once (a normal exit could
    block on the dead parent's queues). Portable to every POSIX system, unlike Linux's
    ``PR_SET_PDEATHSIG``, which fires when the *thread* that spawned the worker exits. Returns
    the thread.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    thread = threading.Thread(target=watch, name="iislib-exit-with-parent", daemon=True)
    thread.start()
    return thread


def worker_pool(n_workers: int) -> contextlib.AbstractContextManager:
    """joblib's configuration for ``n_workers`` loky worker processes that exit with this one
    (``exit_with_parent``): ``with worker_pool(2): Parallel()(...)``. A sweep and ``make
    figures`` both use it."""
    from joblib import parallel_config

    return parallel_config(backend="loky", n_jobs=n_workers, initializer=exit_with_parent,
                           initargs=(os.getpid(),))  # fmt: skip
