"""One trade attempt against the real local chain and programs, and recovery from a crash between
any two of its steps: the outcome recorded is the chain's, the same signed bytes never execute
twice, a dropped transaction is declared FAILED only once its blockhash has expired, and nothing
is sent when the database cannot make the signed bytes durable first."""

from __future__ import annotations

import pytest
import trio

from actors.rpc_client import AlreadyProcessed, RetryPolicy, RpcClient
from actors.trade_execution import execute_attempt, reconcile, sign_attempt
from actors.trade_lifecycle import FailureReason, TradeStatus
from actors.trade_store import AttemptStillLive, TradeStore
from engine.postgres_gateway import PostgresGateway
from sql.errors import DatabaseUnavailable
from tests.trades.conftest import TRADE_USDC, Desk, new_trade

P, S, C, F = TradeStatus.PENDING, TradeStatus.SUBMITTED, TradeStatus.CONFIRMED, TradeStatus.FAILED


async def transitions(store: TradeStore, trade_id: str) -> list[tuple[TradeStatus | None, TradeStatus]]:
    """The status changes in trade_events (resend audit rows, from == to, left out)."""
    events = await store.events(trade_id)
    return [(e.from_status, e.to_status) for e in events if e.from_status != e.to_status]


async def landed_once(desk: Desk, rpc: RpcClient, signature: str) -> bool:
    return [ok for sig, ok in await desk.vault_signatures(rpc) if sig == signature] == [True]


async def test_an_attempt_goes_pending_submitted_confirmed_with_the_amount_out_of_the_chain(
    store: TradeStore, rpc: RpcClient, desk: Desk
) -> None:
    trade = await store.insert_intent(new_trade(desk, minimum_amount_out=1))
    before = await desk.jup_balance(rpc)

    done = await execute_attempt(store, rpc, desk.bot, desk.vault, desk.owner, trade,
                                 desk.route(TRADE_USDC), desk.settings)

    assert done.status is C and done.transaction_signature is not None
    [event] = await desk.executed(rpc, done.transaction_signature)
    assert (event.amount_in, event.amount_out) == (TRADE_USDC, done.amount_out)
    assert await desk.jup_balance(rpc) - before == done.amount_out
    assert await transitions(store, trade.id) == [(None, P), (P, S), (S, C)]
    assert await landed_once(desk, rpc, done.transaction_signature)


async def test_a_minimum_above_what_the_pool_gives_fails_slippage_exceeded(
    store: TradeStore, rpc: RpcClient, desk: Desk
) -> None:
    minimum = 2 * await desk.quote(rpc, TRADE_USDC)
    trade = await store.insert_intent(new_trade(desk, minimum_amount_out=minimum))
    before = await desk.jup_balance(rpc)

    done = await execute_attempt(store, rpc, desk.bot, desk.vault, desk.owner, trade,
                                 desk.route(TRADE_USDC), desk.settings)

    assert (done.status, done.failure_reason) == (F, FailureReason.SLIPPAGE_EXCEEDED)
    assert done.failure_details["error"] == "SlippageExceeded" and done.amount_out is None
    assert await transitions(store, trade.id) == [(None, P), (P, S), (S, F)]
    assert [e.reason for e in await store.events(trade.id)][-1] == "slippage_exceeded"
    assert await desk.jup_balance(rpc) == before
    vault_history = await desk.vault_signatures(rpc)
    assert [ok for sig, ok in vault_history if sig == done.transaction_signature] == [False]  # landed, failed


async def test_a_crash_after_persisting_before_sending_is_recovered_by_sending_the_same_bytes(
    store: TradeStore, rpc: RpcClient, desk: Desk
) -> None:
    trade = await store.insert_intent(new_trade(desk, minimum_amount_out=1))
    signed = await sign_attempt(rpc, desk.bot, desk.vault, desk.owner, trade, desk.route(TRADE_USDC),
                                timeout=5.0)
    await store.persist_signed(trade.id, signed.wire, str(signed.signature), signed.last_valid_block_height)
    # -- the process dies here: durable, never sent

    [done] = await reconcile(store, rpc, desk.settings)

    assert done.status is C and done.transaction_signature == str(signed.signature)
    assert done.signed_transaction == signed.wire  # sent as stored, never re-signed
    assert await landed_once(desk, rpc, str(signed.signature))
    assert await transitions(store, trade.id) == [(None, P), (P, S), (S, C)]


async def test_a_crash_after_sending_is_recovered_and_the_same_bytes_sent_again_execute_once(
    store: TradeStore, rpc: RpcClient, desk: Desk
) -> None:
    trade = await store.insert_intent(new_trade(desk, minimum_amount_out=1))
    before = await desk.jup_balance(rpc)
    signed = await sign_attempt(rpc, desk.bot, desk.vault, desk.owner, trade, desk.route(TRADE_USDC),
                                timeout=5.0)
    await store.persist_signed(trade.id, signed.wire, str(signed.signature), signed.last_valid_block_height)
    for _ in range(3):  # a retrying sender: the same bytes, three times
        assert await rpc.send_transaction(signed.wire, skip_preflight=True, timeout=5.0) == signed.signature
    # -- the process dies here: sent, still PENDING in the database, outcome never read

    [done] = await reconcile(store, rpc, desk.settings)
    assert done.status is C
    with pytest.raises(AlreadyProcessed):  # and once more after it landed: refused
        await rpc.send_transaction(signed.wire, timeout=5.0)
    assert await reconcile(store, rpc, desk.settings) == []

    assert await landed_once(desk, rpc, str(signed.signature))
    assert await desk.jup_balance(rpc) - before == done.amount_out  # one execution's worth
    [event] = await desk.executed(rpc, str(signed.signature))
    assert event.amount_out == done.amount_out
    assert await transitions(store, trade.id) == [(None, P), (P, S), (S, C)]


