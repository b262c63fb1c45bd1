"""release_memory: safe to call anywhere, and it gives freed heap back on Linux."""

from __future__ import annotations

import sys

import pytest

from zspace.memory import release_memory


def _resident_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


def test_release_memory_runs_without_error():
    release_memory()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_freed_small_allocations_go_back_to_the_system():
    import ctypes.util

    if "musl" in (ctypes.util.find_library("c") or ""):
        pytest.skip("not glibc")
    # Many small blocks land on the C heap (not mmap), which glibc keeps after they are freed.
    blocks = [bytearray(4096) for _ in range(60_000)]
    pin = blocks[-1]  # keeps the top of the heap in use, so free() alone cannot shrink it
    held = _resident_mb()
    del blocks
    release_memory()
    assert _resident_mb() < held - 100
    del pin
