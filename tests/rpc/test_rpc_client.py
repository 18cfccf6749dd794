"""`RpcClient` against stand-ins for a mainnet RPC provider on real sockets.

The servers (tests/rpc/conftest.py) stand in for a mainnet RPC provider and speak the real Solana
JSON-RPC wire format; nothing is mocked: every call crosses a TCP connection to hypercorn (or, for
the mid-response stall, to a raw trio TCP server). Requests are counted and compared at the server.
No test sleeps to let something happen; conditions are awaited under deadlines.
"""

from __future__ import annotations

import logging

import pytest
import trio
from prometheus_client import REGISTRY
from solders.hash import Hash
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTokenAccountsFilterProgramId
from solders.rpc.requests import GetSlot
from solders.rpc.responses import GetSlotResp, GetTransactionResp
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import TransactionErrorFieldless, TransactionErrorInstructionError

from actors.rpc_client import (
    AlreadyProcessed,
    BlockhashNotFound,
    EndpointLabel,
    RetryPolicy,
    RpcClient,
    RpcNodeError,
    RpcRateLimited,
    RpcTimeout,
    RpcUnavailable,
    TransactionSimulationFailed,
    redact_url,
)
from supervisors import BreakerPolicy, BreakerState
from tests.rpc.conftest import (
    BLOCKHASH,
    TOKEN_PROGRAM,
    Fault,
    half_headers_server,
    preflight_failure,
    rpc_nodes,
    signed_transfer,
)

FAST_RETRY = RetryPolicy(retries=3, min_s=0.01, max_s=0.05, jitter=0.1)


def requests_total(method: str, endpoint: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "xorj_rpc_requests_total", {"method": method, "endpoint": endpoint, "outcome": outcome})
    return value or 0.0


async def wait_for_state(
    client: RpcClient, label: EndpointLabel, state: BreakerState, timeout: float = 5.0
) -> None:
    """Poll under a deadline: the breaker half-opens by reading its clock, there is no event."""
    breaker = client.breaker(label)
    with trio.fail_after(timeout):
        while breaker.state is not state:  # noqa: ASYNC110
            await trio.sleep(0.01)


async def test_every_response_parses_into_its_solders_type() -> None:
    tx = signed_transfer()
    sig = tx.signatures[0]
    owner = Pubkey.from_string("9WzDXwBbmkg8ZTbNMqUxvQRAyrZzDsGYdLVL9zYtAWWM")
    async with rpc_nodes("mainnet") as [server], RpcClient(server.url) as rpc:
        assert (await rpc.get_health()).value == "ok"
        assert await rpc.get_slot() == 1001
        assert await rpc.get_block_height() == 1200
        latest = await rpc.get_latest_blockhash()
        assert str(latest.value.blockhash) == BLOCKHASH
        assert latest.value.last_valid_block_height == 1350
        assert latest.context.slot == 2792
        assert await rpc.is_blockhash_valid(Hash.from_string(BLOCKHASH)) is True
        assert await rpc.get_balance(owner) == 5000
        info = await rpc.get_account_info(owner)
        assert info.value is not None and info.value.data == b"\x01\x02\x03"
        many = await rpc.get_multiple_accounts([owner, owner])
        assert many.value[0] is not None and many.value[0].lamports == 7 and many.value[1] is None
        balance = await rpc.get_token_account_balance(owner)
        assert balance.value.amount == "9864" and balance.value.decimals == 2
        tokens = await rpc.get_token_accounts_by_owner(
            owner, RpcTokenAccountsFilterProgramId(Pubkey.from_string(TOKEN_PROGRAM)))
        assert str(tokens.value[0].account.owner) == TOKEN_PROGRAM
        history = await rpc.get_signatures_for_address(owner)
        assert history.value[0].signature == sig and history.value[0].slot == 114
        statuses = await rpc.get_signature_statuses([sig, Signature.default()])
        first = statuses.value[0]
        assert first is not None and first.slot == 72 and first.err is None
        assert statuses.value[1] is None
        found = await rpc.get_transaction(sig)
        assert found.value is not None and found.value.slot == 430
        meta = found.value.transaction.meta
        assert meta is not None and meta.fee == 5000
        assert await rpc.send_transaction(bytes(tx)) == sig
        simulated = await rpc.simulate_transaction(VersionedTransaction.from_bytes(bytes(tx)))
        assert simulated.value.err is None and simulated.value.units_consumed == 150
        assert await rpc.call(GetSlot(), GetSlotResp) == GetSlotResp(1002)
        assert rpc.health().state == "up"


