"""`RpcClientActor` under a real `Supervisor`, against a stand-in for a mainnet RPC provider.

The server (tests/rpc/conftest.py) stands in for a mainnet RPC provider and speaks the real Solana
JSON-RPC wire format over a real socket. The actor is started by a real supervisor and reached
only through its name with `ask`, as the executors will reach it.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
from solders.rpc.requests import GetBalance, GetSlot
from solders.rpc.responses import GetBalanceResp, GetMultipleAccountsResp, GetSlotResp
from solders.signature import Signature

from actors import ActorDied, ask
from actors.rpc_client import (
    ActorRpc,
    BlockhashNotFound,
    GetLatestBlockhashMsg,
    GetRpcHealth,
    GetSignatureStatusesMsg,
    GetTransactionsMsg,
    RetryPolicy,
    RpcBatch,
    RpcCall,
    RpcClient,
    RpcClientActor,
    SendTransactionMsg,
)
from supervisors import BreakerPolicy, ChildSpec, CrashChild, Supervisor
from tests.rpc.conftest import BLOCKHASH, preflight_failure, rpc_nodes, signed_transfer
from tests.runtime.conftest import running


def rpc_actor(url: str, *, max_in_flight: int) -> Callable[[], RpcClientActor]:
    def make_client() -> RpcClient:
        return RpcClient(url, retry=RetryPolicy(retries=1, min_s=0.01, max_s=0.05))

    return lambda: RpcClientActor(make_client, max_in_flight=max_in_flight, probe_interval_s=0.5)


async def test_the_actor_serves_concurrent_asks_at_once_not_one_after_another() -> None:
    async with rpc_nodes("mainnet") as [server]:
        sup = Supervisor([ChildSpec("rpc_client", rpc_actor(server.url, max_in_flight=8))])
        async with running(sup) as tree:
            rpc = tree.registry.ref("rpc_client")
            server.node.gate = trio.Event()  # the node answers only once all five are in flight
            slots: list[int] = []

            async def get_slot() -> None:
                answer = await ask(rpc, RpcCall(GetSlot(), GetSlotResp, timeout_s=5.0), timeout=6.0)
                slots.append(answer.value)

            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(get_slot)
                await server.node.wait_until(lambda: server.node.in_flight == 5)
                server.node.gate.set()
            assert sorted(slots) == [1001, 1002, 1003, 1004, 1005]

            async with trio.open_nursery() as nursery:  # many more callers than slots: all answered
                for _ in range(50):
                    nursery.start_soon(get_slot)
            assert sorted(slots) == list(range(1001, 1056))
            assert server.node.count() == 55


async def test_the_actor_answers_each_message_type_with_its_typed_result() -> None:
    tx = signed_transfer()
    async with rpc_nodes("mainnet") as [server]:
        sup = Supervisor([ChildSpec("rpc_client", rpc_actor(server.url, max_in_flight=4))])
        async with running(sup) as tree:
            rpc = tree.registry.ref("rpc_client")
            latest = await ask(rpc, GetLatestBlockhashMsg(), timeout=5.0)
            assert str(latest.value.blockhash) == BLOCKHASH
            assert await ask(rpc, SendTransactionMsg(bytes(tx)), timeout=5.0) == tx.signatures[0]
            statuses = await ask(rpc, GetSignatureStatusesMsg((tx.signatures[0],)), timeout=5.0)
            assert statuses.value[0] is not None
            txs = await ask(rpc, GetTransactionsMsg((tx.signatures[0], Signature.default())), timeout=5.0)
            assert [getattr(t, "value", None) is not None for t in txs] == [True, False]
            balance = await ask(rpc, RpcCall(GetBalance(tx.message.account_keys[0]), GetBalanceResp),
                                timeout=5.0)
            assert balance.value == 5000
            key = tx.message.account_keys[0]
            batched = await ask(rpc, RpcBatch((GetBalance(key), GetBalance(key)), GetBalanceResp),
                                timeout=5.0)
            assert [b.value for b in batched] == [5000, 5000]  # one POST, an answer per request
            reads = await ActorRpc(rpc).get_multiple_accounts_batch([[key], [key, key]], timeout=5.0)
            assert [[a.lamports if a else None for a in r.value] for r in reads
                    if isinstance(r, GetMultipleAccountsResp)] == [[7, None], [7, None]]  # the stand-in's

            server.node.errors["sendTransaction"] = preflight_failure(
                "BlockhashNotFound", [], "Transaction simulation failed: Blockhash not found")
            with pytest.raises(BlockhashNotFound):  # the typed error reaches the asker
                await ask(rpc, SendTransactionMsg(bytes(tx)), timeout=5.0)

            health = await ask(rpc, GetRpcHealth(), timeout=5.0)
            assert (health.state, health.active_endpoint) == ("up", "primary")
            assert sup.tree().children[0].restarts == 0  # errors were answers, not crashes


async def test_a_crash_fails_the_calls_in_flight_and_the_next_incarnation_answers_the_queued_ones() -> None:
    async with rpc_nodes("mainnet") as [server]:
        sup = Supervisor([ChildSpec("rpc_client", rpc_actor(server.url, max_in_flight=2))])
        async with running(sup) as tree:
            rpc = tree.registry.ref("rpc_client")
            server.node.gate = trio.Event()  # the node holds every request until the test opens it
            outcomes: dict[str, object] = {}

            async def get_slot(tag: str) -> None:
                try:
                    answer = await ask(rpc, RpcCall(GetSlot(), GetSlotResp, timeout_s=5.0), timeout=8.0)
                    outcomes[tag] = answer.value
                except ActorDied as exc:
                    outcomes[tag] = exc

            async with trio.open_nursery() as nursery:
                nursery.start_soon(get_slot, "in-flight-1")
                nursery.start_soon(get_slot, "in-flight-2")
                await server.node.wait_until(lambda: server.node.in_flight == 2)
                nursery.start_soon(get_slot, "queued-1")
                nursery.start_soon(get_slot, "queued-2")
                with trio.fail_after(5.0):
                    while rpc.depth < 2:  # noqa: ASYNC110 -- both wait in the mailbox: no slot is free
                        await trio.sleep(0.01)

                await ask(tree.registry.ref("root"), CrashChild("rpc_client"), timeout=5.0)
                await server.node.wait_until(lambda: server.node.count() == 4)  # the new incarnation
                server.node.gate.set()

            assert isinstance(outcomes["in-flight-1"], ActorDied)
            assert isinstance(outcomes["in-flight-2"], ActorDied)
            queued = [outcomes["queued-1"], outcomes["queued-2"]]
            assert all(isinstance(slot, int) and slot > 1000 for slot in queued)  # answered, not failed
            assert sup.tree().children[0].restarts == 1


async def test_a_graceful_stop_lets_the_calls_in_flight_finish() -> None:
    async with rpc_nodes("mainnet") as [server]:
        sup = Supervisor([ChildSpec("rpc_client", rpc_actor(server.url, max_in_flight=4))])
        async with running(sup) as tree:
            rpc = tree.registry.ref("rpc_client")
            server.node.gate = trio.Event()
            answers: list[int] = []

            async def get_slot() -> None:
                answer = await ask(rpc, RpcCall(GetSlot(), GetSlotResp, timeout_s=5.0), timeout=6.0)
                answers.append(answer.value)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(get_slot)
                await server.node.wait_until(lambda: server.node.in_flight == 1)
                sup.request_stop()
                server.node.gate.set()
            assert answers == [1001]


async def test_the_actors_probe_brings_traffic_back_to_the_primary_without_any_caller() -> None:
    def make_client(primary: str, backup: str) -> RpcClient:
        policy = BreakerPolicy(consecutive_failures=1, recovery_s=0.2)
        return RpcClient(primary, backup, breaker_policy=policy,
                         retry=RetryPolicy(retries=1, min_s=0.01, max_s=0.05))

    async with rpc_nodes("primary", "backup") as [primary, backup]:
        spec = ChildSpec("rpc_client", lambda: RpcClientActor(
            lambda: make_client(primary.url, backup.url), probe_interval_s=0.05))
        async with running(Supervisor([spec])) as tree:
            rpc = tree.registry.ref("rpc_client")
            await primary.stop()
            answer = await ask(rpc, RpcCall(GetSlot(), GetSlotResp), timeout=5.0)
            assert answer.value == 1001 and backup.node.count("getSlot") == 1
            assert (await ask(rpc, GetRpcHealth(), timeout=5.0)).active_endpoint == "backup"

            await primary.start()
            await primary.node.wait_until(lambda: primary.node.count("getHealth") >= 1)
            with trio.fail_after(5.0):
                # the probe's answer reaches the client just after the node sent it
                while (await ask(rpc, GetRpcHealth(), timeout=5.0)).breakers[0] != ("primary", "closed"):  # noqa: ASYNC110
                    await trio.sleep(0.01)
            assert (await ask(rpc, GetRpcHealth(), timeout=5.0)).active_endpoint == "primary"
            await ask(rpc, RpcCall(GetSlot(), GetSlotResp), timeout=5.0)
            # Only heartbeats (getHealth) and the one call; the backup served just its own call.
            assert [m for m in primary.node.methods if m != "getHealth"] == ["getSlot"]
            assert backup.node.count("getSlot") == 1
