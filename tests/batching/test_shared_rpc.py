"""`actors.shared_rpc.SharedRpc` against the real local chain: concurrent account reads merged into
few ``getMultipleAccounts`` calls with each caller's own answer, a failure typed for every caller,
one blockhash fetch for many signers."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import trio
from solders.commitment_config import CommitmentLevel
from solders.pubkey import Pubkey
from solders.rpc.responses import GetLatestBlockhashResp, GetMultipleAccountsResp

from actors.rpc_client import RpcClient, RpcError, RpcNodeError, RpcUnavailable, SolanaRpc
from actors.shared_rpc import MAX_KEYS, SharedRpc
from tests.trades.conftest import Desk


class Counting(RpcClient):
    """The real client, counting what reaches the chain: keys per read, calls per batch."""

    accounts_calls: list[int]
    batches: list[int]
    blockhash_calls: int

    async def get_multiple_accounts(
        self, pubkeys: Sequence[Pubkey], commitment: CommitmentLevel | None = None,
        *, timeout: float | None = None,
    ) -> GetMultipleAccountsResp:
        self.accounts_calls.append(len(pubkeys))
        return await super().get_multiple_accounts(pubkeys, commitment, timeout=timeout)

    async def get_multiple_accounts_batch(
        self, key_lists: Sequence[Sequence[Pubkey]], commitment: CommitmentLevel | None = None,
        *, timeout: float | None = None,
    ) -> list[GetMultipleAccountsResp | RpcNodeError]:
        self.accounts_calls.extend(len(keys) for keys in key_lists)
        self.batches.append(len(key_lists))
        return await super().get_multiple_accounts_batch(key_lists, commitment, timeout=timeout)

    async def get_latest_blockhash(
        self, commitment: CommitmentLevel | None = None, *, timeout: float | None = None
    ) -> GetLatestBlockhashResp:
        self.blockhash_calls += 1
        return await super().get_latest_blockhash(commitment, timeout=timeout)


def _keys(desk: Desk) -> list[Pubkey]:
    """Real accounts (the demo vault's token accounts, the pools) and a few that do not exist."""
    manifest = desk.node.manifest
    mints = [Pubkey.from_string(m["mint"]) for m in manifest["mints"].values()]
    pools = [Pubkey.from_string(p["pool"]) for p in manifest["pools"].values()]
    return [*(desk.vault.vault_token_account(desk.owner, m) for m in mints), *pools,
            *(Pubkey.new_unique() for _ in range(3))]


async def test_concurrent_reads_share_calls_and_each_caller_gets_its_own_accounts(desk: Desk) -> None:
    keys = _keys(desk)
    async with Counting(desk.node.url, rate_per_s=5000.0, burst=500, default_timeout_s=5.0) as inner:
        inner.accounts_calls, inner.batches, inner.blockhash_calls = [], [], 0
        shared = SharedRpc(inner)
        asks = [keys[i % len(keys):] + keys[:i % len(keys)] for i in range(150)]  # overlapping, rotated
        # ... plus two keys of their own each: 300 more, so the merged keys need several calls
        asks = [[*a[: 1 + i % 6], Pubkey.new_unique(), Pubkey.new_unique()] for i, a in enumerate(asks)]
        got: dict[int, GetMultipleAccountsResp] = {}

        async def read(i: int) -> None:
            got[i] = await shared.get_multiple_accounts(asks[i], timeout=5.0)

        async with trio.open_nursery() as nursery:
            for i in range(len(asks)):
                nursery.start_soon(read, i)
        calls, batches = list(inner.accounts_calls), list(inner.batches)
        direct = (await inner.get_multiple_accounts(keys, timeout=5.0)).value
    truth = dict(zip(keys, direct, strict=True))
    for i, ask in enumerate(asks):
        assert list(got[i].value) == [truth.get(k) for k in ask]  # a fresh key is no account
    # merged: each distinct key asked once, at most MAX_KEYS a call, the calls in one or two batches
    distinct = len(keys) + 2 * len(asks)
    assert sum(calls) <= distinct + len(keys) and max(calls) <= MAX_KEYS
    assert len(calls) <= 2 * (distinct // MAX_KEYS + 1) and 1 <= len(batches) <= 2


async def test_a_failed_merged_read_reaches_every_caller_typed() -> None:
    async with RpcClient("http://127.0.0.1:9", default_timeout_s=0.5) as dead:
        shared = SharedRpc(dead)
        errors: list[BaseException] = []

        async def read() -> None:
            try:
                await shared.get_multiple_accounts([Pubkey.new_unique()], timeout=0.5)
            except RpcError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(read)
    assert len(errors) == 5 and all(isinstance(e, RpcUnavailable) for e in errors)


async def test_many_signers_share_one_blockhash_and_too_many_keys_are_refused(desk: Desk) -> None:
    async with Counting(desk.node.url, rate_per_s=5000.0, burst=500, default_timeout_s=5.0) as inner:
        inner.accounts_calls, inner.blockhash_calls = [], 0
        shared: SolanaRpc = SharedRpc(inner, max_age_s=60.0)
        hashes = []

        async def sign() -> None:
            hashes.append((await shared.get_latest_blockhash(timeout=5.0)).value.blockhash)

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(sign)
        assert inner.blockhash_calls == 1 and len(set(hashes)) == 1
        with pytest.raises(ValueError, match="at most 100"):
            await shared.get_multiple_accounts([Pubkey.new_unique()] * (MAX_KEYS + 1))
