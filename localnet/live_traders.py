"""Live traders: some of the seeded market's trader wallets keep trading after genesis.

Owns: one trio task that, every ``every_slots`` slots, lets the next live trader move its book --
the tokens it holds -- to a new target with real AMM swaps from its own token accounts, signed by
its own key and submitted through ``Chain.submit`` (the path ``sendTransaction`` takes, so faults,
history, ``getTransaction``, token balances and the ledger see them as anyone's). It gives the
copy-trading engine a leader whose portfolio changes while the node runs.

Who trades: the reference traders and every other wallet past the scorer's trade-count floor, so
whichever trader the scorer ranks first has new swaps to copy. They take turns in rounds: the first
round starts with the reference traders (the professional first, so its first live trade comes a
few slots after the node serves); every later round is a seeded permutation. With ~20 of them and
a turn every 12 s (the defaults), each trader moves every few minutes.

How a trader moves (``next_target``): each time its turn comes it draws a new target next to what
it holds -- *add* a style token (the first move adds one it does not hold), *rotate* one position
into another, or *trim* one -- and swaps towards it, sells before buys, one swap per transaction
(the scorer reads a transaction as a swap only when one mint goes down and one goes up). The book
stays between ``BOOK_MIN`` and ``BOOK_MAX`` of the style's stake, so the trader's peak capital (the
scorer's ROI denominator, which the genesis history puts at one stake) does not grow; each move
sells at most one position, so the scorer's trade count grows by under one per turn (about half),
a few trades an hour per trader: the scores the histories were shaped for drift slowly. Stakes are
tens to hundreds of USDC against pools of 2M USDC a side: prices move no further than the market
maker's walk moves them.

Failure it contains: a swap that does not land or fails (a fault dropped it, the pool moved past
its slippage limit under a land delay) is logged and the loop goes on; the next turn reads the
balances again from the chain, so nothing is assumed about a swap that did not happen.

Deterministic for a seed as far as the market maker is: the choices come from a seeded RNG with a
fixed number of draws per turn; amounts follow the pools, which follow the market maker's walk.

May import: the standard library, trio, attrs, solders, spl, contracts (AMM client, pda), localnet.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from typing import Final, Literal

import attrs
import trio
from solders.instruction import Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction, VersionedTransaction
from spl.token.instructions import create_idempotent_associated_token_account

from contracts.amm_client import AmmClient, quote
from contracts.pda import associated_token_address
from localnet.chain import Chain
from localnet.market import Market, MarketPool, pool_reserves, token_amount
from localnet.trader_styles import PROFESSIONAL, styles

__all__ = [
    "BOOK_MAX",
    "BOOK_MIN",
    "DEFAULT_EVERY_SLOTS",
    "LIVE_MIN_TRIPS",
    "Draws",
    "LiveTrader",
    "SwapLeg",
    "legs_toward",
    "live_traders",
    "next_target",
    "run_live_traders",
]

logger = logging.getLogger(__name__)

DEFAULT_EVERY_SLOTS: Final = 30  # one live trade every 12 s at the default 400 ms slots
FIRST_TURN_SLOTS: Final = 5  # the first turn (the professional's) comes this soon after start
# Besides the reference traders, the wallets already past the scorer's 50-trade floor trade live;
# those planned with too few trades stay as planned (the scorer must keep showing and never follow
# them, and hours of live round trips would carry them across it).
LIVE_MIN_TRIPS: Final = 50
BOOK_MIN: Final = 0.25  # the book (token value held) stays within these fractions of the stake
BOOK_MAX: Final = 0.9
ADD_RANGE: Final = (0.15, 0.35)  # an add buys this fraction of the stake
TRIM_RANGE: Final = (0.3, 0.8)  # a trim sells this fraction of one position
MIN_LEG_USD: Final = 1.0  # smaller differences are not worth a swap
SLIPPAGE_BPS: Final = 100  # minimum out: the quote at submit time less this


@attrs.frozen
class LiveTrader:
    name: str
    keypair: Keypair
    pubkey: Pubkey
    tokens: tuple[str, ...]  # the style's tokens: the only ones it trades
    stake_usdc: float
    reference: bool


@attrs.frozen
class Draws:
    """One turn's random numbers, drawn whether used or not (the RNG stream stays aligned)."""

    action: float
    pick: float
    other: float
    size: float

    @classmethod
    def from_rng(cls, rng: random.Random) -> Draws:
        return cls(rng.random(), rng.random(), rng.random(), rng.random())


