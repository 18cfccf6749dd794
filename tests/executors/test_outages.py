"""Dependency outages through the fault proxy (a real TCP cut: the proxy stops listening and hangs
up on every connection): PostgreSQL while a trade is in flight, and the Solana RPC."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio
from solders.signature import Signature

from tests.executors.conftest import CommandError, Engine, drill, eventually, wait_status

HOLD_SLOTS = 30


async def _executor_state(engine: Engine, uid: str, state: str) -> bool:
    return bool(engine.status()["executors"].get(uid, {}).get("state") == state)


async def _db_agrees_with_chain(engine: Engine) -> None:
    """Every trade with a signature: CONFIRMED iff its transaction landed without error, and then
    its amounts are the TradeExecuted event's; nothing non-terminal."""
    rows = await engine.trades()
    assert not [r for r in rows if r["status"] in ("PENDING", "SUBMITTED")], rows
    for row in rows:
        signature = row["transaction_signature"]
        if signature is None:
            assert row["status"] == "FAILED", row
            continue
        if row["status"] == "CONFIRMED":
            events = await engine.executed(signature)
            assert len(events) == 1 and events[0].amount_out == int(row["amount_out"]), row
        else:
            statuses = await engine.rpc.get_signature_statuses(
                [Signature.from_string(signature)], timeout=5.0)
            status = statuses.value[0]
            assert status is None or status.err is not None, row


async def test_database_outage_mid_trade_sends_nothing_and_recovers_consistent(engine: Engine) -> None:
    owner, other = engine.demo_owner(0), engine.demo_owner(1)
    uid = await engine.user_id(owner)
    await engine.set_faults(landDelaySlots=HOLD_SLOTS)
    intent = str((await drill(engine, owner))["intent_id"])
    submitted = await wait_status(engine, intent, 1, {"SUBMITTED"})
    signature = str(submitted["transaction_signature"])
    before = {o: await engine.vault_signatures(o) for o in (owner, other)}

    engine.cut(engine.pg_proxy)
    try:
        with trio.fail_after(40):  # a refused command, never a hang
            with pytest.raises(CommandError, match=r"database|refused|no answer"):
                await drill(engine, other)
        await engine.set_faults(landDelaySlots=0)
        # the held attempt lands on chain while its row cannot be written
        await eventually(lambda: engine.landed(signature), within=15, what="the in-flight trade landing")
        await eventually(lambda: _executor_state(engine, uid, "paused"), within=30,
                         what="the executor paused on the database")
        height = await engine.block_height()
        await eventually(lambda: _past(engine, height + 40), within=15, what="40 more blocks")
        # nothing new was sent for either user while the database was unreachable
        assert await engine.vault_signatures(other) == before[other]
        assert await engine.vault_signatures(owner) == before[owner] | {signature}
    finally:
        engine.restore(engine.pg_proxy)

    confirmed = await wait_status(engine, intent, 1, {"CONFIRMED", "FAILED"}, within=40)
    assert confirmed["status"] == "CONFIRMED", confirmed
    assert confirmed["transaction_signature"] == signature

    async def all_settled() -> bool:
        return not await engine.trades("status IN ('PENDING', 'SUBMITTED')")
    await eventually(all_settled, within=30, what="no trade left PENDING/SUBMITTED")
    await _db_agrees_with_chain(engine)

    # the gateway raised the outage and the recovery itself (subject postgres: not an executor's),
    # stored once the database was back
    async def gateway_alerts() -> list[dict[str, Any]] | None:
        rows = await engine.rows("SELECT kind, severity, details FROM alerts WHERE subject = 'postgres'"
                                 " ORDER BY id")
        return rows if {r["kind"] for r in rows} >= {"dependency_down", "dependency_up"} else None
    told = await eventually(gateway_alerts, within=15, what="the gateway's down and up alerts")
    assert [(r["kind"], r["severity"]) for r in told][:2] == [
        ("dependency_down", "CRITICAL"), ("dependency_up", "INFO")], told
    # and trading works again
    again = str((await drill(engine, other))["intent_id"])
    await wait_status(engine, again, 1, {"CONFIRMED"}, within=30)


async def _past(engine: Engine, height: int) -> bool:
    return await engine.block_height() > height


async def test_rpc_outage_pauses_the_executor_with_an_alert_then_trades_resume(engine: Engine) -> None:
    owner = engine.demo_owner(1)
    uid = await engine.user_id(owner)
    engine.cut(engine.rpc_proxy)
    try:
        refused: str | None = None
        with trio.fail_after(40):  # answered or refused, never a hang
            try:
                answer: dict[str, Any] | None = await drill(engine, owner)
            except CommandError as exc:
                answer, refused = None, str(exc)
        try:
            await eventually(lambda: _executor_state(engine, uid, "paused"), within=40,
                             what="the executor paused on the RPC")
        except AssertionError:
            raise AssertionError((refused, answer, engine.status()["executors"][uid],
                                  await engine.trades())) from None
        view = engine.status()["executors"][uid]
        assert "rpc" in str(view["detail"]), view
        alerts = await eventually(lambda: engine.rows(
            "SELECT * FROM alerts WHERE kind = 'dependency_down' AND subject = $1", uid),
            within=10, what="a dependency_down alert")
        details = alerts[0]["details"]
        details = json.loads(details) if isinstance(details, str) else details
        assert details["what"] == "rpc", details
        # nothing was signed and left hanging: any attempt of the drill is terminal
        if answer is not None:
            rows = await engine.trades("intent_id = $1", str(answer["intent_id"]))
            assert all(r["status"] == "FAILED" for r in rows), rows
        else:
            assert refused is not None
        status = await engine.cmd("status")
        assert status["dependencies"]["solana_rpc"]["state"] != "up", status["dependencies"]
    finally:
        engine.restore(engine.rpc_proxy)

    async def rpc_up() -> bool:
        status = await engine.cmd("status")
        breakers = await engine.cmd("breakers")  # the outage may have opened rpc_connectivity
        return bool(status["dependencies"]["solana_rpc"]["state"] == "up" and not breakers["open"])
    await eventually(rpc_up, within=30, what="the RPC health up and no breaker open")
    intent = str((await drill(engine, owner))["intent_id"])
    assert (await wait_status(engine, intent, 1, {"CONFIRMED", "FAILED"}, within=30))["status"] == "CONFIRMED"
    await eventually(lambda: _executor_state(engine, uid, "idle"), within=10, what="the executor idle")
    await _db_agrees_with_chain(engine)
