"""Give freed memory back to the operating system between long stages.

CPython and PyTorch free tensors as soon as they are unreferenced, but glibc's allocator keeps
freed heap pages for reuse; after a training run the process can hold hundreds of MB it no
longer uses, and the next stage's peak stacks on top. `malloc_trim(0)` returns those pages.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys

import torch


def _malloc_trim():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
        return None


_TRIM = _malloc_trim()


def release_memory() -> None:
    """Collect garbage, empty the CUDA cache and trim the C heap (where that exists)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    if _TRIM is not None:
        _TRIM(0)
