"""Give large freed buffers back to the operating system, so that a block's peak memory is its own.

Segmenting a block allocates and frees thousands of buffers of 4-32 MiB
(windows of network activations and outputs).  glibc's ``malloc`` serves
buffers above its *mmap threshold* with their own memory mapping, returned
to the system on ``free``; smaller ones come from the heap, which keeps what
was freed.  The threshold starts at 128 KiB but rises to the size of each
larger mapped buffer that is freed (up to 32 MiB), so after the first few
windows those buffers are served from the heap, which fragments and holds
its high-water mark for the rest of the process.  Measured on
``sxtseg.segment`` of a 128x512x512 phantom (one block, CPU): peak resident
memory 1.68-1.70 GiB with glibc's default behaviour, 1.45-1.46 GiB with the
threshold fixed at 4 MiB; of a 256x512x512 phantom (two blocks): 2.04-2.12
GiB against 1.67 GiB (docs/benchmarks.md).

:func:`return_large_buffers_to_os` fixes the threshold at
:data:`MMAP_THRESHOLD_BYTES` for the process, with ``mallopt``.  It does
nothing where the C library is not glibc, when the user has tuned malloc
through its own environment variables (``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``, ``MALLOC_MMAP_MAX_`` or
``GLIBC_TUNABLES``), or when ``SXTSEG_MALLOC_TUNING=off``.

Examples
--------
>>> from sxtseg.heap import return_large_buffers_to_os
>>> return_large_buffers_to_os() in ("set", "already set", "not glibc", "left to the user", "off")
True
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["MMAP_THRESHOLD_BYTES", "return_large_buffers_to_os"]

#: Buffers of at least this many bytes get their own mapping (returned to the system when freed).
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt parameter number in glibc's malloc.h
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
                  "GLIBC_TUNABLES")
_done = False


def return_large_buffers_to_os() -> str:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD_BYTES` for this process (once).

    Returns
    -------
    str
        What happened: ``"set"``, ``"already set"`` (an earlier call set
        it), ``"not glibc"``, ``"left to the user"`` (a glibc malloc
        environment variable is set) or ``"off"`` (``SXTSEG_MALLOC_TUNING=off``).
    """
    global _done
    if _done:
        return "already set"
    if os.environ.get("SXTSEG_MALLOC_TUNING", "").lower() in ("off", "0", "no", "false"):
        return "off"
    if any(name in os.environ for name in _USER_SETTINGS):
        return "left to the user"
    try:
        libc_version = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError, AttributeError):  # not a glibc system (or no confstr at all)
        libc_version = ""
    if not libc_version.startswith("glibc"):
        return "not glibc"
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return "not glibc"
    if libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) != 1:
        return "not glibc"
    _done = True
    return "set"
