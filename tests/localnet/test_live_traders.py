"""Live traders: after genesis the reference traders (the professional first) and a few others keep
trading with real AMM swaps signed by their own keys, landing through the chain's normal path, so
getSignaturesForAddress, getTransaction and getTokenAccountsByOwner see them; ``--no-live-traders``
turns them off. The planning rules (the book stays within its bounds, one position shrinks at most,
the first move adds a token not held) are checked over many seeded turns without a node."""

from __future__ import annotations

import argparse
import functools
import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction_status import EncodedConfirmedTransactionWithStatusMeta

from actors.swap_extraction import Swap, extract_swap
from localnet.cli import add_arguments, settings_from_args
from localnet.live_traders import (
    BOOK_MAX,
    BOOK_MIN,
    FIRST_TURN_SLOTS,
    MIN_LEG_USD,
    Draws,
    legs_toward,
    next_target,
)
from localnet.trader_styles import REFERENCE
from tests.localnet.conftest import (
    MARKET_CHAIN,
    MARKET_SEED,
    MARKET_STARTUP_DEADLINE,
    LocalnetNode,
    start_node,
    stop_node,
    wait_until,
)

TOKEN_PROGRAM = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
EVERY_SLOTS = 10  # a turn a second at 100 ms slots; the reference traders take the first three


@pytest.fixture(scope="module")
def live_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalnetNode]:
    node = start_node(
        tmp_path_factory.mktemp("localnet-live"), *MARKET_CHAIN, "--seed", str(MARKET_SEED),
        "--live-traders", "--live-every-slots", str(EVERY_SLOTS), deadline_s=MARKET_STARTUP_DEADLINE,
    )
    yield node
    assert stop_node(node) == 0


def trader(node: LocalnetNode, name: str) -> str:
    return str(next(t["pubkey"] for t in node.manifest["traders"] if t["name"] == name))


def live_signatures(node: LocalnetNode, wallet: str) -> list[str]:
    """The wallet's transactions after genesis (genesis's own all carry earlier block times)."""
    entries = node.result("getSignaturesForAddress", [wallet, {"limit": 50, "commitment": "confirmed"}])
    genesis_time = int(node.manifest["genesisTime"])
    return [e["signature"] for e in entries if (e["blockTime"] or 0) >= genesis_time]


def landed_swap(node: LocalnetNode, wallet: str, signature: str) -> Swap:
    """The transaction as getTransaction answers it: landed, signed by ``wallet``, a swap for it."""
    answer = node.result(
        "getTransaction", [signature, {"encoding": "json", "commitment": "confirmed",
                                       "maxSupportedTransactionVersion": 0}]
    )
    assert answer is not None and answer["meta"]["err"] is None, answer
    message = answer["transaction"]["message"]
    signers = message["accountKeys"][: message["header"]["numRequiredSignatures"]]
    assert signers == [wallet], signers
    tx = EncodedConfirmedTransactionWithStatusMeta.from_json(json.dumps(answer))
    swap = extract_swap(Pubkey.from_string(wallet), Signature.from_string(signature), tx)
    assert isinstance(swap, Swap), swap
    return swap


def token_balances(node: LocalnetNode, wallet: str) -> dict[str, int]:
    accounts = node.result(
        "getTokenAccountsByOwner", [wallet, {"programId": TOKEN_PROGRAM}, {"encoding": "jsonParsed"}]
    )["value"]
    out: dict[str, int] = {}
    for account in accounts:
        info = account["account"]["data"]["parsed"]["info"]
        out[info["mint"]] = out.get(info["mint"], 0) + int(info["tokenAmount"]["amount"])
    return out


def test_the_professional_trades_live_soon_after_start_and_holds_what_it_bought(
    live_node: LocalnetNode,
) -> None:
    professional = trader(live_node, "professional")
    signatures = wait_until(
        functools.partial(live_signatures, live_node, professional),
        timeout=15.0, what="the professional's first live swap",
    )
    first = landed_swap(live_node, professional, signatures[-1])
    usdc = live_node.manifest["mints"]["USDC"]["mint"]
    pool_mints = {p["mint"] for p in live_node.manifest["pools"].values()}
    # the first live move adds a pool token bought with USDC, and the wallet holds it
    assert (first.sold_mint, first.bought_mint in pool_mints) == (usdc, True), first
    assert first.block_time is not None and first.block_time >= int(live_node.manifest["genesisTime"])
    held = token_balances(live_node, professional)
    assert held.get(first.bought_mint, 0) > 0, held
    assert sum(1 for mint in pool_mints if held.get(mint, 0) > 0) >= 1


