"""What a new local chain holds before anyone talks to it.

Owns: the genesis steps, run in order on every start (each step is idempotent: on a restart from
a ledger the replay has already recreated what an earlier start made, and the step skips it).
``GENESIS_STEPS`` (``--genesis mints``) only creates the token mints the local chain holds the
authority of (USDC and a few other tokens with their mainnet decimals). ``--genesis market`` (the
default) runs ``market_genesis``: the seeded market of ``localnet.market`` -- the same mints at
seeded addresses, the vault and AMM programs, pools, trader histories and demo users.

May import: the standard library, attrs, localnet.chain, localnet.market.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import attrs

from localnet.chain import Chain, MintInfo
from localnet.market import TOKENS as MARKET_TOKENS
from localnet.market import Market, build_market

__all__ = [
    "DEFAULT_TOKENS",
    "GENESIS_STEPS",
    "Genesis",
    "GenesisStep",
    "TokenSpec",
    "apply_genesis",
    "create_mints",
    "market_genesis",
]


@attrs.frozen
class TokenSpec:
    symbol: str
    decimals: int


DEFAULT_TOKENS: Final = (
    TokenSpec("USDC", 6),
    TokenSpec("USDT", 6),
    TokenSpec("JUP", 6),
    TokenSpec("BONK", 5),
    TokenSpec("WIF", 6),
    TokenSpec("RAY", 6),
)


@attrs.frozen
class Genesis:
    """What genesis made, for the manifest and for later steps."""

    mints: tuple[MintInfo, ...]
    market: Market | None = None  # the seeded market (``localnet.market``), when genesis made one


GenesisStep = Callable[[Chain, Genesis], Genesis]


def create_mints(tokens: Sequence[TokenSpec]) -> GenesisStep:
    """A step creating each token's mint unless the chain (replayed from its ledger) has it."""

    def step(chain: Chain, made: Genesis) -> Genesis:
        for token in tokens:
            if token.symbol not in chain.mints:
                chain.create_mint(token.symbol, token.decimals)
        return attrs.evolve(made, mints=tuple(chain.mints[token.symbol] for token in tokens))

    return step


GENESIS_STEPS: Final[tuple[GenesisStep, ...]] = (create_mints(DEFAULT_TOKENS),)


def apply_genesis(chain: Chain, steps: Sequence[GenesisStep] = GENESIS_STEPS) -> Genesis:
    made = Genesis(mints=())
    for step in steps:
        made = step(chain, made)
    return made


def market_genesis(seed: int, ledger_dir: Path | None = None) -> GenesisStep:
    """The seeded market as a genesis step (skipped, record rebuilt, when a ledger replay made it)."""

    def step(chain: Chain, made: Genesis) -> Genesis:
        market = build_market(chain, seed, ledger_dir=ledger_dir)
        mints = tuple(chain.mints[symbol] for symbol, _ in MARKET_TOKENS)
        return attrs.evolve(made, mints=mints, market=market)

    return step
