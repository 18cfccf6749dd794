"""The chaos runner's invariants, shown to hold on a good state and to FAIL on a violating one, over
a real PostgreSQL (trade rows made by the real trade store, some then tampered with by hand) and
the real local chain (real bot_trades of the market genesis's demo vault); the report and CLI; the
topology's proxies and fault scopes; and the seed suite end to end, as CI runs it: `xorj chaos run
--suite seed --report FILE` against the real engine, with the report's thirteen checks asserted.
"""

from __future__ import annotations

import json
import random
import select
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import trio
from solders.pubkey import Pubkey

from actors.rpc_client import RpcClient
from actors.trade_execution import execute_attempt, settle, sign_attempt
from actors.trade_lifecycle import FailureReason, TradeStatus
from actors.trade_store import TradeRecord, TradeStore
from chaos.invariants import (
    AlertFact,
    Evidence,
    InvariantResult,
    db_equals_chain,
    every_failure_alerted,
    gather_evidence,
    global_invariants,
    no_intent_executed_twice_on_chain,
    no_non_terminal_trades,
    only_legal_transitions,
    outage_alerted,
    recovery_within,
    retried_within_tolerance,
    slippage_failure_recorded,
)
from chaos.report import ScenarioResult, SuiteReport, seed_checks, write_report
from chaos.scenarios import SEED_CHECKS, ProxyDown, ScenarioContext, ToxicFault
from chaos.topology import open_topology
from contracts.amm_client import AmmClient
from engine.postgres_gateway import PostgresGateway
from tests.infra.conftest import db_url, gateway, pg_server, schema, xorj_home  # noqa: F401
from tests.trades.conftest import TRADE_USDC, Desk, market_node, new_trade, rpc, store  # noqa: F401
from tests.trades.conftest import desk as desk

ROOT = Path(__file__).resolve().parents[2]


async def evidence(store: TradeStore, rpc: RpcClient, desk: Desk, since_slot: int) -> Evidence:  # noqa: F811
    return await gather_evidence(store.db, rpc, [desk.vault.vault(desk.owner)], since_slot=since_slot)


async def execute(store: TradeStore, rpc: RpcClient, desk: Desk, trade: TradeRecord) -> TradeRecord:  # noqa: F811
    """Run one attempt of USDC -> JUP from the demo vault to its outcome (the executor's path)."""
    return await execute_attempt(store, rpc, desk.bot, desk.vault, desk.owner, trade,
                                 desk.route(TRADE_USDC), desk.settings)


async def confirmed_trade(store: TradeStore, rpc: RpcClient, desk: Desk) -> TradeRecord:  # noqa: F811
    done = await execute(store, rpc, desk, await store.insert_intent(new_trade(desk, minimum_amount_out=1)))
    assert done.status is TradeStatus.CONFIRMED
    return done


def by_name(results: list[InvariantResult]) -> dict[str, InvariantResult]:
    return {r.name: r for r in results}


# ------------------------------------------------------------------------------ global invariants


async def test_a_trade_the_chain_confirms_passes_every_global_invariant(
    store: TradeStore, rpc: RpcClient, desk: Desk  # noqa: F811
) -> None:
    since = await rpc.get_slot()
    done = await confirmed_trade(store, rpc, desk)

    ev = await evidence(store, rpc, desk, since)
    results = by_name(global_invariants(ev))

    assert all(r.passed for r in results.values()), [r for r in results.values() if not r.passed]
    assert results["db_equals_chain"].figures["agree"] == {"CONFIRMED": 1}
    assert results["no_intent_executed_twice_on_chain"].figures["max_executions_per_intent"] == 1
    assert ev.chain[str(done.transaction_signature)].executed == ((TRADE_USDC, done.amount_out),)


async def test_db_equals_chain_fails_when_the_stored_amount_out_is_not_the_chains(
    store: TradeStore, rpc: RpcClient, desk: Desk  # noqa: F811
) -> None:
    since = await rpc.get_slot()
    done = await confirmed_trade(store, rpc, desk)
    await store.db.execute("UPDATE trades SET amount_out = amount_out + 1 WHERE id = $1", done.id, timeout=10)

    result = db_equals_chain(await evidence(store, rpc, desk, since))

    assert not result.passed
    assert result.figures["mismatches"] == 1 and done.id in result.detail


