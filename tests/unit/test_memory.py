"""release_memory: collects garbage and trims the C heap, whatever the host."""

from __future__ import annotations

import gc
import weakref

import zspace.memory as memory


class _Cycle:
    def __init__(self):
        self.me = self


def test_release_memory_collects_cycles_and_trims_the_heap(monkeypatch):
    trims = []
    monkeypatch.setattr(memory, "_TRIM", trims.append)
    gc.disable()  # only release_memory may collect the cycle
    try:
        garbage = _Cycle()
        alive = weakref.ref(garbage)
        del garbage
        assert alive() is not None
        memory.release_memory()
        assert alive() is None
    finally:
        gc.enable()
    assert trims == [0]  # malloc_trim(0): give every free page back


def test_release_memory_skips_the_trim_where_there_is_none(monkeypatch):
    monkeypatch.setattr(memory, "_TRIM", None)
    memory.release_memory()  # no C heap to trim (not glibc): still collects, never raises
