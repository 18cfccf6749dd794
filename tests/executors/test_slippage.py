"""Slippage: the pool moves between the quote and the landing (landing held by the chain's
``landDelaySlots``, then another wallet buys against the pool), so the attempt is FAILED
slippage_exceeded with a ``trade_failed`` alert, and a new attempt of the same intent, re-quoted
with a wider slippage still within the user's tolerance, is CONFIRMED."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import trio
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import Transaction

from actors.rpc_client import confirmed_tx_config
from contracts.amm_client import AmmClient
from contracts.pda import associated_token_address
from tests.executors.conftest import Engine, attempts, drill, eventually, wait_status


async def _admin(engine: Engine, method: str, params: list[Any]) -> Any:
    answer = engine.chain.rpc(method, params)  # a short blocking call to the chain's admin API
    assert "error" not in answer, answer
    return answer["result"]


async def buy_against_pool(engine: Engine, symbol: str, reserve_fraction: float) -> str:
    """A fresh wallet buys ``symbol`` with ``reserve_fraction`` of the pool's USDC reserve: the
    pool's price of ``symbol`` rises (a real swap through the AMM, not a knob)."""
    usdc, token = Pubkey.from_string(engine.mint("USDC")), Pubkey.from_string(engine.mint(symbol))
    amm = AmmClient(Pubkey.from_string(engine.manifest["programs"]["amm"]))
    reserve = int((await engine.rpc.get_token_account_balance(
        amm.pool_token_account(usdc, token, usdc), timeout=5.0)).value.amount)
    amount = int(reserve * reserve_fraction)
    whale = Keypair()
    await _admin(engine, "requestAirdrop", [str(whale.pubkey()), 10**9])
    await _admin(engine, "localnet_mint", [str(whale.pubkey()), str(usdc), amount])
    await _admin(engine, "localnet_mint", [str(whale.pubkey()), str(token), 1])  # its token account
    ix = amm.swap(whale.pubkey(), usdc, token, associated_token_address(whale.pubkey(), usdc),
                  associated_token_address(whale.pubkey(), token), amount, 0)
    blockhash = (await engine.rpc.get_latest_blockhash(timeout=5.0)).value.blockhash
    tx = Transaction([whale], Message.new_with_blockhash([ix], whale.pubkey(), blockhash), blockhash)
    signature = str(await engine.rpc.send_transaction(bytes(tx), timeout=5.0))
    await eventually(lambda: engine.landed(signature), within=10, what="the pool-moving swap")
    return signature


async def test_pool_moved_before_landing_fails_slippage_then_a_wider_attempt_confirms(engine: Engine) -> None:
    owner = engine.demo_owner(0)
    uid = await engine.user_id(owner)
    tolerance = Decimal(await engine.db.fetchval(
        "SELECT slippage_tolerance FROM user_settings WHERE user_id = $1", uid, timeout=10))

    await engine.set_faults(landDelaySlots=25)  # ~1.25 s: the quote is stale when it lands
    answer = await drill(engine, owner, usd=5.0)
    intent = str(answer["intent_id"])
    first = await wait_status(engine, intent, 1, {"SUBMITTED"})
    # Landing again immediately for everyone else: the whale's swap lands before the held attempt.
    await engine.set_faults(landDelaySlots=0)
    with trio.fail_after(20):
        await buy_against_pool(engine, "JUP", 0.03)

    failed = await wait_status(engine, intent, 1, {"FAILED", "CONFIRMED"})
    assert failed["status"] == "FAILED" and failed["failure_reason"] == "slippage_exceeded", failed
    assert failed["transaction_signature"] == first["transaction_signature"]
    # on chain: the held attempt landed and failed (it cannot be retried by resending it)
    landed = await engine.rpc.get_transaction(Signature.from_string(failed["transaction_signature"]),
                                              confirmed_tx_config(), timeout=5.0)
    assert landed.value is not None and landed.value.transaction.meta is not None
    assert landed.value.transaction.meta.err is not None

    alerts = await eventually(lambda: engine.rows(
        "SELECT * FROM alerts WHERE kind = 'trade_failed' AND subject = $1", failed["id"]),
        within=10, what="a trade_failed alert for the failed attempt")
    details = alerts[0]["details"]
    details = json.loads(details) if isinstance(details, str) else details
    assert details["reason"] == "slippage_exceeded" and details["intent"] == intent, details

    confirmed = await eventually(lambda: _confirmed_retry(engine, intent), within=30,
                                 what="a CONFIRMED later attempt of the intent")
    rows = await attempts(engine, intent)
    assert [r["attempt"] for r in rows] == list(range(1, len(rows) + 1))
    assert all(r["intent_id"] == intent and r["user_id"] == uid for r in rows)
    assert all(r["status"] == "FAILED" for r in rows if r["attempt"] < confirmed["attempt"])
    assert Decimal(confirmed["slippage"]) > Decimal(failed["slippage"])
    assert Decimal(confirmed["slippage"]) <= tolerance
    assert int(confirmed["amount_in"]) == int(failed["amount_in"]) == int(answer["amount_in"])
    # one execution on chain for the intent: only the confirmed attempt's TradeExecuted
    events = await engine.executed(confirmed["transaction_signature"])
    assert len(events) == 1 and events[0].amount_out == int(confirmed["amount_out"])
    assert events[0].amount_out >= int(confirmed["minimum_amount_out"])


async def _confirmed_retry(engine: Engine, intent: str) -> dict[str, Any] | None:
    for row in await attempts(engine, intent):
        if row["attempt"] >= 2 and row["status"] == "CONFIRMED":
            return row
    return None
