"""The trader watch: whom each risk profile follows, and what those traders hold right now.

Owns: the `TraderWatch` actor and the `LeaderBook` it writes (one shared view, read synchronously
by every executor, that outlives the watch's incarnations). From the latest COMPLETED scoring run
it picks, per risk profile, the best eligible trader whose drawdown fits the profile; then every
``poll_s`` it asks the chain for each followed trader's newest signature and, when it changed
(a new swap), re-reads the trader's token balances. Every change -- a new leader after a ranking,
new holdings after a swap -- is published as `TargetChanged` to the executors (their mailboxes
conflate it: only the newest matters).

Failure it contains: an RPC or database failure while polling is logged and retried at the next
poll (the last known holdings stay, with their age); nothing here touches a vault.

May import: the standard library, trio, attrs, solders, `supervisors`, `actors`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any, Final

import attrs
import trio
from solders.pubkey import Pubkey
from solders.rpc.config import RpcSignaturesForAddressConfig

from actors.actor import Actor
from actors.database import Database
from actors.portfolio import Holding, PortfolioError, trader_holdings
from actors.rpc_client import RpcError, SolanaRpc
from actors.scorer import RankingsSubscribers, RankingsUpdated, latest_ranking
from actors.subscribers import Subscribers
from sql.errors import DatabaseError
from supervisors.context import ChildContext

__all__ = ["Leader", "LeaderBook", "TargetChanged", "TargetSubscribers", "TraderWatch", "WatchSettings"]

log = logging.getLogger("xorj.trader_watch")

RANKING_LIMIT: Final = 100


@attrs.frozen
class Leader:
    """The trader a profile follows, from scoring run ``run_id``, and its holdings when last read."""

    wallet: str
    run_id: str
    score: float
    holdings: Mapping[str, Holding] = attrs.field(factory=dict, hash=False)
    newest_signature: str | None = None
    read_at: float | None = None  # time.monotonic() of the holdings read; None: not read yet


@attrs.frozen
class TargetChanged:
    """Told to executors: the leader of ``profile`` changed, or its holdings did."""

    profile: str
    wallet: str
    trigger: str  # "ranking" | "trader_swap"


class LeaderBook:
    """Profile -> `Leader`; written by the watch only, read by everyone."""

    def __init__(self) -> None:
        self._leaders: dict[str, Leader] = {}

    def leader(self, profile: str) -> Leader | None:
        return self._leaders.get(profile)

    def snapshot(self) -> dict[str, Leader]:
        return dict(self._leaders)

    def set(self, profile: str, leader: Leader | None) -> None:
        if leader is None:
            self._leaders.pop(profile, None)
        else:
            self._leaders[profile] = leader


class TargetSubscribers(Subscribers[TargetChanged]):
    """The executors that hear `TargetChanged`; created by the node, shared across incarnations."""


@attrs.frozen
class WatchSettings:
    # profile -> the largest max drawdown (percent) a followed trader may have
    max_drawdown_pct: Mapping[str, float] = attrs.field(hash=False)
    poll_s: float = 2.0
    rpc_timeout_s: float = 5.0
    db_timeout_s: float = 5.0


@attrs.frozen
class _Poll:
    """The watch's own timer."""


def pick_leaders(rows: list[dict[str, Any]], run_id: str,
                 max_drawdown_pct: Mapping[str, float]) -> dict[str, Leader]:
    """Per profile, the best-ranked eligible trader whose drawdown fits (rows come ranked)."""
    chosen: dict[str, Leader] = {}
    for profile, limit in max_drawdown_pct.items():
        for row in rows:
            drawdown = float(row["max_drawdown_pct"] or 0.0)
            if row["eligible"] and drawdown <= limit:
                chosen[profile] = Leader(str(row["wallet"]), run_id, float(row["score"]))
                break
    return chosen