async def test_db_equals_chain_fails_when_a_trade_marked_expired_did_land(
    store: TradeStore, rpc: RpcClient, desk: Desk  # noqa: F811
) -> None:
    since = await rpc.get_slot()
    trade = await store.insert_intent(new_trade(desk, minimum_amount_out=1))
    signed = await sign_attempt(rpc, desk.bot, desk.vault, desk.owner, trade, desk.route(TRADE_USDC),
                                timeout=5)
    trade = await store.persist_signed(trade.id, signed.wire, str(signed.signature),
                                       signed.last_valid_block_height)
    await rpc.send_transaction(signed.wire, skip_preflight=True, timeout=5)
    await store.mark_submitted(trade.id)
    with trio.fail_after(20):  # it landed; the database is then made to claim it expired
        while (await rpc.get_signature_statuses([signed.signature], timeout=5)).value[0] is None:  # noqa: ASYNC110
            await trio.sleep(0.05)
    await store.mark_failed(trade.id, TradeStatus.SUBMITTED, FailureReason.EXPIRED)

    result = db_equals_chain(await evidence(store, rpc, desk, since))

    assert not result.passed
    assert "FAILED(expired) but on chain" in result.detail


async def test_db_equals_chain_holds_for_a_real_slippage_failure_and_fails_if_it_is_called_expired(
    store: TradeStore, rpc: RpcClient, desk: Desk  # noqa: F811
) -> None:
    since = await rpc.get_slot()
    minimum = 2 * await desk.quote(rpc, TRADE_USDC)
    trade = await store.insert_intent(new_trade(desk, minimum_amount_out=minimum))
    failed = await execute(store, rpc, desk, trade)
    assert failed.failure_reason == FailureReason.SLIPPAGE_EXCEEDED

    good = db_equals_chain(await evidence(store, rpc, desk, since))
    await store.db.execute("UPDATE trades SET failure_reason = 'expired' WHERE id = $1", trade.id, timeout=10)
    bad = db_equals_chain(await evidence(store, rpc, desk, since))

    assert good.passed and good.figures["agree"] == {"FAILED_on_chain": 1}
    assert not bad.passed and "but on chain" in bad.detail


async def test_two_landed_attempts_of_one_intent_are_an_intent_executed_twice(
    store: TradeStore, rpc: RpcClient, desk: Desk  # noqa: F811
) -> None:
    since = await rpc.get_slot()
    first = await confirmed_trade(store, rpc, desk)
    good = no_intent_executed_twice_on_chain(await evidence(store, rpc, desk, since))
    # A buggy executor: a second attempt of the same intent, sent although the first landed.
    second = await store.new_attempt(first.intent_id, minimum_amount_out=1)
    await execute(store, rpc, desk, second)

    bad = no_intent_executed_twice_on_chain(await evidence(store, rpc, desk, since))

    assert good.passed
    assert not bad.passed
    assert bad.figures["duplicated_intents"] == [first.intent_id]
    assert bad.figures["max_executions_per_intent"] == 2


async def test_a_bot_trade_on_chain_that_the_database_does_not_know_is_a_violation(
    store: TradeStore, rpc: RpcClient, desk: Desk  # noqa: F811
) -> None:
    since = await rpc.get_slot()
    done = await confirmed_trade(store, rpc, desk)
    ev = await evidence(store, rpc, desk, since)

    # The chain's facts as they are; the database's record of the trade lost.
    result = no_intent_executed_twice_on_chain(attrs.evolve(ev, trades=(), events=()))

    assert not result.passed
    assert result.figures["unknown_bot_trades"] == [done.transaction_signature]


async def test_a_trade_left_pending_fails_no_non_terminal_trades_until_it_is_settled(
    store: TradeStore, rpc: RpcClient, desk: Desk  # noqa: F811
) -> None:
    since = await rpc.get_slot()
    trade = await store.insert_intent(new_trade(desk, minimum_amount_out=1))

    stuck = no_non_terminal_trades(await evidence(store, rpc, desk, since))
    await settle(store, rpc, trade, desk.settings)  # no signed bytes: never sent -> FAILED(never_sent)
    settled = no_non_terminal_trades(await evidence(store, rpc, desk, since))

    assert not stuck.passed and stuck.figures["non_terminal_ids"] == [trade.id]
    assert settled.passed and settled.figures["by_status"] == {"FAILED": 1}