async def test_get_transactions_is_one_batched_post_answered_in_request_order() -> None:
    known = signed_transfer().signatures[0]
    unknown = Signature.default()
    async with rpc_nodes("mainnet") as [server], RpcClient(server.url) as rpc:
        answers = await rpc.get_transactions([unknown, known, unknown])
        assert server.node.count() == 3 and len(server.node.bodies) == 1  # three calls, one POST
        assert [type(a) for a in answers] == [GetTransactionResp] * 3
        assert [a.value is not None for a in answers if isinstance(a, GetTransactionResp)] == [
            False, True, False]
        assert rpc.bucket.stats.granted == 3  # a batch costs one token per call


async def test_a_batch_larger_than_max_batch_is_split_and_still_answered_in_order() -> None:
    known = signed_transfer().signatures[0]
    signatures = [known if i % 2 else Signature.default() for i in range(5)]
    async with rpc_nodes("mainnet") as [server], RpcClient(server.url, max_batch=2) as rpc:
        answers = await rpc.get_transactions(signatures)
        assert len(server.node.bodies) == 3 and server.node.count("getTransaction") == 5
        assert [isinstance(a, GetTransactionResp) and a.value is not None for a in answers] == [
            False, True, False, True, False]


async def test_preflight_failure_is_a_typed_error_with_the_programs_logs_and_is_not_retried() -> None:
    logs = ["Program XoRJ invoke [1]", "Program log: slippage exceeded", "Program XoRJ failed"]
    async with rpc_nodes("mainnet") as [server], RpcClient(server.url, retry=FAST_RETRY) as rpc:
        server.node.errors["sendTransaction"] = preflight_failure(
            {"InstructionError": [0, {"Custom": 6001}]}, logs,
            "Transaction simulation failed: Error processing Instruction 0: custom program error: 0x1771")
        with pytest.raises(TransactionSimulationFailed) as caught:
            await rpc.send_transaction(bytes(signed_transfer()))
        assert caught.value.code == -32002
        assert caught.value.logs == logs
        assert isinstance(caught.value.err, TransactionErrorInstructionError)
        assert server.node.count("sendTransaction") == 1
        assert rpc.breaker("primary").state is BreakerState.CLOSED  # an answer, not an outage


async def test_blockhash_not_found_and_already_processed_are_their_own_errors() -> None:
    async with rpc_nodes("mainnet") as [server], RpcClient(server.url, retry=FAST_RETRY) as rpc:
        tx = bytes(signed_transfer())
        server.node.errors["sendTransaction"] = preflight_failure(
            "BlockhashNotFound", [], "Transaction simulation failed: Blockhash not found")
        with pytest.raises(BlockhashNotFound) as expired:
            await rpc.send_transaction(tx)
        assert expired.value.err == TransactionErrorFieldless.BlockhashNotFound
        server.node.errors["sendTransaction"] = preflight_failure(
            "AlreadyProcessed", [],
            "Transaction simulation failed: This transaction has already been processed")
        with pytest.raises(AlreadyProcessed):
            await rpc.send_transaction(tx)
        assert server.node.count("sendTransaction") == 2


async def test_other_json_rpc_errors_carry_code_message_and_data() -> None:
    async with rpc_nodes("mainnet") as [server], RpcClient(server.url, retry=FAST_RETRY) as rpc:
        server.node.errors["getSlot"] = {"code": -32602, "message": "Invalid params: expected a map",
                                         "data": {"hint": "config"}}
        with pytest.raises(RpcNodeError) as caught:
            await rpc.get_slot()
        assert (caught.value.code, caught.value.message, caught.value.data) == (
            -32602, "Invalid params: expected a map", {"hint": "config"})
        assert server.node.count() == 1


async def test_a_node_that_stalls_mid_headers_fails_the_call_within_its_deadline() -> None:
    async with half_headers_server() as server:
        async with RpcClient(
            server.url, attempt_timeout_s=5.0, retry=RetryPolicy(retries=0),
            breaker_policy=BreakerPolicy(consecutive_failures=1),
        ) as rpc:
            with trio.fail_after(3.0):  # the test's own guard: the call must not hang
                with pytest.raises(RpcTimeout) as caught:
                    await rpc.get_slot(timeout=0.3)
            assert server.requests == 1 and server.stalled.is_set()
            assert "getSlot" in str(caught.value)
            assert rpc.health().state == "down"
            assert rpc.breaker("primary").state is BreakerState.OPEN  # the stall counted against the node


