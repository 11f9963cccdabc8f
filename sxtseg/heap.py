"""Give freed memory back to the operating system: less peak memory per block.

Segmenting a block allocates and frees thousands of buffers of 4-32 MiB
(windows of network activations and outputs).  glibc's ``malloc`` serves
buffers above its *mmap threshold* with their own memory mapping, returned
to the system on ``free``; smaller ones come from the heap, which keeps what
was freed.  The threshold starts at 128 KiB but rises to the size of each
larger mapped buffer that is freed (up to 32 MiB), so after the first few
windows those buffers are served from the heap, which fragments and holds
its high-water mark for the rest of the process.

:func:`return_large_buffers_to_os` fixes the threshold at
:data:`MMAP_THRESHOLD_BYTES` for the process, with ``mallopt``.  Measured on
this project's 2-core VM (docs/benchmarks.md, "Peak memory"): ``segment``
peak resident memory 1.64 -> 1.44 GiB for a 128x512x512 phantom (one block)
and 2.05 -> 1.65 GiB for 256x512x512 (two blocks), but the demo cell's
segmentation took 30-35% longer (every batch's buffers are mapped, and their
pages faulted in, afresh).  So it is not on by default: call it yourself, or
set ``SXTSEG_MALLOC_TUNING=on`` and :func:`sxtseg.segment` calls it, when
memory is what limits you.  It does nothing where the C library is not
glibc, or when you have tuned malloc through its own environment variables
(``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``,
``MALLOC_MMAP_MAX_`` or ``GLIBC_TUNABLES``).

For a volume of several blocks, :func:`sxtseg.segment` calls
:func:`release_free_memory` (glibc's ``malloc_trim``) after each block and
:func:`sxtseg.run` before each stage: the pages of what a block or stage
freed go back to the system, so the heap it leaves behind does not stack on
the next one's peak.  The call takes 0.03-0.06 s at 256x512x512, but the
pages given back must be faulted in again when the heap grows: on the
one-block demo cell that cost 0.1-0.2 s for nothing, so a volume of one
block is left alone.

Examples
--------
>>> from sxtseg.heap import release_free_memory, return_large_buffers_to_os, wanted
>>> wanted() in (True, False)
True
>>> release_free_memory() in (True, False)
True
"""

from __future__ import annotations

import ctypes
import os

__all__ = ["MMAP_THRESHOLD_BYTES", "release_free_memory", "return_large_buffers_to_os", "wanted"]

#: Buffers of at least this many bytes get their own mapping (returned to the system when freed).
MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt parameter number in glibc's malloc.h
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
                  "GLIBC_TUNABLES")
_done = False
_libc = None


def _glibc():
    """The C library when it is glibc (loaded once), else None."""
    global _libc
    if _libc is None:
        try:
            version = os.confstr("CS_GNU_LIBC_VERSION") or ""
        except (ValueError, OSError, AttributeError):  # not a glibc system (or no confstr at all)
            version = ""
        try:
            _libc = ctypes.CDLL("libc.so.6") if version.startswith("glibc") else False
        except OSError:
            _libc = False
    return _libc or None


def release_free_memory() -> bool:
    """Return the free pages of the heap to the operating system (glibc's ``malloc_trim(0)``).

    Nothing in use is touched: only pages that hold no live allocation are
    given back, so resident memory drops to what the process still uses.

    Returns
    -------
    bool
        Whether any memory was given back (False as well where the C
        library is not glibc).
    """
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def wanted() -> bool:
    """Whether the user asked for it: ``SXTSEG_MALLOC_TUNING=on`` (or 1, yes, true)."""
    return os.environ.get("SXTSEG_MALLOC_TUNING", "").lower() in ("on", "1", "yes", "true")


def return_large_buffers_to_os() -> str:
    """Fix glibc's mmap threshold at :data:`MMAP_THRESHOLD_BYTES` for this process (once).

    Returns
    -------
    str
        What happened: ``"set"``, ``"already set"`` (an earlier call set
        it), ``"not glibc"`` or ``"left to the user"`` (a glibc malloc
        environment variable is set).
    """
    global _done
    if _done:
        return "already set"
    if any(name in os.environ for name in _USER_SETTINGS):
        return "left to the user"
    libc = _glibc()
    if libc is None:
        return "not glibc"
    if libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) != 1:
        return "not glibc"
    _done = True
    return "set"