async def test_a_failure_without_its_trade_failed_alert_fails_every_failure_alerted(
    store: TradeStore, rpc: RpcClient, desk: Desk  # noqa: F811
) -> None:
    since = await rpc.get_slot()
    trade = await store.insert_intent(new_trade(desk, minimum_amount_out=1))
    await store.mark_failed(trade.id, TradeStatus.PENDING, FailureReason.RPC_UNAVAILABLE)

    silent = every_failure_alerted(await evidence(store, rpc, desk, since))
    await store.db.execute(
        "INSERT INTO alerts (severity, kind, subject) VALUES ('WARNING', 'trade_failed', $1)", trade.id,
        timeout=10)
    alerted = every_failure_alerted(await evidence(store, rpc, desk, since))

    assert not silent.passed and silent.figures["unalerted_ids"] == [trade.id]
    assert alerted.passed and alerted.figures == {**alerted.figures, "failed": 1, "alerted": 1}


async def test_an_illegal_row_in_trade_events_fails_only_legal_transitions(
    store: TradeStore, rpc: RpcClient, desk: Desk  # noqa: F811
) -> None:
    since = await rpc.get_slot()
    done = await confirmed_trade(store, rpc, desk)
    await store.record_resend(attrs.evolve(done, status=TradeStatus.SUBMITTED))  # an audit note: legal

    good = only_legal_transitions(await evidence(store, rpc, desk, since))
    # trade_events takes inserts (it is append-only, not guarded): a writer that bypassed the table
    await store.db.execute(
        "INSERT INTO trade_events (trade_id, from_status, to_status) VALUES ($1, 'CONFIRMED', 'FAILED')",
        done.id, timeout=10)
    bad = only_legal_transitions(await evidence(store, rpc, desk, since))

    assert good.passed, good.detail
    assert good.figures["pairs"] == {"NULL->PENDING": 1, "PENDING->SUBMITTED": 1, "SUBMITTED->CONFIRMED": 1,
                                     "SUBMITTED->SUBMITTED": 1}
    assert not bad.passed and bad.figures["illegal"] == 1 and "CONFIRMED->FAILED" in bad.detail


def test_an_outage_counts_as_alerted_only_by_a_matching_alert_raised_after_the_fault() -> None:
    old = AlertFact("dependency_down", "user-1", details={"what": "database"}, id=5)
    other = AlertFact("dependency_down", "user-1", details={"what": "rpc"}, id=7)
    fresh = AlertFact("dependency_down", "user-2", details={"what": "database"}, id=9)

    before = outage_alerted(Evidence(alerts=(old, other)), what="database", since_id=6)
    after = outage_alerted(Evidence(alerts=(old, other, fresh)), what="database", since_id=6)

    assert not before.passed and before.figures["alerts"] == 0
    assert after.passed and after.figures["subjects"] == ["user-2"]


def test_recovery_within_its_bound_passes_and_beyond_it_or_never_fails() -> None:
    assert recovery_within(3.2, 10.0).passed
    assert not recovery_within(12.5, 10.0).passed
    never = recovery_within(None, 10.0)
    assert not never.passed and "never" in never.detail


# ------------------------------------------------------------------------------ scenario checks


async def test_a_real_slippage_failure_then_a_landed_retry_pass_checks_7_and_8(
    store: TradeStore, rpc: RpcClient, desk: Desk  # noqa: F811
) -> None:
    since = await rpc.get_slot()
    quote = await desk.quote(rpc, TRADE_USDC)
    first = await store.insert_intent(new_trade(desk, minimum_amount_out=2 * quote))
    first = await execute(store, rpc, desk, first)
    before_retry = await evidence(store, rpc, desk, since)
    fresh_minimum = await desk.quote(rpc, TRADE_USDC) * 99 // 100  # the user's 1% under a fresh quote
    retry = await store.new_attempt(first.intent_id, minimum_amount_out=fresh_minimum)
    await execute(store, rpc, desk, retry)

    ev = await evidence(store, rpc, desk, since)

    assert slippage_failure_recorded(ev, first.intent_id).passed
    landed = retried_within_tolerance(ev, first.intent_id, tolerance_pct=1.0)
    assert landed.passed, landed
    assert not retried_within_tolerance(before_retry, first.intent_id, tolerance_pct=1.0).passed
    # a retry whose minimum gives away far more than the user's 1% is not "within tolerance"
    loose = attrs.evolve(ev, trades=tuple(
        attrs.evolve(t, minimum_amount_out=1) if t.attempt == 2 else t for t in ev.trades))
    assert not retried_within_tolerance(loose, first.intent_id, tolerance_pct=1.0).passed