async def test_5xx_and_429_are_retried_with_backoff_until_the_node_answers() -> None:
    tolerant = BreakerPolicy(consecutive_failures=10, min_calls=100)
    async with rpc_nodes("mainnet") as [server], RpcClient(
        server.url, retry=FAST_RETRY, breaker_policy=tolerant
    ) as rpc:
        before = requests_total("getSlot", "primary", "http_error")
        unhealthy = {"code": -32005, "message": "Node is behind by 42 slots", "data": {"numSlotsBehind": 42}}
        server.node.faults.extend([Fault(status=502), Fault(status=429), Fault(rpc_error=unhealthy)])
        assert await rpc.get_slot() == 1001
        assert server.node.count("getSlot") == 4
        assert requests_total("getSlot", "primary", "http_error") - before == 2
        assert requests_total("getSlot", "primary", "node_unhealthy") >= 1
        server.node.faults.extend([Fault(status=500)] * 4)
        with pytest.raises(RpcUnavailable) as caught:
            await rpc.get_slot()
        assert caught.value.attempts == 4 and "HTTP 500" in caught.value.reason
        assert server.node.count("getSlot") == 8


async def test_a_throttling_nodes_retry_after_is_honoured_and_not_waited_past_the_deadline() -> None:
    async with rpc_nodes("mainnet") as [server], RpcClient(server.url, retry=FAST_RETRY) as rpc:
        server.node.faults.append(Fault(status=429, retry_after="30"))
        with trio.fail_after(3.0):
            with pytest.raises(RpcUnavailable) as caught:
                await rpc.get_slot(timeout=2.0)
        assert "retry after 30s" in caught.value.reason and caught.value.attempts == 1
        assert not isinstance(caught.value, RpcTimeout)  # it gave up at once, not at the deadline
        server.node.faults.append(Fault(status=429, retry_after="0.1"))
        assert await rpc.get_slot(timeout=2.0) == 1001
        assert server.node.count() == 3


async def test_a_retried_send_posts_the_same_signed_bytes_again() -> None:
    tx = signed_transfer()
    async with rpc_nodes("mainnet") as [server], RpcClient(
        server.url, attempt_timeout_s=0.3, retry=FAST_RETRY
    ) as rpc:
        server.node.faults.extend([Fault(status=503), Fault(hang=True)])
        assert await rpc.send_transaction(bytes(tx), timeout=5.0) == tx.signatures[0]
        assert server.node.count("sendTransaction") == 3
        assert len(set(server.node.bodies)) == 1  # byte-identical: same transaction, same signature


async def test_fails_over_to_the_backup_when_the_primary_stalls_and_returns_when_it_recovers() -> None:
    policy = BreakerPolicy(consecutive_failures=2, recovery_s=0.3)
    async with rpc_nodes("primary", "backup") as [primary, backup], RpcClient(
        primary.url, backup.url, attempt_timeout_s=0.2, breaker_policy=policy, retry=FAST_RETRY
    ) as rpc:
        assert await rpc.get_slot() == 1001
        primary.node.stalled = True
        assert await rpc.get_slot() == 1001  # the primary timed out; the backup answered
        assert await rpc.get_slot() == 1002
        assert rpc.breaker("primary").state is BreakerState.OPEN
        assert rpc.health().active_endpoint == "backup"
        seen = primary.node.count()
        for _ in range(3):
            await rpc.get_slot()
        assert primary.node.count() == seen  # an open breaker: not even a connection attempt
        assert backup.node.count("getSlot") == 5

        primary.node.stalled = False
        await wait_for_state(rpc, "primary", BreakerState.HALF_OPEN)
        assert await rpc.get_slot() == 1002  # the half-open trial went to the primary...
        assert primary.node.count() == seen + 1
        assert rpc.breaker("primary").state is BreakerState.CLOSED  # ...and closed its breaker
        assert rpc.health().active_endpoint == "primary"


async def test_fails_over_when_the_primary_is_off_the_network_and_a_probe_brings_it_back() -> None:
    policy = BreakerPolicy(consecutive_failures=1, recovery_s=0.2)
    async with rpc_nodes("primary", "backup") as [primary, backup], RpcClient(
        primary.url, backup.url, breaker_policy=policy, retry=FAST_RETRY
    ) as rpc:
        await primary.stop()  # listener closed: connection refused
        before = requests_total("getSlot", "primary", "transport_error")
        assert await rpc.get_slot() == 1001
        assert requests_total("getSlot", "primary", "transport_error") - before == 1
        assert rpc.health().active_endpoint == "backup" and rpc.health().state == "up"
        assert await rpc.probe_primary() is False  # breaker still open: no network at all

        await primary.start()  # back on the same port
        await wait_for_state(rpc, "primary", BreakerState.HALF_OPEN)
        assert await rpc.probe_primary() is True
        assert primary.node.methods == ["getHealth"]  # the trial was a probe, not a caller's call
        assert await rpc.get_slot() == 1001
        assert primary.node.methods == ["getHealth", "getSlot"]
        assert backup.node.count() == 1


