"""Smoke test of the executors bench (`python -m bench executors`) at a tiny size: every phase runs
against the real local chain and real PostgreSQL and yields a finite figure. The bench's own
checks run too: the fan-out raises unless exactly one signed trade per executor is persisted, the
end-to-end phase unless every trade is CONFIRMED. No figure is compared with a target here (speed
belongs to the bench, not to tests).
"""

from __future__ import annotations

import math

from bench.executors import Sizes, measure


def test_the_executors_bench_runs_every_phase_at_a_tiny_size() -> None:
    raw = measure(Sizes(decisions=30, persisted_decisions=5, fanouts=(25,), trades=6, db_trades=20))
    assert set(raw) == {
        "decision_p50_ms", "decision_p99_ms", "decision_warm_p50_ms", "decision_warm_p99_ms",
        "vault_read_p50_ms", "decision_persisted_p50_ms", "decision_persisted_p99_ms", "fanout_25",
        "trades_per_s", "db_transitions_per_s",
    }
    assert all(math.isfinite(v) and v > 0 for v in raw.values()), raw
    assert raw["decision_p50_ms"] <= raw["decision_p99_ms"]