def test_every_reference_trader_trades_live_with_its_own_key(live_node: LocalnetNode) -> None:
    live = live_node.manifest["liveTraders"]
    assert live["everySlots"] == EVERY_SLOTS
    names = [t["name"] for t in live["traders"]]
    assert names[0] == "professional" and {s.name for s in REFERENCE} <= set(names), names
    pool_mints = {p["mint"] for p in live_node.manifest["pools"].values()}
    for style in REFERENCE:
        wallet = trader(live_node, style.name)
        signatures = wait_until(
            functools.partial(live_signatures, live_node, wallet), timeout=30.0, what=f"{style.name} trading"
        )
        for signature in signatures:
            swap = landed_swap(live_node, wallet, signature)
            assert {swap.sold_mint, swap.bought_mint} & pool_mints, swap


def test_no_live_traders_leaves_the_histories_as_genesis_made_them(market_node: LocalnetNode) -> None:
    """The shared market node runs with ``--no-live-traders``: by the slot its first turn would have
    come at the latest (the node served before now), no trader has a transaction after genesis."""
    assert market_node.manifest["liveTraders"] is None
    now = market_node.result("getSlot", [{"commitment": "confirmed"}])
    wait_until(
        lambda: market_node.result("getSlot", [{"commitment": "confirmed"}]) > now + 4 * FIRST_TURN_SLOTS,
        timeout=15.0, what="the slots of a first turn",
    )
    for entry in market_node.manifest["traders"]:
        assert live_signatures(market_node, entry["pubkey"]) == [], entry["name"]


def test_the_flags_reach_the_node_settings() -> None:
    def parsed(*argv: str) -> Any:
        parser = argparse.ArgumentParser()
        add_arguments(parser)
        return settings_from_args(parser.parse_args(list(argv)))

    assert parsed().live_traders is True
    off = parsed("--no-live-traders", "--live-every-slots", "7")
    assert (off.live_traders, off.live_every_slots) == (False, 7)
    with pytest.raises(SystemExit):
        parsed("--live-every-slots", "0")


@pytest.mark.parametrize("tokens", [("JUP", "BONK", "WIF", "RAY"), ("BONK", "WIF"), ("JUP", "RAY")])
def test_a_trader_book_stays_within_its_bounds_and_shrinks_one_position_at_a_time(
    tokens: tuple[str, ...]
) -> None:
    rng = random.Random(5)
    stake = 200.0
    for _ in range(2_000):
        values = {t: rng.choice([0.0, rng.uniform(0.0, 0.6 * stake)]) for t in tokens}
        total = sum(values.values())
        first = rng.random() < 0.2
        target = next_target(values, tokens, stake, Draws.from_rng(rng), first=first)
        after = sum(target.values())
        assert all(v >= 0.0 for v in target.values()), target
        # never above the ceiling by its own doing, never below the floor by its own doing
        assert after <= max(total, BOOK_MAX * stake) + 1e-6, (values, target)
        assert after >= min(total, BOOK_MIN * stake) - 1e-6, (values, target)
        legs = legs_toward(values, target)
        sells = [leg for leg in legs if leg.side == "sell"]
        assert len(sells) <= 1, legs
        assert legs == sorted(legs, key=lambda leg: leg.side != "sell"), legs  # sells fund the buys
        assert all(leg.usd >= MIN_LEG_USD for leg in legs), legs
        held = {t for t, v in values.items() if v >= MIN_LEG_USD}
        if first and total < BOOK_MAX * stake - MIN_LEG_USD and held != set(tokens):
            (buy,) = legs
            assert buy.side == "buy" and buy.symbol not in held, (values, legs)


def test_a_trader_with_nothing_to_sell_only_buys() -> None:
    target = next_target({}, ("JUP", "RAY"), 100.0, Draws(0.99, 0.5, 0.5, 0.5), first=False)
    legs = legs_toward({}, target)
    assert [leg.side for leg in legs] == ["buy"], legs
