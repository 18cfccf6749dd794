"""The garbage-collector policy of the long-running engine process.

Owns: `tune` (the collector's thresholds, set once at node start), `freeze_long_lived` (after the
executors started) and `unfreeze` (at node stop).

Why: CPython's cyclic collector stops the whole process -- every actor runs on the one trio
thread -- and the cost of a full (generation 2) collection grows with the number of live objects.
A node with 10,000 executors holds about 800,000 long-lived objects (actors, mailboxes, views,
caches); one full collection then costs about 0.8 s, two slots in which no executor decides
anything, and a burst of allocation (one ranking change reaching every executor) set off six of
them: 4.7 s of an 11.9 s fan-out to 10,000 users (``python -m bench executors``). So:

- a young collection runs every ``GEN0_THRESHOLD`` container allocations instead of CPython's 700.
  A decision's short-lived objects (rows, plans, messages) are freed by reference counting before
  a collection sees them, so far fewer are promoted; the garbage a collection may wait for is
  bounded by that many objects (a few MB);
- after start-up, once the executors run, one full collection clears what start-up left and
  `gc.freeze` moves everything still alive into the permanent generation, which later
  collections skip. Cycles among those objects are collected again only after `unfreeze`, which
  the node calls when it stops (an in-process test that starts many nodes gets its memory back).

May import: the standard library.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import Final

__all__ = ["GEN0_THRESHOLD", "GEN1_THRESHOLD", "GEN2_THRESHOLD", "freeze_long_lived", "tune", "unfreeze"]

GEN0_THRESHOLD: Final = 50_000
GEN1_THRESHOLD: Final = 20
GEN2_THRESHOLD: Final = 100

log = logging.getLogger("xorj.gc")


def tune() -> None:
    """Set the engine's collector thresholds (idempotent)."""
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)


def freeze_long_lived() -> int:
    """One full collection, then every surviving object into the permanent generation; returns how
    many objects are frozen now. Call when the long-lived state is built (the executors started)."""
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info("long-lived objects frozen", extra={
        "objects": frozen, "pause_ms": round((time.perf_counter() - started) * 1e3, 1)})
    return frozen


def unfreeze() -> None:
    """Hand the frozen objects back to the collector (the node is stopping)."""
    gc.unfreeze()