@attrs.frozen
class SwapLeg:
    symbol: str
    side: Literal["buy", "sell"]
    usd: float
    close: bool = False  # a sell of the whole position (sell the exact balance, not ``usd`` of it)


def live_traders(market: Market) -> tuple[LiveTrader, ...]:
    """The reference traders (the professional first), then the others with ``LIVE_MIN_TRIPS``
    planned trades or more, in a seeded order."""
    by_name = {s.name: s for s in styles(len(market.traders), market.seed)}
    wallets = {t.name: t for t in market.traders}
    reference = sorted((t.name for t in market.traders if t.reference), key=lambda n: n != PROFESSIONAL.name)
    rest = sorted(t.name for t in market.traders if not t.reference and t.trips >= LIVE_MIN_TRIPS)
    random.Random(f"{market.seed}:live-traders:who").shuffle(rest)
    out = []
    for name in (*reference, *rest):
        style, wallet = by_name[name], wallets[name]
        key = wallet.keypair
        out.append(LiveTrader(name, key, key.pubkey(), style.tokens, style.stake_usdc, wallet.reference))
    return tuple(out)


def _between(low: float, high: float, u: float) -> float:
    return low + (high - low) * u


def _pick(items: Sequence[str], u: float) -> str:
    return items[min(int(u * len(items)), len(items) - 1)]


def next_target(
    values: Mapping[str, float], tokens: Sequence[str], stake: float, draws: Draws, *, first: bool
) -> dict[str, float]:
    """The book (USD per style token) a trader holding ``values`` moves to on this turn.

    Next to the current book, within ``[BOOK_MIN, BOOK_MAX]`` of ``stake``; at most one position
    shrinks. The first turn adds a token the trader does not hold (when there is one), so a
    leader's portfolio visibly changes as soon as it trades live.
    """
    target = {t: values.get(t, 0.0) for t in tokens}
    total = sum(target.values())
    low, high = BOOK_MIN * stake, BOOK_MAX * stake
    held = [t for t in tokens if target[t] >= MIN_LEG_USD]
    if first or total < low or not held:
        action = "add"
    elif total > high:
        action = "trim"
    else:
        action = "add" if draws.action < 0.4 else "rotate" if draws.action < 0.7 else "trim"
    if action == "trim":
        source = _pick(held, draws.pick)
        cut = _between(*TRIM_RANGE, draws.size) * target[source]
        if total > high:
            cut = max(cut, min(target[source], total - high))
        cut = min(cut, total - low)
        if cut >= MIN_LEG_USD:
            target[source] -= cut
            return target
        action = "add"  # the book is at its floor
    room = high - total
    if action == "add" and room >= MIN_LEG_USD:
        unheld = [t for t in tokens if t not in held]
        token = _pick(unheld if first and unheld else list(tokens), draws.pick)
        target[token] += min(room, _between(*ADD_RANGE, draws.size) * stake)
        return target
    if held and len(tokens) > 1:  # a rotation, or an add with no room left
        source = _pick(held, draws.pick)
        token = _pick([t for t in tokens if t != source], draws.other)
        target[token] += target[source]
        target[source] = 0.0
    return target


def legs_toward(values: Mapping[str, float], target: Mapping[str, float]) -> list[SwapLeg]:
    """The swaps from ``values`` to ``target``: sells first (they fund the buys), then buys."""
    sells, buys = [], []
    for token, wanted in target.items():
        diff = wanted - values.get(token, 0.0)
        if diff <= -MIN_LEG_USD:
            sells.append(SwapLeg(token, "sell", -diff, close=wanted < MIN_LEG_USD))
        elif diff >= MIN_LEG_USD:
            buys.append(SwapLeg(token, "buy", diff))
    return [*sells, *buys]


