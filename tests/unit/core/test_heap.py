"""The server process's garbage-collector settings (fhir_server.core.heap)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from fhir_server.core import heap


@pytest.fixture
def interpreter_defaults() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("interpreter_defaults")
def test_settle_freezes_the_start_up_heap_and_collects_less_often() -> None:
    kept = {"start-up": ["state"]}
    generation_1, generation_2 = gc.get_threshold()[1:]
    heap.settle()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == (heap.GENERATION_0, generation_1, generation_2)
    assert not any(obj is kept for obj in gc.get_objects())  # frozen: never traversed again
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1  # garbage made after settling is still collected