async def test_the_breaker_opens_fails_fast_and_half_opens_after_its_recovery_wait() -> None:
    policy = BreakerPolicy(consecutive_failures=2, recovery_s=0.3)
    async with rpc_nodes("mainnet") as [server], RpcClient(
        server.url, breaker_policy=policy, retry=RetryPolicy(retries=0)
    ) as rpc:
        assert rpc.health().state == "connecting"
        server.node.faults.extend([Fault(status=500), Fault(status=500)])
        for _ in range(2):
            with pytest.raises(RpcUnavailable):
                await rpc.get_slot()
        assert rpc.breaker("primary").state is BreakerState.OPEN
        before = requests_total("getSlot", "primary", "breaker_open")
        for _ in range(5):
            with pytest.raises(RpcUnavailable) as caught:
                await rpc.get_slot()
            assert "circuit breaker open" in caught.value.reason and caught.value.attempts == 0
        assert server.node.count() == 2  # five calls refused without touching the network
        assert requests_total("getSlot", "primary", "breaker_open") - before == 5
        health = rpc.health()
        assert health.state == "down" and health.breakers == (("primary", "open"),)

        await wait_for_state(rpc, "primary", BreakerState.HALF_OPEN)
        assert await rpc.get_slot() == 1001
        assert server.node.count() == 3
        assert rpc.breaker("primary").state is BreakerState.CLOSED
        assert rpc.health().state == "up"


async def test_the_rate_limit_refuses_calls_whose_token_cannot_come_before_their_deadline() -> None:
    async with rpc_nodes("mainnet") as [server], RpcClient(server.url, rate_per_s=0.5, burst=3) as rpc:
        outcomes: list[str] = []

        async def one() -> None:
            try:
                await rpc.get_slot(timeout=1.0)
                outcomes.append("ok")
            except RpcRateLimited:
                outcomes.append("rate_limited")

        async with trio.open_nursery() as nursery:
            for _ in range(7):
                nursery.start_soon(one)
        assert sorted(outcomes) == ["ok"] * 3 + ["rate_limited"] * 4
        assert server.node.count() == 3
        stats = rpc.bucket.stats
        assert (stats.granted, stats.refused) == (3, 4)


async def test_the_rate_limit_makes_callers_wait_for_tokens_within_their_deadline() -> None:
    async with rpc_nodes("mainnet") as [server], RpcClient(server.url, rate_per_s=4.0, burst=1) as rpc:
        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(rpc.get_slot)
        assert server.node.count() == 3
        stats = rpc.bucket.stats
        assert (stats.granted, stats.waited, stats.refused) == (3, 2, 0)  # the 2nd and 3rd waited


async def test_urls_never_appear_in_logs_errors_or_metrics(
    caplog: pytest.LogCaptureFixture, free_port: int
) -> None:
    secret = "k3y-SECRET"
    assert secret not in redact_url(f"https://user:{secret}@rpc.example.com:8899/{secret}/?api-key={secret}")
    assert redact_url("https://rpc.example.com/?api-key=x") == "https://rpc.example.com/<redacted>"
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # the engine quiets httpx; here we want its lines
    async with rpc_nodes("mainnet", path=f"/{secret}/") as [server], RpcClient(
        server.url + f"?api-key={secret}", f"http://user:{secret}@127.0.0.1:{free_port}/?api-key={secret}",
        retry=FAST_RETRY,
    ) as rpc:
        assert await rpc.get_slot() == 1001
        await server.stop()
        with pytest.raises(RpcUnavailable) as caught:
            await rpc.get_slot()
        assert secret not in str(caught.value)
        assert secret not in (rpc.health().last_error or "")
    assert "HTTP Request" in caplog.text  # httpx did log its requests, through our filter
    assert secret not in caplog.text
    metrics = "".join(str(s) for family in REGISTRY.collect() for s in family.samples)
    assert secret not in metrics and "127.0.0.1" not in metrics


async def test_while_the_half_open_trial_is_in_flight_other_calls_are_refused_without_a_request() -> None:
    policy = BreakerPolicy(consecutive_failures=1, recovery_s=0.2)
    async with rpc_nodes("mainnet") as [server], RpcClient(
        server.url, breaker_policy=policy, retry=RetryPolicy(retries=0)
    ) as rpc:
        server.node.faults.append(Fault(status=500))
        with pytest.raises(RpcUnavailable):
            await rpc.get_slot()
        await wait_for_state(rpc, "primary", BreakerState.HALF_OPEN)
        server.node.gate = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rpc.get_slot)  # the one trial
            await server.node.wait_until(lambda: server.node.in_flight == 1)
            granted = rpc.bucket.stats.granted
            with pytest.raises(RpcUnavailable) as caught:
                await rpc.get_slot()
            assert "is open" in caught.value.reason and caught.value.attempts == 0
            assert rpc.bucket.stats.granted == granted  # its token was given back
            server.node.gate.set()
        assert server.node.count() == 2
        assert rpc.breaker("primary").state is BreakerState.CLOSED
