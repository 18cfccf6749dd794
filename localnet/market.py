"""The seeded market genesis: programs, mints, pools, trader histories and demo users.

Owns: everything the local chain holds before anyone talks to it when it starts as a market
(``--genesis market``, the default), and the ``Market`` record the manifest, the price API and
the market maker read. Every key is derived from the seed (``derive_keypair``), every amount and
time from the seed and the trading plans of ``localnet.trader_styles``, so the same seed gives
the same addresses, signatures and amounts.

How it runs (all transactions land through ``Chain.submit``, the path ``sendTransaction`` takes,
so history, statuses, ``getTransaction`` and the ledger see them; no HTTP):

1. Setup, a day before the first trade: SOL for every actor, the mints (seeded addresses), both
   programs deployed through the upgradeable loader, the vault's config (admin = the upgrade
   authority, USDC the deposit mint, the AMM on the swap allow-list), one pool per token against
   USDC with the market maker's liquidity, USDC and token accounts for the traders.
2. Histories: the round trips of ``plan(style, seed)`` for the 30 ``styles(30, seed)``, shifted so
   that each trader's last sell is about a day before genesis time, interleaved in time order.
   The chain is warped (``Chain.warp_to``) to each event's slot and time. Before a sell the market
   maker swaps the pool to where the trader's sell returns the round trip's target (searched with
   the program's own integer formula, after fees and the sell's own price impact); after it, the
   market maker swaps the pool back to its baseline (a seeded, mean-reverting walk per pool).
   Each trader finally buys a token with half a stake and keeps it: executors mirror holdings.
3. Demo users, an hour before genesis time: a vault each, a 500 USDC deposit, bot authority
   granted to the bot key.

With a ledger, the transactions are replayed like any other and this step only rebuilds the
record (from the seed kept in ``genesis.json`` in the ledger directory).

May import: the standard library, attrs, solders, spl, contracts (clients, pda, build), localnet.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import attrs
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.system_program import TransferParams, transfer
from solders.transaction import Transaction, VersionedTransaction
from spl.token.instructions import create_idempotent_associated_token_account, mint_to
from spl.token.models import MintToParams

from contracts.amm_client import AmmClient
from contracts.build import ensure_built
from contracts.deploy import deploy_steps
from contracts.pda import (
    TOKEN_PROGRAM_ID,
    associated_token_address,
    sorted_mints,
)
from contracts.vault_client import VaultClient
from localnet.amm_math import mm_amount_for_price, mm_amount_for_sell_target
from localnet.chain import Chain, LandedTransaction, MintInfo
from localnet.trader_styles import REFERENCE, RoundTrip, Style, plan, styles

__all__ = [
    "GENESIS_NOTE",
    "DemoUser",
    "Market",
    "MarketKeys",
    "MarketPool",
    "TraderWallet",
    "build_market",
    "derive_keypair",
    "market_keys",
    "pool_reserves",
    "read_genesis_note",
    "token_amount",
]

logger = logging.getLogger(__name__)

DAY_S: Final = 86_400
GENESIS_NOTE: Final = "genesis.json"
USDC_DECIMALS: Final = 6
FEE_BPS: Final = 30
POOL_USDC: Final = 2_000_000  # USDC on each pool's USDC side at genesis
MM_USDC: Final = 200_000_000
MM_TOKEN_USD: Final = 200_000_000  # USD worth of each token the market maker holds
TRADER_COUNT: Final = 30
DEMO_USERS: Final = 3
DEMO_DEPOSIT: Final = 500 * 10**USDC_DECIMALS
END_GAP_S: Final = DAY_S  # the last sell of a trader is about this long before genesis time
SETUP_LEAD_S: Final = DAY_S  # setup happens this long before the first trade
FIRST_EVENT_SLOT: Final = 1_000  # setup uses the slots below
TOKENS: Final = (("USDC", 6), ("USDT", 6), ("JUP", 6), ("BONK", 5), ("WIF", 6), ("RAY", 6))
START_PRICES: Final = {"JUP": 0.8, "WIF": 2.5, "RAY": 1.8, "BONK": 0.00002}
SOL: Final = 10**9


def derive_keypair(seed: int, role: str) -> Keypair:
    """The keypair of ``role`` in the market of ``seed``: the same seed gives the same keys."""
    return Keypair.from_seed(hashlib.sha256(f"xorj-localnet:{seed}:{role}".encode()).digest())


@attrs.frozen
class MarketPool:
    symbol: str
    mint: Pubkey
    decimals: int
    pool: Pubkey
    mint_a: Pubkey
    mint_b: Pubkey
    usdc_account: Pubkey  # the pool's USDC token account
    token_account: Pubkey
    fee_bps: int
    start_price: float


@attrs.frozen
class DemoUser:
    owner: Keypair
    vault: Pubkey
    vault_usdc_account: Pubkey
    deposit: int


@attrs.frozen
class TraderWallet:
    name: str
    keypair: Keypair
    reference: bool
    trips: int


@attrs.frozen
class Market:
    """What the market genesis made: read by the manifest, the price API and the market maker."""

    seed: int
    genesis_time: int
    history_start: int
    vault_program: Pubkey
    amm_program: Pubkey
    admin: Keypair
    market_maker: Keypair
    bot: Keypair
    usdc: MintInfo
    pools: tuple[MarketPool, ...]
    demo_users: tuple[DemoUser, ...]
    traders: tuple[TraderWallet, ...]
    transactions: int
    seconds: float

    def pool(self, symbol: str) -> MarketPool:
        return next(p for p in self.pools if p.symbol == symbol)


@attrs.frozen
class MarketKeys:
    faucet: Keypair
    mint_authority: Keypair


def market_keys(seed: int) -> MarketKeys:
    """The chain's own keys for a seeded market (given to ``Chain`` so blockhashes are seeded too)."""
    return MarketKeys(derive_keypair(seed, "faucet"), derive_keypair(seed, "mint-authority"))


