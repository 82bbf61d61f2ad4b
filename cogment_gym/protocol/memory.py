"""glibc's malloc settings for processes that move large messages (batched image observations).

Each tick of a batched trial of 32 uint8[84,84,3] observations allocates and frees several
677 kB buffers (the payload, its copy in the ObservationSet, the serialised message, gRPC's
slices). With glibc's default settings every one of them is fresh memory: buffers above the
mmap threshold are mmapped and unmapped, and once the threshold has adapted upwards, the heap is
trimmed back to the kernel as soon as more than twice that is free at its top. Either way every
page of every buffer is faulted in again at every tick (on this VM: ~2.3 ms of the env service's
loop thread per tick against ~0.75 ms with the settings below; docs/performance.md).

:func:`keep_large_buffers` raises the mmap threshold to :data:`MMAP_THRESHOLD` and the trim
threshold to :data:`TRIM_THRESHOLD`, once per process: such buffers then come from the heap and
go back to it, and the process keeps up to ``TRIM_THRESHOLD`` bytes of freed memory per heap
instead of returning it at once. Called only when a message above :data:`LARGE_MESSAGE` bytes is
seen (a CartPole trial never changes anything). Left alone: when the user set any
``MALLOC_*`` variable of glibc's own or malloc tunables in ``GLIBC_TUNABLES``, when ``COGMENT_GYM_MALLOC_TUNING=0``, and where the C
library is not glibc.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

__all__ = ["LARGE_MESSAGE", "MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_large_buffers", "tuned"]

logger = logging.getLogger(__name__)

#: Bytes of a message from which the settings are worth it (as the same-host socket's cut).
LARGE_MESSAGE = 64 * 1024
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 128 * 1024 * 1024

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_state = {"done": False, "tuned": False}


def _user_settings() -> bool:
    """Whether the user tuned glibc's malloc (``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_ARENA_MAX``,
    ``GLIBC_TUNABLES=glibc.malloc...``)."""
    return any(name.startswith("MALLOC_") for name in os.environ) or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")


def keep_large_buffers() -> bool:
    """Apply the settings of the module doc, once per process; whether they are in place."""
    if _state["done"]:
        return _state["tuned"]
    _state["done"] = True
    if os.environ.get("COGMENT_GYM_MALLOC_TUNING", "1") == "0" or _user_settings():
        return False
    if platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # The trim threshold first: setting either one ends glibc's adaptive thresholds.
    ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    _state["tuned"] = ok
    logger.debug("malloc settings for large messages %s", "applied" if ok else "refused by mallopt")
    return ok


def tuned() -> bool:
    """Whether :func:`keep_large_buffers` applied the settings in this process."""
    return _state["tuned"]