async def test_a_trade_that_simply_landed_is_not_evidence_of_a_slippage_failure(
    store: TradeStore, rpc: RpcClient, desk: Desk  # noqa: F811
) -> None:
    since = await rpc.get_slot()
    done = await confirmed_trade(store, rpc, desk)

    result = slippage_failure_recorded(await evidence(store, rpc, desk, since), done.intent_id)

    assert not result.passed and result.figures["first_status"] == "CONFIRMED"


# ------------------------------------------------------------------------------ report and CLI


def _result(name: str, passed: bool, *, critical: bool = True) -> ScenarioResult:
    names = {n for pairs in SEED_CHECKS.values() for _, n in pairs}
    checks = tuple(InvariantResult(n, passed if n == "recovery_within" else True, {"recovery_s": 1.0})
                   for n in sorted(names))
    return ScenarioResult(name=name, category="rpc", critical=critical, description="d", invariants=checks,
                          recovery_s=1.0, faults=({"kind": "toxic", "type": "timeout"},), duration_s=2.0)


def test_the_report_fails_only_on_a_critical_failure_and_writes_every_figure(tmp_path: Path) -> None:
    results = (_result("rpc_timeout", True), _result("db_connection_loss", True),
               _result("slippage_exceeded", True))
    report = SuiteReport("seed", 42, {"kind": "xorj-fault-proxy", "version": "2.12.0"}, "now", 3.0, results,
                         seed_checks(results, SEED_CHECKS))
    optional = attrs.evolve(report, scenarios=(*results, _result("optional", False, critical=False)))
    slow_db = (results[0], _result("db_connection_loss", False), results[2])
    failing = SuiteReport("seed", 42, {}, "now", 3.0, slow_db, seed_checks(slow_db, SEED_CHECKS))
    missing = seed_checks(results[:1], SEED_CHECKS)  # only one scenario ran: no evidence for 4-8

    write_report(report, tmp_path / "r.json")
    written = json.loads((tmp_path / "r.json").read_text())

    assert report.passed and optional.passed and not failing.passed
    assert written["seed"] == 42
    assert written["scenarios"][0]["faults"] == [{"kind": "toxic", "type": "timeout"}]
    assert written["scenarios"][0]["invariants"][0]["figures"] == {"recovery_s": 1.0}
    assert all(written["checks"][str(n)]["passed"] for n in range(1, 14))
    assert failing.checks[12]["passed"] is False and failing.checks[1]["passed"] is True
    assert not missing[4]["passed"] and missing[4]["evidence"][0]["missing"] is True
    assert "check 12: FAIL" in failing.table() and "seed checks: 13/13 passed" in report.table()


