"""Runs a chaos suite: one topology, the scenarios in order, the global invariants after each and
at the end, one ``SuiteReport``.

Owns: the order of a run -- bring the topology up (`chaos.topology.open_topology`), and for each
scenario: make sure the engine is up, run it under a deadline, take every fault out of the system
(``POST /reset`` on the toxiproxy server and the chain's fault knobs off, shielded), give a breaker
the scenario opened its configured recovery period, wait (bounded) until no trade is in flight,
add the global invariants (checks 9-13) over the whole database and chain, record the result;
then a final evaluation over everything. The seed is the run's one source of randomness (the scenarios' RNG
and the fault proxy's toxicity draws), so a run can be replayed.

Failure it contains: a scenario that breaks (a part that stops answering, a deadline, an engine
that died) is recorded as a failed scenario with its error, the topology is put right (faults
removed, engine restarted if it is down) and the run goes on. A topology that cannot come up
raises ``TopologyError`` to the caller (no report can be honest then).

May import: the standard library, trio, attrs, `actors.rpc_client` (its error type), `sql.errors`,
`engine.control_client` (its error type), `chaos.*`.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import attrs
import trio

from actors.rpc_client import RpcError
from chaos.invariants import InvariantResult, global_invariants
from chaos.report import ScenarioResult, SuiteReport, seed_checks
from chaos.scenarios import SEED_CHECKS, Scenario, ScenarioContext, ScenarioOutcome, suite
from chaos.topology import EngineSettings, Topology, TopologyError, open_topology
from chaos.toxiproxy_client import ToxiproxyError
from engine.control_client import ControlError
from sql.errors import DatabaseError

__all__ = ["RunOptions", "run_scenario", "run_scenarios", "run_suite"]

_log = logging.getLogger("xorj.chaos.runner")

SCENARIO_DEADLINE_S: Final = 420.0
QUIET_S: Final = 60.0  # a trade still non-terminal this long after a scenario is in limbo
# What may stop a scenario: recorded as its failure, and the run goes on.
_SCENARIO_ERRORS: Final = (TopologyError, ControlError, ToxiproxyError, RpcError, DatabaseError,
                           trio.TooSlowError, OSError, KeyError)


@attrs.frozen
class RunOptions:
    suite: str = "seed"
    scenarios: tuple[str, ...] = ()
    seed: int = 0
    toxiproxy_url: str | None = None
    workdir: Path | None = None
    engine: EngineSettings = attrs.field(factory=EngineSettings)


async def _put_right(topology: Topology) -> None:
    """No fault survives a scenario; the engine is up for the next one."""
    with trio.CancelScope(shield=True):
        try:
            with trio.fail_after(20):
                await topology.toxiproxy.reset()
                await topology.set_chain_faults()
        except (ToxiproxyError, TopologyError, trio.TooSlowError) as exc:
            _log.error("could not clear the faults", extra={"error": str(exc)})
    if not topology.engine_running:
        await topology.stop_engine()  # reap it
        await topology.start_engine()
    await topology.wait_ready()


async def _quiet(topology: Topology, within: float = QUIET_S) -> bool:
    """Wait until no trade is PENDING or SUBMITTED: the executors also trade on their own (a
    periodic check, a new ranking), and a copy trade caught in flight at the instant of the
    evidence is not limbo. One that stays non-terminal past ``within`` is, and the global
    invariants then report it."""
    query = "SELECT count(*) FROM trades WHERE status IN ('PENDING', 'SUBMITTED')"
    with trio.move_on_after(within):
        while await topology.db.fetchval(query, timeout=10.0):  # noqa: ASYNC110 -- the engine writes it
            await trio.sleep(0.2)
        return True
    return False


async def _breaker_recovery(topology: Topology, scenario: Scenario) -> None:
    """A breaker that the scenario's faults opened gets the engine's configured recovery period
    before the next scenario starts, so a scenario is not judged on its predecessor's breaker
    (the RPC client's breakers are not in ``status``, and an open one only half-opens on a call)."""
    if scenario.touches_rpc:
        await trio.sleep(topology.engine_settings.breaker_recovery_s)


async def run_scenario(topology: Topology, scenario: Scenario, rng: random.Random) -> ScenarioResult:
    """One scenario, its own checks, then the global invariants over the whole system."""
    await _put_right(topology)
    ctx = ScenarioContext(topology, random.Random(rng.getrandbits(64)))
    started = trio.current_time()
    outcome = ScenarioOutcome(())
    error: str | None = None
    _log.info("scenario starts", extra={"scenario": scenario.name})
    try:
        with trio.fail_after(SCENARIO_DEADLINE_S):
            outcome = await scenario.run(ctx)
    except _SCENARIO_ERRORS as exc:
        error = f"{type(exc).__name__}: {exc}"
        _log.error("scenario stopped", extra={"scenario": scenario.name, "error": error})
    finally:
        await _put_right(topology)
        await _breaker_recovery(topology, scenario)
    checks: list[InvariantResult] = list(outcome.checks)
    try:
        await _quiet(topology)
        with trio.fail_after(60):
            checks.extend(global_invariants(await ctx.evidence()))
    except (RpcError, DatabaseError, trio.TooSlowError) as exc:
        error = error or f"evidence could not be gathered: {type(exc).__name__}: {exc}"
    return ScenarioResult(
        name=scenario.name, category=scenario.category, critical=scenario.critical,
        description=scenario.description, invariants=tuple(checks), recovery_s=outcome.recovery_s,
        faults=tuple(ctx.faults), duration_s=round(trio.current_time() - started, 3),
        intents=len(ctx.intents), refused=tuple(ctx.refused[:5]), error=error)


async def _final(topology: Topology, results: Sequence[ScenarioResult]) -> ScenarioResult:
    """The global invariants once more, over everything every scenario left behind."""
    started = trio.current_time()
    ctx = ScenarioContext(topology, random.Random(0))
    error = None
    checks: list[InvariantResult] = []
    try:
        await _quiet(topology)
        with trio.fail_after(120):
            checks = global_invariants(await ctx.evidence())
    except (RpcError, DatabaseError, trio.TooSlowError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return ScenarioResult(
        name="final_invariants", category="global", critical=True,
        description=f"the global invariants after {len(results)} scenario(s)", invariants=tuple(checks),
        recovery_s=None, faults=(), duration_s=round(trio.current_time() - started, 3), error=error)


async def run_scenarios(topology: Topology, scenarios: Sequence[Scenario],
                        rng: random.Random) -> list[ScenarioResult]:
    """Each scenario in order, then ``final_invariants`` over everything they left behind."""
    results: list[ScenarioResult] = []
    for scenario in scenarios:
        result = await run_scenario(topology, scenario, rng)
        verdict = "PASS" if result.passed else "FAIL"
        print(f"  {result.name}: {verdict} ({result.duration_s:.0f}s)", flush=True)
        results.append(result)
    results.append(await _final(topology, results))
    return results


async def run_suite(options: RunOptions) -> SuiteReport:
    scenarios = suite(options.suite, options.scenarios)
    rng = random.Random(options.seed)
    workdir = options.workdir
    assert workdir is not None, "the CLI chooses a work directory"
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    clock = time.monotonic()
    async with open_topology(workdir, toxiproxy_url=options.toxiproxy_url, seed=options.seed,
                             engine=options.engine) as topology:
        results = await run_scenarios(topology, scenarios, rng)
        toxiproxy = {"kind": topology.toxiproxy_kind, "version": topology.toxiproxy_version,
                     "url": topology.toxiproxy.url}
    checks = seed_checks(results, SEED_CHECKS) if options.suite == "seed" and not options.scenarios else {}
    return SuiteReport(
        suite=options.suite, seed=options.seed, toxiproxy=toxiproxy, started_at=started_at,
        duration_s=round(time.monotonic() - clock, 3), scenarios=tuple(results), checks=checks,
        workdir=str(workdir))
