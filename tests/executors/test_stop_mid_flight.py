"""Stopping trading while a trade is in flight (its landing held by the chain's ``landDelaySlots``):
the global and per-user kill switches, and ``users disable``. The attempt in flight reaches a
terminal state, nothing new is started while stopped, and trading resumes when released."""

from __future__ import annotations

import pytest

from tests.executors.conftest import CommandError, Engine, drill, wait_status

HOLD_SLOTS = 30  # ~1.5 s at 50 ms slots, well inside the 60-slot blockhash window


async def _intents(engine: Engine) -> int:
    return int(await engine.db.fetchval("SELECT count(DISTINCT intent_id) FROM trades", timeout=10))


async def test_global_kill_switch_mid_flight_settles_the_trade_and_blocks_new_ones(engine: Engine) -> None:
    owner, other = engine.demo_owner(0), engine.demo_owner(1)
    await engine.set_faults(landDelaySlots=HOLD_SLOTS)
    intent = str((await drill(engine, owner))["intent_id"])
    await wait_status(engine, intent, 1, {"SUBMITTED"})

    engaged = await engine.cmd("kill-switch", state="on", reason="executor test: mid-flight")
    assert engaged["engaged"] is True and engaged["global_engaged"] is True
    settled = await wait_status(engine, intent, 1, {"CONFIRMED", "FAILED"})
    assert settled["status"] == "CONFIRMED", settled  # the held attempt lands: it was already sent
    assert len(await engine.trades("intent_id = $1", intent)) == 1  # and nothing retried it

    await engine.set_faults(landDelaySlots=0)
    intents = await _intents(engine)
    for who in (owner, other):
        with pytest.raises(CommandError, match="kill switch"):
            await drill(engine, who)
    assert await _intents(engine) == intents
    assert engine.status()["kill_switches"]["global"]["engaged"] is True

    released = await engine.cmd("kill-switch", state="off")
    assert released["engaged"] is False and released["global_engaged"] is False
    resumed = str((await drill(engine, other))["intent_id"])
    assert (await wait_status(engine, resumed, 1, {"CONFIRMED"}))["status"] == "CONFIRMED"


async def test_user_kill_switch_blocks_that_user_only(engine: Engine) -> None:
    owner, other = engine.demo_owner(1), engine.demo_owner(2)
    await engine.set_faults(landDelaySlots=HOLD_SLOTS)
    intent = str((await drill(engine, owner))["intent_id"])
    await wait_status(engine, intent, 1, {"SUBMITTED"})
    result = await engine.cmd("kill-switch", state="on", user=owner, reason="executor test: one user")
    assert result["engaged"] is True and result["global_engaged"] is False
    assert (await wait_status(engine, intent, 1, {"CONFIRMED", "FAILED"}))["status"] == "CONFIRMED"
    await engine.set_faults(landDelaySlots=0)

    intents = await _intents(engine)
    with pytest.raises(CommandError, match="kill switch"):
        await drill(engine, owner)
    assert await _intents(engine) == intents
    other_intent = str((await drill(engine, other))["intent_id"])  # everyone else still trades
    await wait_status(engine, other_intent, 1, {"CONFIRMED"})

    await engine.cmd("kill-switch", state="off", user=owner)
    again = str((await drill(engine, owner))["intent_id"])
    await wait_status(engine, again, 1, {"CONFIRMED"})


async def test_disabling_a_user_mid_flight_settles_the_trade_and_stops_the_executor(engine: Engine) -> None:
    owner = engine.demo_owner(2)
    uid = await engine.user_id(owner)
    await engine.set_faults(landDelaySlots=HOLD_SLOTS)
    intent = str((await drill(engine, owner))["intent_id"])
    await wait_status(engine, intent, 1, {"SUBMITTED"})

    answer = await engine.cmd("users", action="disable", owner=owner, reason="executor test")
    assert answer["user"]["bot_enabled"] is False
    # disable returns once the executor has stopped; its attempt in flight was finished first
    rows = await engine.trades("intent_id = $1", intent)
    assert [r["status"] for r in rows] == ["CONFIRMED"], rows
    assert engine.status()["executors"][uid]["state"] == "stopped"
    assert await engine.db.fetchval(
        "SELECT count(*) FROM trades WHERE user_id = $1 AND status IN ('PENDING', 'SUBMITTED')",
        uid, timeout=10) == 0
    await engine.set_faults(landDelaySlots=0)

    intents = await _intents(engine)
    with pytest.raises(CommandError, match="no running executor"):
        await drill(engine, owner)
    assert await _intents(engine) == intents
    assert await engine.db.fetchval(
        "SELECT bot_enabled FROM user_settings WHERE user_id = $1", uid, timeout=10) is False