def test_an_unknown_scenario_is_refused_with_the_known_names() -> None:
    done = subprocess.run([sys.executable, "-m", "chaos", "run", "--scenario", "no_such"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "unknown scenario(s) no_such" in done.stderr and "rpc_timeout" in done.stderr


# ------------------------------------------------------------------------------ end to end


@pytest.fixture
def chaos_workdir() -> Iterator[Path]:
    # Not under pytest's tmp root: the embedded PostgreSQL's unprivileged user must reach it.
    path = Path(tempfile.mkdtemp(prefix="xorj-chaos-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(params=["in-process", "external"])
def toxiproxy_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None: the topology starts our fault proxy in-process. A URL: a toxiproxy API server in a
    process of its own (`xorj chaos proxy`), reached as `--toxiproxy-url` reaches a real one."""
    if request.param == "in-process":
        yield None
        return
    server = subprocess.Popen([sys.executable, "-m", "chaos", "proxy", "--port", "0"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert server.stdout is not None
    ready, _, _ = select.select([server.stdout], [], [], 30)  # a deadline on the first line
    line = server.stdout.readline() if ready else ""  # printed once it serves; EOF if it died
    assert "toxiproxy API on" in line, line
    try:
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        server.terminate()
        server.wait(timeout=15)


async def test_the_topology_puts_a_proxy_before_each_dependency_and_every_fault_comes_off(
    chaos_workdir: Path, toxiproxy_url: str | None,
) -> None:
    async with open_topology(chaos_workdir, toxiproxy_url=toxiproxy_url, seed=3,
                             start_engine=False) as topology:
        assert topology.toxiproxy_kind == ("external" if toxiproxy_url else "xorj-fault-proxy")
        assert topology.toxiproxy_version == "2.12.0"
        ctx = ScenarioContext(topology, random.Random(3))
        env = topology.engine_env()
        assert env["SOLANA_RPC_URL"] == f"http://{topology.proxies['rpc'].listen}"
        assert env["DATABASE_URL"].endswith(f"@{topology.proxies['postgres'].listen}/xorj")
        through = PostgresGateway(env["DATABASE_URL"], pool_min=1, pool_max=1)
        async with trio.open_nursery() as nursery:
            with trio.fail_after(30):
                await nursery.start(through.serve)
                assert await through.fetchval("SELECT 41 + 1", timeout=10) == 42
            nursery.cancel_scope.cancel()

        host, port = topology.proxies["postgres"].listen.split(":")
        async with ctx.fault(ProxyDown(("postgres",))):
            with pytest.raises(OSError), trio.fail_after(10):
                await trio.open_tcp_stream(host, int(port))
        with trio.fail_after(10):  # back, on the same address
            await (await trio.open_tcp_stream(host, int(port))).aclose()

        async with ctx.fault(ToxicFault(("rpc",), "latency", {"latency": 50}, stream="upstream")):
            [inside] = await topology.toxiproxy.toxics("rpc")
        assert inside.type == "latency" and await topology.toxiproxy.toxics("rpc") == []
        assert [(f["kind"], f["proxy"]) for f in ctx.faults] == [("proxy_down", "postgres"), ("toxic", "rpc")]

        usdc, jup = topology.mint("USDC"), topology.mint("JUP")
        amm = AmmClient(Pubkey.from_string(topology.manifest["programs"]["amm"]))
        reserve = amm.pool_token_account(usdc, jup, usdc)
        moved = await ctx.move_pool("USDC", "JUP", 0.05)
        after = int((await topology.rpc.get_token_account_balance(reserve, timeout=5)).value.amount)
        assert after == moved["reserve_before"] + moved["amount_in"]
        assert moved["amount_in"] == int(moved["reserve_before"] * 0.05)


@pytest.mark.slow
def test_the_seed_suite_passes_all_thirteen_checks_on_real_faults(chaos_workdir: Path) -> None:
    # The command CI runs, as a subprocess: our fault proxy, the engine, the local chain and the
    # embedded servers all come up from nothing, and the report is the evidence.
    report_path = chaos_workdir / "r.json"
    done = subprocess.run(
        [sys.executable, "-m", "chaos", "run", "--suite", "seed", "--seed", "7", "--report", str(report_path),
         "--workdir", str(chaos_workdir / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert report_path.exists(), done.stdout + done.stderr
    report = json.loads(report_path.read_text())

    assert done.returncode == 0, done.stdout + done.stderr
    assert report["passed"] is True and report["seed"] == 7
    assert sorted(report["checks"], key=int) == [str(n) for n in range(1, 14)]
    assert all(c["passed"] for c in report["checks"].values()), done.stdout
    scenarios = {s["name"]: s for s in report["scenarios"]}
    assert set(scenarios) == {"rpc_timeout", "db_connection_loss", "slippage_exceeded", "final_invariants"}
    for name in ("rpc_timeout", "db_connection_loss", "slippage_exceeded"):
        assert scenarios[name]["faults"], name  # real faults were injected
        assert scenarios[name]["recovery_s"] is not None, name
    # the evidence is real: the chain saw a SlippageExceeded failure and the trades that executed
    final = {i["name"]: i for i in scenarios["final_invariants"]["invariants"]}
    assert final["db_equals_chain"]["figures"]["agree"]["FAILED_on_chain"] >= 1
    assert final["no_intent_executed_twice_on_chain"]["figures"]["intents_executed"] >= 6
    assert "seed checks: 13/13 passed" in done.stdout
