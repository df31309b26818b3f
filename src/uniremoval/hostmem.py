"""Host memory allocator tuning for CPU inference and training.

PyTorch's CPU tensors come straight from ``malloc``. glibc serves blocks above its mmap
threshold (dynamic, starting at 128 KiB) with fresh ``mmap`` pages and returns them to the
kernel on ``free``, so every full-resolution activation of a tile (a 384 px map of 32
float32 channels is 19 MB) is page-faulted and zeroed anew by the kernel, pass after pass.
On the 2-core machine this made NAFNet-small's 384 px tile 166 ms instead of 113-125 ms:
the network spent a quarter of its time in page faults.

Raising the mmap threshold to its maximum (32 MiB on 64-bit glibc) and the trim threshold
keeps freed blocks in the heap for the next pass. Peak memory does not grow (the same blocks
are reused); the heap simply keeps its high-water mark between photos.

Only glibc Linux is tuned; elsewhere this does nothing. ``UNIREMOVAL_MALLOC_TUNE=0`` turns it
off (for example when the process loads its own allocator such as jemalloc).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

#: glibc's ``mallopt`` parameter numbers (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc caps the mmap threshold at HEAP_MAX_SIZE / 2 = 32 MiB on 64-bit systems.
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 512 * 1024 * 1024

_tuned: bool | None = None


def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds once per process (see the module docstring).

    Returns True when the thresholds are in effect. Safe to call many times.
    """
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if os.environ.get("UNIREMOVAL_MALLOC_TUNE", "1") == "0":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
        ok = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    except (OSError, AttributeError):
        return False
    _tuned = ok
    return ok
