"""`engine.gc_policy`: the collector's thresholds, and the long-lived heap frozen out of the
collector's way and handed back."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from engine import gc_policy


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_tune_sets_the_engines_thresholds() -> None:
    gc.set_threshold(700, 10, 10)
    gc_policy.tune()
    assert gc.get_threshold() == (
        gc_policy.GEN0_THRESHOLD, gc_policy.GEN1_THRESHOLD, gc_policy.GEN2_THRESHOLD)


def test_frozen_objects_are_skipped_until_unfreeze_and_garbage_is_not_frozen() -> None:
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    garbage = weakref.ref(Node())  # unreachable before the freeze: collected by it, not frozen
    kept = Node()
    frozen = gc_policy.freeze_long_lived()
    assert garbage() is None
    assert frozen == gc.get_freeze_count() > 0
    assert all(o is not kept for o in gc.get_objects())  # frozen: the collector no longer sees it
    gc_policy.unfreeze()
    assert gc.get_freeze_count() == 0
    assert any(o is kept for o in gc.get_objects())
