"""The executors' shared view of the RPC: one recent blockhash for every signer, and concurrent
account reads merged into few ``getMultipleAccounts`` calls.

Owns: `SharedRpc`, a `SolanaRpc` over another one (the node's `ActorRpc`) that

- answers ``getLatestBlockhash`` at ``confirmed`` from a copy at most ``max_age_s`` old. A
  blockhash stays valid for ~150 blocks (60-90 s); reusing one for a second costs a trade at most
  that second of its validity window, and its ``last_valid_block_height`` comes with it, so the
  expiry the trade store records is exactly the chain's. Concurrent callers of a stale copy share
  one refresh (single flight);
- merges the ``getMultipleAccounts`` of callers that ask at the same moment (a ranking change
  reaching thousands of executors, each reading its vault) through an `actors.batcher.Batcher`:
  their keys, de-duplicated, go out ``MAX_KEYS`` per call (the RPC's limit), the calls as one
  JSON-RPC batch (`SolanaRpc.get_multiple_accounts_batch`: a POST per ``max_batch`` calls -- HTTP
  exchanges, not keys, are what a client pays for), and each caller gets its own accounts in its
  own order;
- passes every other call to the RPC it wraps.

Failure it contains: none of its own -- a failed call raises the wrapped RPC's typed error to every
caller that shared it, and the next caller tries again.

May import: the standard library, trio, solders, `actors.rpc_client`, `actors.batcher`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import attrs
import trio
from solders.account import Account
from solders.commitment_config import CommitmentLevel
from solders.pubkey import Pubkey
from solders.rpc.responses import (
    GetLatestBlockhashResp,
    GetMultipleAccountsResp,
    RpcResponseContext,
)

from actors.batcher import Batcher
from actors.rpc_client import DelegatingRpc, RpcError, SolanaRpc

__all__ = ["MAX_KEYS", "SharedRpc"]

MAX_KEYS: Final = 100  # getMultipleAccounts' limit


@attrs.frozen
class _Read:
    keys: tuple[Pubkey, ...]
    commitment: CommitmentLevel | None
    timeout: float | None


class SharedRpc(DelegatingRpc):
    def __init__(self, inner: SolanaRpc, *, max_age_s: float = 1.0) -> None:
        super().__init__(inner)
        self.max_age_s = max_age_s
        self._latest: GetLatestBlockhashResp | None = None
        self._fetched_at = -float("inf")
        self._lock = trio.Lock()
        self._reads: Batcher[_Read, GetMultipleAccountsResp] = Batcher(self._read_many)

    async def get_latest_blockhash(
        self, commitment: CommitmentLevel | None = None, *, timeout: float | None = None
    ) -> GetLatestBlockhashResp:
        if commitment not in (None, CommitmentLevel.Confirmed):
            return await self.inner.get_latest_blockhash(commitment, timeout=timeout)
        if self._latest is not None and trio.current_time() - self._fetched_at <= self.max_age_s:
            return self._latest  # fresh: no lock, no checkpoint (thousands of signers at once)
        async with self._lock:  # single flight: the waiters find the copy the first caller fetched
            if self._latest is None or trio.current_time() - self._fetched_at > self.max_age_s:
                self._latest = await self.inner.get_latest_blockhash(
                    CommitmentLevel.Confirmed, timeout=timeout)
                self._fetched_at = trio.current_time()
            return self._latest

    async def get_multiple_accounts(
        self, pubkeys: Sequence[Pubkey], commitment: CommitmentLevel | None = None,
        *, timeout: float | None = None,
    ) -> GetMultipleAccountsResp:
        if len(pubkeys) > MAX_KEYS:
            raise ValueError(f"getMultipleAccounts takes at most {MAX_KEYS} keys, got {len(pubkeys)}")
        return await self._reads.submit(_Read(tuple(pubkeys), commitment, timeout))

    async def _read_many(self, reads: Sequence[_Read]) -> list[GetMultipleAccountsResp | Exception]:
        if len(reads) == 1:
            read = reads[0]
            return [await self.inner.get_multiple_accounts(read.keys, read.commitment, timeout=read.timeout)]
        by_commitment: dict[CommitmentLevel | None, list[int]] = {}
        for index, read in enumerate(reads):
            by_commitment.setdefault(read.commitment, []).append(index)
        results: dict[int, GetMultipleAccountsResp] = {}
        for commitment, indexes in by_commitment.items():
            keys = list(dict.fromkeys(key for i in indexes for key in reads[i].keys))
            timeouts = [t for i in indexes if (t := reads[i].timeout) is not None]
            timeout = min(timeouts) if timeouts else None
            chunks = [keys[start:start + MAX_KEYS] for start in range(0, len(keys), MAX_KEYS)]
            found: dict[Pubkey, tuple[Account | None, int]] = {}
            for part, answer in zip(chunks, await self.inner.get_multiple_accounts_batch(
                    chunks, commitment, timeout=timeout), strict=True):
                if isinstance(answer, RpcError):  # typed, to every caller of the batch
                    raise answer
                for key, account in zip(part, answer.value, strict=True):
                    found[key] = (account, answer.context.slot)
            for i in indexes:
                mine = [found[key] for key in reads[i].keys]
                slot = min((s for _, s in mine), default=0)
                results[i] = GetMultipleAccountsResp([a for a, _ in mine], RpcResponseContext(slot))
        return [results[i] for i in range(len(reads))]
