"""The C heap keeps freed pages for NumPy's next temporary: ``keep_freed_pages``.

A run allocates and frees thousands of arrays of 0.1 to 25 MB (every elementwise step of a row
block, every node's output). glibc's malloc serves each allocation above its mmap threshold (128 KB
at start; it rises towards 32 MB only as such blocks are freed) with fresh pages from the kernel,
gives them back at ``free``, and also trims the top of its heap beyond 128 KB of free space. The
next array of that size then faults in every one of its 4 KB pages again. On the virtual machines
this project runs on a page fault costs microseconds: a 128 x 768 float64 requantization (seven
NumPy passes) took 0.50-0.73 ms with the default settings and 0.18 ms with the pages kept, and a
RoBERTa-base forward at 1 x 128 0.42-0.58 s against 0.34-0.37 s (``benchmarks/speed.py``).

``keep_freed_pages()`` sets, once per process, through glibc's ``mallopt``:

    M_MMAP_THRESHOLD  32 MB    blocks below it come from the heap, whose pages stay mapped
    M_TRIM_THRESHOLD  256 MB   the heap's top is returned to the kernel only beyond this much free
    M_TOP_PAD         128 MB   and then 128 MB of it is kept

So a process keeps at most about 256 MB of freed memory mapped for reuse, beyond what it holds; the
peak of a run does not grow (the same arrays are live at once). It is process-wide (torch's CPU
tensors, in the same process, are served by the same malloc). ``intref.run`` applies it before its
first node. ``INTREF_MALLOC=system`` in the environment leaves malloc as it is; any other value
than ``system`` or ``keep`` is refused. On a C library other than glibc nothing is changed.
Results never depend on it: only where NumPy's arrays come from.
"""

from __future__ import annotations

import ctypes
import os
from typing import Callable, Mapping, Optional

from .errors import IntrefError

ENVIRONMENT_VARIABLE = "INTREF_MALLOC"
CHOICES = ("keep", "system")
SETTINGS = (("M_MMAP_THRESHOLD", -3, 32 << 20), ("M_TRIM_THRESHOLD", -1, 256 << 20), ("M_TOP_PAD", -2, 128 << 20))
# (name, glibc's mallopt parameter number from <malloc.h>, value in bytes)

_OUTCOME: Optional[str] = None


def glibc_mallopt() -> Optional[Callable[[int, int], int]]:
    """The process's ``mallopt`` when its C library is glibc (it exports ``gnu_get_libc_version``), else None."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    mallopt = libc.mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt


def apply_settings(environ: Mapping[str, str], mallopt: Optional[Callable[[int, int], int]]) -> str:
    """Apply ``SETTINGS`` through ``mallopt`` unless ``environ`` opts out; return what was done, in words.
    Raises ``IntrefError`` naming the variable for a value other than ``CHOICES``, and for a setting
    glibc refused (``mallopt`` returns 0)."""
    choice = environ.get(ENVIRONMENT_VARIABLE, "keep")
    if choice not in CHOICES:
        raise IntrefError(f"{ENVIRONMENT_VARIABLE}={choice!r}: expected one of {', '.join(CHOICES)}")
    if choice == "system":
        return f"malloc left as it is ({ENVIRONMENT_VARIABLE}=system)"
    if mallopt is None:
        return "malloc left as it is (the C library is not glibc)"
    for name, parameter, value in SETTINGS:
        if mallopt(parameter, value) != 1:
            raise IntrefError(f"glibc refused mallopt({name}, {value}); set {ENVIRONMENT_VARIABLE}=system to run "
                              f"without intref's malloc settings")
    return "freed pages kept: " + ", ".join(f"{name} {value >> 20} MB" for name, _, value in SETTINGS)


def keep_freed_pages() -> str:
    """``apply_settings(os.environ, glibc_mallopt())`` the first time it is called in a process;
    later calls return the first call's outcome."""
    global _OUTCOME
    if _OUTCOME is None:
        _OUTCOME = apply_settings(os.environ, glibc_mallopt())
    return _OUTCOME
