"""One recent blockhash for every signer of the node, instead of one RPC call per signature.

Owns: `BlockhashCachingRpc`, a `SolanaRpc` that answers ``getLatestBlockhash`` at ``confirmed``
from a copy at most ``max_age_s`` old and passes every other call to the RPC it wraps. A
blockhash stays valid for ~150 blocks (60-90 s); reusing one for a second costs a trade at most
that second of its validity window, and its ``last_valid_block_height`` comes with it, so the
expiry the trade store records is exactly the chain's. Concurrent callers of a stale copy share
one refresh (single flight), so a fan-out to thousands of executors asks the node once.

Failure it contains: none of its own -- a failed refresh raises the wrapped RPC's typed error to
every caller waiting on it, and the next caller tries again.

May import: the standard library, trio, solders, `actors.rpc_client`.
"""

from __future__ import annotations

from collections.abc import Sequence

import trio
from solders.commitment_config import CommitmentLevel
from solders.rpc.config import RpcTransactionConfig
from solders.rpc.requests import Body
from solders.rpc.responses import GetLatestBlockhashResp, GetTransactionResp
from solders.signature import Signature

from actors.rpc_client import R, RpcNodeError, SolanaRpc

__all__ = ["BlockhashCachingRpc"]


class BlockhashCachingRpc(SolanaRpc):
    def __init__(self, inner: SolanaRpc, *, max_age_s: float = 1.0) -> None:
        self.inner = inner
        self.max_age_s = max_age_s
        self.default_timeout_s = inner.default_timeout_s
        self._latest: GetLatestBlockhashResp | None = None
        self._fetched_at = -float("inf")
        self._lock = trio.Lock()

    async def call(
        self, request: Body, resp_type: type[R], *, timeout: float | None = None, retry: bool = True
    ) -> R:
        return await self.inner.call(request, resp_type, timeout=timeout, retry=retry)

    async def batch(
        self, requests: Sequence[Body], resp_type: type[R], *, timeout: float | None = None
    ) -> list[R | RpcNodeError]:
        return await self.inner.batch(requests, resp_type, timeout=timeout)

    async def get_transactions(
        self, signatures: Sequence[Signature], config: RpcTransactionConfig | None = None,
        *, timeout: float | None = None,
    ) -> list[GetTransactionResp | RpcNodeError]:
        return await self.inner.get_transactions(signatures, config, timeout=timeout)

    async def get_latest_blockhash(
        self, commitment: CommitmentLevel | None = None, *, timeout: float | None = None
    ) -> GetLatestBlockhashResp:
        if commitment not in (None, CommitmentLevel.Confirmed):
            return await self.inner.get_latest_blockhash(commitment, timeout=timeout)
        async with self._lock:  # single flight: the waiters find the copy the first caller fetched
            if self._latest is None or trio.current_time() - self._fetched_at > self.max_age_s:
                self._latest = await self.inner.get_latest_blockhash(
                    CommitmentLevel.Confirmed, timeout=timeout)
                self._fetched_at = trio.current_time()
            return self._latest