async def run_live_traders(chain: Chain, market: Market, *, every_slots: int = DEFAULT_EVERY_SLOTS) -> None:
    """Let the live traders trade, one turn every ``every_slots`` slots, until cancelled."""
    traders = live_traders(market)
    rng = random.Random(f"{market.seed}:live-traders")
    desk = _Desk(chain, market)
    period = chain.config.slot_ms / 1000
    started: set[str] = set()
    order: list[LiveTrader] = list(traders)  # the first round keeps the reference order
    wait = min(FIRST_TURN_SLOTS, every_slots)
    while True:
        for trader in order:
            # the slot clock runs on this event loop, so sleeping this long lets the slots pass
            await trio.sleep(period * wait)
            wait = every_slots
            draws = Draws.from_rng(rng)
            desk.turn(trader, draws, first=trader.name not in started)
            started.add(trader.name)
        order = rng.sample(traders, len(traders))


class _Desk:
    """Prices, balances and signed swaps for the live traders (a turn is synchronous: no other
    task touches the chain while it runs, so the quotes it reads are the pools it trades)."""

    def __init__(self, chain: Chain, market: Market) -> None:
        self._chain = chain
        self._market = market
        self._amm = AmmClient(market.amm_program)
        self._usdc = market.usdc.mint

    def _ata(self, owner: Pubkey, mint: Pubkey) -> Pubkey:
        return associated_token_address(owner, mint)

    def values(self, trader: LiveTrader) -> dict[str, float]:
        """USD value of each style token the trader holds, at the pools' spot prices."""
        out = {}
        for symbol in trader.tokens:
            pool = self._market.pool(symbol)
            amount = token_amount(self._chain, self._ata(trader.pubkey, pool.mint))
            reserve_token, reserve_usdc = pool_reserves(self._chain, pool)
            out[symbol] = amount * reserve_usdc / reserve_token / 10**self._market.usdc.decimals
        return out

    def turn(self, trader: LiveTrader, draws: Draws, *, first: bool) -> None:
        values = self.values(trader)
        target = next_target(values, trader.tokens, trader.stake_usdc, draws, first=first)
        for leg in legs_toward(values, target):
            self._swap(trader, leg)

    def _swap(self, trader: LiveTrader, leg: SwapLeg) -> None:
        pool = self._market.pool(leg.symbol)
        owner = trader.pubkey
        usdc_account, token_account = self._ata(owner, self._usdc), self._ata(owner, pool.mint)
        reserve_token, reserve_usdc = pool_reserves(self._chain, pool)
        unit = 10**self._market.usdc.decimals
        ixs: list[Instruction] = []
        if leg.side == "buy":
            amount = min(int(leg.usd * unit), token_amount(self._chain, usdc_account))
            reserves = (reserve_usdc, reserve_token)
            if self._chain.get_account(token_account) is None:
                ixs.append(create_idempotent_associated_token_account(owner, owner, pool.mint))
            source, destination, sell_mint, buy_mint = usdc_account, token_account, self._usdc, pool.mint
        else:
            held = token_amount(self._chain, token_account)
            amount = held if leg.close else min(held, int(leg.usd * unit * reserve_token / reserve_usdc))
            reserves = (reserve_token, reserve_usdc)
            source, destination, sell_mint, buy_mint = token_account, usdc_account, pool.mint, self._usdc
        if amount <= 0:
            return
        minimum = quote(amount, *reserves, pool.fee_bps) * (10_000 - SLIPPAGE_BPS) // 10_000
        ixs.append(self._amm.swap(owner, sell_mint, buy_mint, source, destination, amount, minimum))
        self._submit(trader, pool, leg, ixs)

    def _submit(self, trader: LiveTrader, pool: MarketPool, leg: SwapLeg, ixs: list[Instruction]) -> None:
        blockhash, _ = self._chain.latest_blockhash()
        message = Message.new_with_blockhash(ixs, trader.pubkey, blockhash)
        tx = VersionedTransaction.from_legacy(Transaction([trader.keypair], message, blockhash))
        outcome = self._chain.submit(tx, skip_preflight=True)
        fields = {
            "trader": trader.name, "pool": pool.symbol, "side": leg.side, "signature": str(outcome.signature)
        }
        if outcome.fate == "queued":
            logger.debug("live trader swap queued", extra=fields)
        elif outcome.landed is None or outcome.landed.err is not None:
            logger.info("live trader swap did not land", extra={**fields, "fate": outcome.fate})
        else:
            logger.debug("live trader swap", extra=fields)