class TraderWatch(Actor):
    def __init__(
        self, db: Database, rpc: SolanaRpc, book: LeaderBook, subscribers: TargetSubscribers,
        rankings: RankingsSubscribers, decimals: Mapping[str, int], settings: WatchSettings,
    ) -> None:
        self._db = db
        self._rpc = rpc
        self._book = book
        self._subscribers = subscribers
        self._rankings = rankings
        self._decimals = decimals
        self._settings = settings

    async def run(self, ctx: ChildContext) -> None:
        self._rankings.add(ctx.self_ref)
        ctx.started()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._tick, ctx)
            await self._load_ranking()
            while (msg := await ctx.receive()) is not None:
                if isinstance(msg, RankingsUpdated):
                    await self._load_ranking()
                elif isinstance(msg, _Poll):
                    await self._poll()
            nursery.cancel_scope.cancel()

    async def _tick(self, ctx: ChildContext) -> None:
        while True:
            await trio.sleep(self._settings.poll_s)
            try:
                ctx.self_ref.tell_nowait(_Poll())
            except trio.WouldBlock:
                pass  # a poll is already queued

    async def _load_ranking(self) -> None:
        try:
            run, rows = await latest_ranking(
                self._db, limit=RANKING_LIMIT, timeout=self._settings.db_timeout_s)
        except DatabaseError as exc:
            log.warning("ranking not readable; keeping the current leaders", extra={"error": str(exc)})
            return
        if run is None:
            return
        chosen = pick_leaders(rows, str(run["id"]), self._settings.max_drawdown_pct)
        changed: list[tuple[str, Leader]] = []
        for profile in self._settings.max_drawdown_pct:
            old, new = self._book.leader(profile), chosen.get(profile)
            if new is not None and old is not None and old.wallet == new.wallet:
                new = attrs.evolve(old, run_id=new.run_id, score=new.score)  # keep its holdings
            self._book.set(profile, new)
            if new is not None and (old is None or old.wallet != new.wallet):
                changed.append((profile, new))
                log.info("profile follows a new leader", extra={
                    "profile": profile, "wallet": new.wallet, "run_id": new.run_id, "score": new.score})
        for profile, leader in changed:
            await self._read(leader.wallet)
            self._subscribers.publish(TargetChanged(profile, leader.wallet, "ranking"))

    async def _poll(self) -> None:
        wallets = {leader.wallet for leader in self._book.snapshot().values()}
        for wallet in wallets:
            try:
                newest = await self._newest_signature(wallet)
            except RpcError as exc:
                log.warning("trader poll failed", extra={"wallet": wallet, "error": str(exc)})
                continue
            if any(known.wallet == wallet and known.newest_signature == newest and known.read_at is not None
                   for known in self._book.snapshot().values()):
                continue
            if await self._read(wallet, newest):
                for profile, leader in self._book.snapshot().items():
                    if leader.wallet == wallet:
                        self._subscribers.publish(TargetChanged(profile, wallet, "trader_swap"))

    async def _newest_signature(self, wallet: str) -> str | None:
        answer = await self._rpc.get_signatures_for_address(
            Pubkey.from_string(wallet), RpcSignaturesForAddressConfig(limit=1),
            timeout=self._settings.rpc_timeout_s)
        return str(answer.value[0].signature) if answer.value else None

    async def _read(self, wallet: str, newest: str | None = None) -> bool:
        """Re-read ``wallet``'s holdings into every profile that follows it; False if unreadable."""
        try:
            if newest is None:
                newest = await self._newest_signature(wallet)
            holdings = await trader_holdings(self._rpc, wallet, self._decimals,
                                             timeout=self._settings.rpc_timeout_s)
        except (RpcError, PortfolioError) as exc:
            log.warning("trader holdings not readable", extra={"wallet": wallet, "error": str(exc)})
            return False
        now = time.monotonic()
        for profile, leader in self._book.snapshot().items():
            if leader.wallet == wallet:
                self._book.set(profile, attrs.evolve(leader, holdings=holdings, newest_signature=newest,
                                                     read_at=now))
        return True