async def test_a_dropped_transaction_fails_expired_only_after_its_blockhash_and_a_new_attempt_lands(
    store: TradeStore, rpc: RpcClient, faults: Desk
) -> None:
    desk = faults
    trade = await store.insert_intent(new_trade(desk, minimum_amount_out=1))
    await desk.set_faults(dropRate=1.0)
    signed = await sign_attempt(rpc, desk.bot, desk.vault, desk.owner, trade, desk.route(TRADE_USDC),
                                timeout=5.0)
    await store.persist_signed(trade.id, signed.wire, str(signed.signature), signed.last_valid_block_height)
    await rpc.send_transaction(signed.wire, skip_preflight=True, timeout=5.0)  # dropped by the leader
    await store.mark_submitted(trade.id)
    with pytest.raises(AttemptStillLive):
        await store.new_attempt(trade.intent_id)

    [first] = await reconcile(store, rpc, desk.settings)  # resends (dropped) until the blockhash expires

    assert (first.status, first.failure_reason) == (F, FailureReason.EXPIRED)
    assert first.failure_details["block_height"] > signed.last_valid_block_height
    assert (await rpc.get_signature_statuses([signed.signature], search_transaction_history=True,
                                             timeout=5.0)).value == [None]
    assert any(e.reason == "resent" for e in await store.events(trade.id))

    await desk.set_faults(dropRate=0.0)
    second = await store.new_attempt(trade.intent_id)
    done = await execute_attempt(store, rpc, desk.bot, desk.vault, desk.owner, second,
                                 desk.route(TRADE_USDC), desk.settings)
    assert (done.status, done.attempt) == (C, 2)
    assert done.transaction_signature != str(signed.signature)
    assert await landed_once(desk, rpc, str(done.transaction_signature))
    # the expired bytes can no longer land, even sent again
    await rpc.send_transaction(signed.wire, skip_preflight=True, timeout=5.0)
    assert (await rpc.get_signature_statuses([signed.signature], search_transaction_history=True,
                                             timeout=5.0)).value == [None]
    assert [t.status for t in await store.attempts(trade.intent_id)] == [F, C]


async def test_nothing_is_sent_when_the_database_cannot_make_the_signed_bytes_durable(
    store: TradeStore, rpc: RpcClient, desk: Desk, db_url: str
) -> None:
    trade = await store.insert_intent(new_trade(desk, minimum_amount_out=1))
    history = await desk.vault_signatures(rpc)
    failing = PostgresGateway(db_url, pool_min=1, pool_max=1, backoff_max=0.5)
    async with trio.open_nursery() as nursery:
        with trio.fail_after(20):
            await nursery.start(failing.serve)
        nursery.cancel_scope.cancel()  # the database goes away before the executor writes
    window_start = await rpc.get_block_height(timeout=5.0)

    with pytest.raises(DatabaseUnavailable):
        await execute_attempt(TradeStore(failing, timeout_s=2.0), rpc, desk.bot, desk.vault, desk.owner,
                              trade, desk.route(TRADE_USDC), desk.settings)

    # Whatever was signed used a blockhash valid at most until now + the window: once the chain is
    # past that, nothing signed in that call can ever land. It did not.
    after = await rpc.get_block_height(timeout=5.0)
    await desk.wait_for_height(rpc, after + int(desk.node.manifest["blockhashWindow"]) + 1)
    assert await desk.vault_signatures(rpc) == history
    assert window_start <= after
    stored = await store.get(trade.id)
    assert (stored.status, stored.signed_transaction) == (P, None)
    [recovered] = await reconcile(store, rpc, desk.settings)
    assert (recovered.status, recovered.failure_reason) == (F, FailureReason.NEVER_SENT)


async def test_the_same_bytes_queued_three_times_before_landing_execute_once(
    store: TradeStore, rpc: RpcClient, faults: Desk
) -> None:
    desk = faults
    trade = await store.insert_intent(new_trade(desk, minimum_amount_out=1))
    before = await desk.jup_balance(rpc)
    await desk.set_faults(landDelaySlots=4)  # each send is held by the leader for 4 slots
    signed = await sign_attempt(rpc, desk.bot, desk.vault, desk.owner, trade, desk.route(TRADE_USDC),
                                timeout=5.0)
    await store.persist_signed(trade.id, signed.wire, str(signed.signature), signed.last_valid_block_height)
    for _ in range(3):
        await rpc.send_transaction(signed.wire, skip_preflight=True, timeout=5.0)
    await store.mark_submitted(trade.id)

    [done] = await reconcile(store, rpc, desk.settings)

    assert done.status is C
    assert await landed_once(desk, rpc, str(signed.signature))
    assert await desk.jup_balance(rpc) - before == done.amount_out


async def test_no_blockhash_means_nothing_signed_and_the_attempt_fails_rpc_unavailable(
    store: TradeStore, desk: Desk
) -> None:
    trade = await store.insert_intent(new_trade(desk, minimum_amount_out=1))
    async with RpcClient("http://127.0.0.1:9", default_timeout_s=2.0,
                         retry=RetryPolicy(retries=1, min_s=0.01, max_s=0.05)) as dead:
        done = await execute_attempt(store, dead, desk.bot, desk.vault, desk.owner, trade,
                                     desk.route(TRADE_USDC), desk.settings)
    assert (done.status, done.failure_reason, done.signed_transaction) == (F, "rpc_unavailable", None)
    assert await transitions(store, trade.id) == [(None, P), (P, F)]
    assert (await store.new_attempt(trade.intent_id)).attempt == 2
