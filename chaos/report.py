"""The chaos run's results: per-scenario records, the seed suite's thirteen checks, the table and
the JSON report.

Owns: ``ScenarioResult`` (name, category, critical, passed, invariants with their figures,
recovery time, faults injected, duration, the error that stopped it if any), ``SuiteReport``
(suite, seed, the toxiproxy server used, the scenarios, the seed checks) with its verdict --
passed only if every critical scenario passed -- and its two renderings: ``table()`` for the
terminal and ``as_json()`` / ``write_report()`` for the file.

Failure it contains: none; a report is data. Writing the file is atomic (temp file + rename), so
a run interrupted while writing leaves the previous report or none, never half of one.

May import: the standard library, attrs, `chaos.invariants`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from chaos.invariants import InvariantResult

__all__ = ["ScenarioResult", "SuiteReport", "seed_checks", "write_report"]


@attrs.frozen
class ScenarioResult:
    name: str
    category: str
    critical: bool
    description: str
    invariants: tuple[InvariantResult, ...]
    recovery_s: float | None
    faults: tuple[Mapping[str, Any], ...]
    duration_s: float
    intents: int = 0
    refused: tuple[str, ...] = ()  # drill commands the engine refused (the first few, verbatim)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.invariants) and all(i.passed for i in self.invariants)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "category": self.category, "critical": self.critical,
            "description": self.description, "passed": self.passed, "recovery_s": self.recovery_s,
            "duration_s": self.duration_s, "intents": self.intents, "refused": list(self.refused),
            "error": self.error,
            "invariants": [i.as_json() for i in self.invariants], "faults": [dict(f) for f in self.faults],
        }


def seed_checks(results: Sequence[ScenarioResult],
                checks: Mapping[int, tuple[tuple[str, str], ...]]) -> dict[int, dict[str, Any]]:
    """Each numbered check: passed when every one of its (scenario, invariant) pairs was evaluated
    and passed -- in that scenario, or for ``*`` in every scenario that evaluated it. A pair whose
    scenario did not run, or did not evaluate it, fails the check (no evidence is no pass)."""
    out: dict[int, dict[str, Any]] = {}
    for number, pairs in sorted(checks.items()):
        evidence: list[dict[str, Any]] = []
        passed = True
        for scenario, name in pairs:
            found = [(r.name, i) for r in results if scenario in ("*", r.name)
                     for i in r.invariants if i.name == name]
            passed = passed and bool(found) and all(i.passed for _, i in found)
            evidence.extend({"scenario": s, "invariant": i.name, "passed": i.passed,
                             "figures": dict(i.figures)} for s, i in found)
            if not found:
                evidence.append({"scenario": scenario, "invariant": name, "passed": False,
                                 "figures": {}, "missing": True})
        out[number] = {"invariants": [f"{s}:{n}" for s, n in pairs], "passed": passed,
                       "evidence": evidence}
    return out


@attrs.frozen
class SuiteReport:
    suite: str
    seed: int
    toxiproxy: Mapping[str, Any]
    started_at: str
    duration_s: float
    scenarios: tuple[ScenarioResult, ...]
    checks: Mapping[int, Mapping[str, Any]] = attrs.field(factory=dict)
    workdir: str | None = None

    @property
    def passed(self) -> bool:
        return bool(self.scenarios) and all(s.passed for s in self.scenarios if s.critical)

    def as_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite, "seed": self.seed, "toxiproxy": dict(self.toxiproxy),
            "started_at": self.started_at, "duration_s": self.duration_s, "passed": self.passed,
            "scenarios": [s.as_json() for s in self.scenarios],
            "checks": {str(k): dict(v) for k, v in self.checks.items()}, "workdir": self.workdir,
        }

    def table(self) -> str:
        rows = [("scenario", "category", "critical", "passed", "recovery s")]
        for s in self.scenarios:
            rows.append((s.name, s.category, "yes" if s.critical else "no", "PASS" if s.passed else "FAIL",
                         "-" if s.recovery_s is None else f"{s.recovery_s:.1f}"))
        widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
                 for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        for s in self.scenarios:
            for i in s.invariants:
                if not i.passed:
                    lines.append(f"  {s.name}: {i.name} FAILED -- {i.detail}")
            if s.error:
                lines.append(f"  {s.name}: stopped by {s.error}")
            if s.refused:
                lines.append(f"  {s.name}: drill trades refused, first: {s.refused[0]}")
        if self.checks:
            for number, check in self.checks.items():
                lines.append(f"check {number:>2}: {'PASS' if check['passed'] else 'FAIL'}  "
                             + ", ".join(check["invariants"]))
            passed = sum(bool(c["passed"]) for c in self.checks.values())
            failing = [str(n) for n, c in self.checks.items() if not c["passed"]]
            lines.append(f"seed checks: {passed}/{len(self.checks)} passed"
                         + (f" (failing: {', '.join(failing)})" if failing else ""))
        verdict = "PASSED" if self.passed else "FAILED"
        lines.append(f"suite {self.suite} (seed {self.seed}, toxiproxy {self.toxiproxy.get('kind')} "
                     f"{self.toxiproxy.get('version')}): {verdict} in {self.duration_s:.0f}s")
        return "\n".join(lines)


def write_report(report: SuiteReport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(path.name + ".tmp")
    staging.write_text(json.dumps(report.as_json(), indent=2, default=str) + "\n")
    os.replace(staging, path)
