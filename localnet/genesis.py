"""What a new local chain holds before anyone talks to it.

Owns: the genesis steps, run in order on every start (each step is idempotent: on a restart from
a ledger the replay has already recreated what an earlier start made, and the step skips it).
Today the only step creates the token mints the local chain holds the authority of (USDC and a
few other tokens with their mainnet decimals). Later steps -- the vault and AMM programs, pools,
traders and demo users -- are added to ``GENESIS_STEPS`` (or passed to ``apply_genesis``) as
further ``GenesisStep`` callables; each gets the chain and what the previous steps made.

May import: the standard library, attrs, localnet.chain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

import attrs

from localnet.chain import Chain, MintInfo

__all__ = [
    "DEFAULT_TOKENS",
    "GENESIS_STEPS",
    "Genesis",
    "GenesisStep",
    "TokenSpec",
    "apply_genesis",
    "create_mints",
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