def token_amount(chain: Chain, account: Pubkey) -> int:
    found = chain.get_account(account)
    if found is None:
        return 0
    return int.from_bytes(bytes(found.data)[64:72], "little")


def pool_reserves(chain: Chain, pool: MarketPool) -> tuple[int, int]:
    """(token reserve, USDC reserve) in base units."""
    return token_amount(chain, pool.token_account), token_amount(chain, pool.usdc_account)


class _Lander:
    """Signs and lands genesis transactions through the chain's send path, at warped times."""

    def __init__(self, chain: Chain, amm: AmmClient, usdc: Pubkey) -> None:
        self.chain = chain
        self.amm = amm
        self.usdc = usdc
        self.count = 0
        self._pubkeys: dict[bytes, Pubkey] = {}
        self._swap_metas: dict[tuple[bytes, Pubkey, Pubkey], list[AccountMeta]] = {}

    def land(self, ixs: Sequence[Instruction], signers: Sequence[Keypair]) -> LandedTransaction:
        blockhash, _ = self.chain.latest_blockhash()
        message = Message.new_with_blockhash(list(ixs), self.pubkey(signers[0]), blockhash)
        tx = VersionedTransaction.from_legacy(Transaction(list(signers), message, blockhash))
        outcome = self.chain.submit(tx, skip_preflight=True)
        if outcome.landed is None:
            raise RuntimeError(f"genesis transaction {outcome.signature} was {outcome.fate}")
        if outcome.landed.err is not None:
            raise RuntimeError(
                f"genesis transaction {outcome.signature} failed: {outcome.landed.err} "
                f"{list(outcome.landed.logs)[-5:]}"
            )
        self.count += 1
        return outcome.landed

    def pubkey(self, keypair: Keypair) -> Pubkey:
        # Keypair.pubkey() derives the key each call (tens of microseconds): genesis asks often
        key = bytes(keypair)
        found = self._pubkeys.get(key)
        if found is None:
            found = self._pubkeys[key] = keypair.pubkey()
        return found

    def swap(
        self,
        wallet: Keypair,
        pool: MarketPool,
        sell: Pubkey,
        source: Pubkey,
        destination: Pubkey,
        amount: int,
    ) -> Instruction:
        """An AMM swap signed by ``wallet`` with no minimum out (genesis knows the outcome)."""
        cache_key = (bytes(wallet), pool.pool, sell)
        metas = self._swap_metas.get(cache_key)
        if metas is None:
            buy = pool.mint if sell != pool.mint else self.usdc
            metas = self.amm.swap_accounts(self.pubkey(wallet), sell, buy, source, destination)
            metas[1] = AccountMeta(self.pubkey(wallet), True, False)
            self._swap_metas[cache_key] = metas
        return Instruction(self.amm.program_id, AmmClient.swap_data(amount, 0), metas)

    def step(self, unix_timestamp: int) -> None:
        self.chain.warp_to(self.chain.slot + 1, unix_timestamp)


def _deploy(lander: _Lander, payer: Keypair, program: Keypair, buffer: Keypair, elf: bytes) -> None:
    """contracts.deploy's recipe, through the chain's send path so the ledger and history see it."""
    rent = lander.chain.minimum_balance_for_rent_exemption
    for ixs, extra in deploy_steps(payer, program, buffer, elf, rent):
        lander.land(ixs, [payer, *extra])


def _mint_ix(chain: Chain, mint: Pubkey, dest: Pubkey, amount: int) -> Instruction:
    return mint_to(
        MintToParams(
            program_id=TOKEN_PROGRAM_ID,
            mint=mint,
            dest=dest,
            mint_authority=chain.mint_authority.pubkey(),
            amount=amount,
        )
    )


def _ata_ix(payer: Pubkey, owner: Pubkey, mint: Pubkey) -> Instruction:
    return create_idempotent_associated_token_account(payer, owner, mint)


@attrs.frozen
class _Event:
    ago: int  # seconds before genesis time
    order: int  # tie-break: stable and seeded
    kind: str  # "buy" | "sell" | "hold"
    trader: int
    trip: RoundTrip


def _events(traders: Sequence[Style], plans: Sequence[list[RoundTrip]], seed: int) -> list[_Event]:
    rng = random.Random(f"{seed}:schedule")
    out: list[_Event] = []
    for index, (style, trips) in enumerate(zip(traders, plans, strict=True)):
        end = max(t.close_at for t in trips)
        shift = END_GAP_S + rng.randrange(0, DAY_S // 2)  # the last sell is this long before genesis
        for trip in trips:
            out.append(_Event(end - trip.open_at + shift, len(out), "buy", index, trip))
            out.append(_Event(end - trip.close_at + shift, len(out), "sell", index, trip))
        hold = RoundTrip(end + 1, end + 1, style.tokens[0], style.stake_usdc / 2, 0.0)
        out.append(_Event(shift // 2, len(out), "hold", index, hold))
    out.sort(key=lambda e: (-e.ago, e.order))
    return out


def _baseline(seed: int, symbol: str, days: int) -> list[float]:
    """A seeded, mean-reverting daily walk of a pool's price relative to its start (1.0 at day 0)."""
    rng = random.Random(f"{seed}:baseline:{symbol}")
    level, out = 0.0, []
    for _ in range(days + 2):
        out.append(math.exp(level))
        level += rng.gauss(0.0, 0.02) - 0.05 * level
    return out


def read_genesis_note(ledger_dir: Path) -> dict[str, int] | None:
    path = ledger_dir / GENESIS_NOTE
    if not path.exists():
        return None
    note = json.loads(path.read_text())
    return {"seed": int(note["seed"]), "genesisTime": int(note["genesisTime"])}


def build_market(
    chain: Chain, seed: int, *, genesis_time: int | None = None, ledger_dir: Path | None = None
) -> Market:
    """Make the market on ``chain`` (a fresh one), or rebuild its record if a ledger replay has."""
    started = time.monotonic()
    note = None if ledger_dir is None else read_genesis_note(ledger_dir)
    if note is not None:
        return _record(chain, note["seed"], note["genesisTime"], 0, time.monotonic() - started)
    if chain.transaction_count and ledger_dir is not None:
        raise RuntimeError(f"{ledger_dir} holds a chain whose genesis did not finish: remove it")
    now = int(time.time()) if genesis_time is None else genesis_time
    count = _make(chain, seed, now)
    market = _record(chain, seed, now, count, time.monotonic() - started)
    if ledger_dir is not None:
        staging = ledger_dir / (GENESIS_NOTE + ".tmp")
        staging.write_text(json.dumps({"seed": seed, "genesisTime": now}) + "\n")
        staging.replace(ledger_dir / GENESIS_NOTE)
    logger.info("market genesis", extra={"transactions": count, "seconds": round(market.seconds, 2)})
    return market


def _roles(seed: int) -> dict[str, Keypair]:
    return {
        role: derive_keypair(seed, role)
        for role in (
            "admin",
            "market-maker",
            "bot",
            "program:vault",
            "program:amm",
            "buffer:vault",
            "buffer:amm",
        )
    }


def _record(chain: Chain, seed: int, genesis_time: int, count: int, seconds: float) -> Market:
    keys = _roles(seed)
    vault = VaultClient(keys["program:vault"].pubkey())
    amm = AmmClient(keys["program:amm"].pubkey())
    usdc = chain.mints["USDC"]
    pools = []
    for symbol, price in START_PRICES.items():
        info = chain.mints[symbol]
        pool = amm.pool(info.mint, usdc.mint)
        a, b = sorted_mints(info.mint, usdc.mint)
        pools.append(
            MarketPool(
                symbol,
                info.mint,
                info.decimals,
                pool,
                a,
                b,
                associated_token_address(pool, usdc.mint),
                associated_token_address(pool, info.mint),
                FEE_BPS,
                price,
            )
        )
    users = []
    for i in range(DEMO_USERS):
        owner = derive_keypair(seed, f"demo-user:{i}")
        users.append(
            DemoUser(
                owner,
                vault.vault(owner.pubkey()),
                vault.vault_token_account(owner.pubkey(), usdc.mint),
                DEMO_DEPOSIT,
            )
        )
    traders = styles(TRADER_COUNT, seed)
    wallets = tuple(
        TraderWallet(s.name, derive_keypair(seed, f"trader:{s.name}"), s in REFERENCE, s.trades)
        for s in traders
    )
    plans = [plan(s, seed) for s in traders]
    history_start = genesis_time - max(e.ago for e in _events(traders, plans, seed))
    return Market(
        seed,
        genesis_time,
        history_start,
        vault.program_id,
        amm.program_id,
        keys["admin"],
        keys["market-maker"],
        keys["bot"],
        usdc,
        tuple(pools),
        tuple(users),
        wallets,
        count,
        seconds,
    )


def _make(chain: Chain, seed: int, genesis_time: int) -> int:
    keys = _roles(seed)
    admin, mm, bot = keys["admin"], keys["market-maker"], keys["bot"]
    traders = styles(TRADER_COUNT, seed)
    plans = [plan(s, seed) for s in traders]
    events = _events(traders, plans, seed)
    first_ago = max(e.ago for e in events)
    amm = AmmClient(keys["program:amm"].pubkey())
    lander = _Lander(chain, amm, derive_keypair(seed, "mint:USDC").pubkey())
    setup_time = genesis_time - first_ago - SETUP_LEAD_S
    lander.step(setup_time)

    # -- 1. setup -------------------------------------------------------------------------------
    trader_keys = [derive_keypair(seed, f"trader:{s.name}") for s in traders]
    owners = [derive_keypair(seed, f"demo-user:{i}") for i in range(DEMO_USERS)]
    faucet = chain.faucet
    for group_start in range(0, 40, 10):
        group = [admin, mm, bot, *trader_keys, *owners][group_start : group_start + 10]
        lander.land(
            [
                transfer(
                    TransferParams(
                        from_pubkey=faucet.pubkey(),
                        to_pubkey=k.pubkey(),
                        lamports=(1_000 if k is admin else 10) * SOL,
                    )
                )
                for k in group
            ],
            [faucet],
        )
    for symbol, decimals in TOKENS:
        if symbol not in chain.mints:
            chain.create_mint(symbol, decimals, derive_keypair(seed, f"mint:{symbol}"))
    elves = ensure_built()
    _deploy(lander, admin, keys["program:vault"], keys["buffer:vault"], elves["vault"].read_bytes())
    _deploy(lander, admin, keys["program:amm"], keys["buffer:amm"], elves["amm"].read_bytes())
    lander.step(setup_time + 1)  # deployed programs are visible from the next slot on
    vault = VaultClient(keys["program:vault"].pubkey())
    usdc = chain.mints["USDC"]
    lander.land([vault.initialize_config(admin.pubkey(), usdc.mint, [amm.program_id])], [admin])

    market = _record(chain, seed, genesis_time, 0, 0.0)
    mm_usdc = associated_token_address(mm.pubkey(), usdc.mint)
    lander.land(
        [_ata_ix(mm.pubkey(), mm.pubkey(), usdc.mint), _mint_ix(chain, usdc.mint, mm_usdc, MM_USDC * 10**6)],
        [mm, chain.mint_authority],
    )
    for pool in market.pools:
        mm_token = associated_token_address(mm.pubkey(), pool.mint)
        unit = 10**pool.decimals
        lander.land(
            [
                _ata_ix(mm.pubkey(), mm.pubkey(), pool.mint),
                _mint_ix(chain, pool.mint, mm_token, int(MM_TOKEN_USD / pool.start_price) * unit),
                _ata_ix(admin.pubkey(), pool.pool, usdc.mint),
                _ata_ix(admin.pubkey(), pool.pool, pool.mint),
                amm.initialize_pool(admin.pubkey(), pool.mint, usdc.mint, FEE_BPS),
            ],
            [admin, mm, chain.mint_authority],
        )
        lander.land(
            [
                amm.add_liquidity(
                    mm.pubkey(),
                    pool.mint,
                    usdc.mint,
                    mm_token,
                    mm_usdc,
                    int(POOL_USDC / pool.start_price) * unit,
                    POOL_USDC * 10**6,
                )
            ],
            [mm],
        )
    for style, trader in zip(traders, trader_keys, strict=True):
        own_usdc = associated_token_address(trader.pubkey(), usdc.mint)
        lander.land(
            [
                _ata_ix(faucet.pubkey(), trader.pubkey(), usdc.mint),
                *[_ata_ix(faucet.pubkey(), trader.pubkey(), chain.mints[t].mint) for t in style.tokens],
                _mint_ix(chain, usdc.mint, own_usdc, int(style.stake_usdc * 3 * 10**6)),
            ],
            [faucet, chain.mint_authority],
        )

    # -- 2. histories ---------------------------------------------------------------------------
    by_symbol = {p.symbol: p for p in market.pools}
    days = first_ago // DAY_S + 2
    baselines = {p.symbol: _baseline(seed, p.symbol, days) for p in market.pools}
    slot_s = chain.config.slot_ms / 1000
    open_positions: dict[tuple[int, int], int] = {}  # (trader, trip open_at) -> tokens bought
    mm_tokens = {p.symbol: associated_token_address(mm.pubkey(), p.mint) for p in market.pools}

    atas: dict[tuple[bytes, Pubkey], Pubkey] = {}

    def ata(wallet: Keypair, mint: Pubkey) -> Pubkey:
        key = (bytes(wallet), mint)
        if key not in atas:
            atas[key] = associated_token_address(lander.pubkey(wallet), mint)
        return atas[key]

    def mm_swap(pool: MarketPool, direction: str, amount: int) -> None:
        if amount <= 0:
            return
        if direction == "buy":
            ix = lander.swap(mm, pool, usdc.mint, mm_usdc, mm_tokens[pool.symbol], amount)
        else:
            ix = lander.swap(mm, pool, pool.mint, mm_tokens[pool.symbol], mm_usdc, amount)
        lander.land([ix], [mm])

    def enter(ago: int) -> None:
        slot = FIRST_EVENT_SLOT + int((first_ago - ago) / slot_s)
        chain.warp_to(max(slot, chain.slot + 1), genesis_time - ago)

    for event in events:
        enter(event.ago)
        pool = by_symbol[event.trip.token]
        trader = trader_keys[event.trader]
        trader_usdc = ata(trader, usdc.mint)
        trader_token = ata(trader, pool.mint)
        if event.kind in ("buy", "hold"):
            stake = int(event.trip.stake_usdc * 10**6)
            before = token_amount(chain, trader_token)
            lander.land([lander.swap(trader, pool, usdc.mint, trader_usdc, trader_token, stake)], [trader])
            open_positions[(event.trader, event.trip.open_at)] = token_amount(chain, trader_token) - before
            continue
        qty = open_positions.pop((event.trader, event.trip.open_at))
        stake = int(event.trip.stake_usdc * 10**6)
        target = int(stake * (1.0 + event.trip.target_return))
        rt, ru = pool_reserves(chain, pool)
        direction, amount = mm_amount_for_sell_target(
            qty,
            target,
            rt,
            ru,
            pool.fee_bps,
            token_amount(chain, mm_usdc),
            token_amount(chain, mm_tokens[pool.symbol]),
        )
        mm_swap(pool, direction, amount)
        lander.land([lander.swap(trader, pool, pool.mint, trader_token, trader_usdc, qty)], [trader])
        # back to the pool's baseline, in the next slot
        enter(event.ago)
        rt, ru = pool_reserves(chain, pool)
        day = (first_ago - event.ago) // DAY_S
        price = pool.start_price * baselines[pool.symbol][day] * 10**6 / 10**pool.decimals
        mm_swap(pool, *mm_amount_for_price(price, rt, ru))

    # -- 3. demo users --------------------------------------------------------------------------
    lander.step(genesis_time - 3_600)
    for user in market.demo_users:
        owner = user.owner.pubkey()
        own_usdc = associated_token_address(owner, usdc.mint)
        vault_pda = vault.vault(owner)
        lander.land(
            [
                vault.initialize_vault(owner),
                *[_ata_ix(owner, vault_pda, mint) for mint in (usdc.mint, *(p.mint for p in market.pools))],
                _ata_ix(owner, owner, usdc.mint),
                _mint_ix(chain, usdc.mint, own_usdc, user.deposit),
            ],
            [user.owner, chain.mint_authority],
        )
        lander.land(
            [
                vault.deposit(owner, own_usdc, usdc.mint, user.deposit),
                vault.grant_bot_authority(owner, bot.pubkey()),
            ],
            [user.owner],
        )
    chain.resume_real_time(skip_slots=chain.config.finalize_slots)  # genesis is finalized at start
    return lander.count
