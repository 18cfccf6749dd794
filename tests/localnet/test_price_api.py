"""The price API (Jupiter Price v3 shape) and the quote endpoint (Jupiter Swap v1 quote shape) of
the market node: answers computed from pool reserves, 400s naming bad input, and the market maker
moving prices with real swaps as slots pass."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from contracts.amm_client import quote
from tests.localnet.conftest import LocalnetNode, wait_until

TOKENS = ("JUP", "WIF", "RAY", "BONK")
PRICE_KEYS = {"usdPrice", "blockId", "decimals", "priceChange24h"}
QUOTE_KEYS = {
    "inputMint", "inAmount", "outputMint", "outAmount", "otherAmountThreshold", "swapMode", "slippageBps",
    "platformFee", "priceImpactPct", "routePlan", "contextSlot", "timeTaken",
}  # fmt: skip
SWAP_INFO_KEYS = {
    "ammKey",
    "label",
    "inputMint",
    "outputMint",
    "inAmount",
    "outAmount",
    "feeAmount",
    "feeMint",
}


def get(node: LocalnetNode, path: str, **params: str) -> httpx.Response:
    return node.http.get(node.manifest["priceUrl"] + path, params=params, timeout=10.0)


def reserves(node: LocalnetNode, symbol: str) -> tuple[int, int]:
    pool = node.manifest["pools"][symbol]
    token = node.result("getTokenAccountBalance", [pool["tokenAccount"]])["value"]["amount"]
    usdc = node.result("getTokenAccountBalance", [pool["usdcAccount"]])["value"]["amount"]
    return int(token), int(usdc)


def newest_swap(node: LocalnetNode, wallet: str) -> str:
    found = node.result("getSignaturesForAddress", [wallet, {"limit": 1, "commitment": "confirmed"}])
    signature: str = found[0]["signature"]
    return signature


def mint(node: LocalnetNode, symbol: str) -> str:
    value: str = node.manifest["mints"][symbol]["mint"]
    return value


def test_prices_come_from_pool_reserves_in_jupiters_v3_shape(market_node: LocalnetNode) -> None:
    ids = [mint(market_node, s) for s in ("USDC", *TOKENS)]
    before = {s: reserves(market_node, s) for s in TOKENS}
    answer = get(market_node, "/price/v3", ids=",".join(ids))
    after = {s: reserves(market_node, s) for s in TOKENS}
    assert answer.status_code == 200
    prices: dict[str, Any] = answer.json()
    assert set(prices) == set(ids)
    for entry in prices.values():
        assert set(entry) == PRICE_KEYS
        assert isinstance(entry["blockId"], int) and entry["blockId"] > 0
    assert prices[mint(market_node, "USDC")]["usdPrice"] == 1.0
    for symbol in TOKENS:
        decimals = market_node.manifest["mints"][symbol]["decimals"]
        entry = prices[mint(market_node, symbol)]
        assert entry["decimals"] == decimals
        around = [(usdc / 1e6) / (token / 10**decimals) for token, usdc in (before[symbol], after[symbol])]
        # the market maker may move the pool between the reads: the answer lies within its moves
        assert min(around) * 0.99 <= entry["usdPrice"] <= max(around) * 1.01, (symbol, entry, around)
        # against the pool's price a day ago, which the genesis history holds
        assert entry["priceChange24h"] != 0.0 and abs(entry["priceChange24h"]) < 50.0, (symbol, entry)


@pytest.mark.parametrize("direction", ["buy", "sell"])
def test_a_quote_is_the_amms_own_output_in_jupiters_v1_shape(
    market_node: LocalnetNode, direction: str
) -> None:
    usdc, jup = mint(market_node, "USDC"), mint(market_node, "JUP")
    input_mint, output_mint, amount = (
        (usdc, jup, 250 * 10**6) if direction == "buy" else (jup, usdc, 300 * 10**6)
    )
    token_before, usdc_before = reserves(market_node, "JUP")
    answer = get(
        market_node, "/swap/v1/quote", inputMint=input_mint, outputMint=output_mint, amount=str(amount),
        slippageBps="75",
    )  # fmt: skip
    token_after, usdc_after = reserves(market_node, "JUP")
    assert answer.status_code == 200
    body: dict[str, Any] = answer.json()
    assert set(body) == QUOTE_KEYS
    assert (body["inputMint"], body["outputMint"], body["inAmount"]) == (input_mint, output_mint, str(amount))
    assert (body["swapMode"], body["slippageBps"]) == ("ExactIn", 75)
    out = int(body["outAmount"])
    expected = [
        quote(amount, *((u, t) if direction == "buy" else (t, u)), 30)
        for t, u in ((token_before, usdc_before), (token_after, usdc_after))
    ]
    assert min(expected) <= out <= max(expected)
    assert int(body["otherAmountThreshold"]) == out * (10_000 - 75) // 10_000
    assert 0 <= float(body["priceImpactPct"]) < 0.01
    (route,) = body["routePlan"]
    assert route["percent"] == 100 and set(route["swapInfo"]) == SWAP_INFO_KEYS
    info = route["swapInfo"]
    assert info["ammKey"] == market_node.manifest["pools"]["JUP"]["pool"]
    assert (info["inAmount"], info["outAmount"], info["feeMint"]) == (str(amount), str(out), input_mint)
    assert int(info["feeAmount"]) == amount * 30 // 10_000
    assert body["contextSlot"] > 0 and body["timeTaken"] >= 0


def test_bad_input_is_a_400_naming_the_problem(market_node: LocalnetNode) -> None:
    usdc, jup, wif = mint(market_node, "USDC"), mint(market_node, "JUP"), mint(market_node, "WIF")
    stranger = "So11111111111111111111111111111111111111112"
    cases: list[tuple[str, dict[str, str], str]] = [
        ("/price/v3", {}, "ids"),
        ("/price/v3", {"ids": f"{jup},{stranger}"}, stranger),
        ("/swap/v1/quote", {"inputMint": usdc, "outputMint": jup, "amount": "abc"}, "amount"),
        ("/swap/v1/quote", {"inputMint": usdc, "outputMint": jup, "amount": "0"}, "amount"),
        ("/swap/v1/quote", {"inputMint": usdc, "outputMint": jup, "amount": "-5"}, "amount"),
        ("/swap/v1/quote", {"inputMint": stranger, "outputMint": jup, "amount": "5"}, stranger),
        ("/swap/v1/quote", {"outputMint": jup, "amount": "5"}, "inputMint"),
        ("/swap/v1/quote", {"inputMint": jup, "outputMint": wif, "amount": "5"}, "no route"),
        (
            "/swap/v1/quote",
            {"inputMint": usdc, "outputMint": jup, "amount": "5", "swapMode": "ExactOut"},
            "ExactOut",
        ),
        (
            "/swap/v1/quote",
            {"inputMint": usdc, "outputMint": jup, "amount": "5", "slippageBps": "x"},
            "slippageBps",
        ),
    ]
    for path, params, named in cases:
        answer = get(market_node, path, **params)
        assert answer.status_code == 400, (path, params)
        assert named in answer.json()["error"], (path, params, answer.json())


def test_the_market_maker_moves_prices_with_real_swaps_as_slots_pass(market_node: LocalnetNode) -> None:
    ids = ",".join(mint(market_node, s) for s in TOKENS)
    first = get(market_node, "/price/v3", ids=ids).json()
    maker = market_node.manifest["marketMaker"]
    newest_before = newest_swap(market_node, maker)

    def moved() -> bool:
        now = get(market_node, "/price/v3", ids=ids).json()
        return (
            all(now[m]["usdPrice"] != first[m]["usdPrice"] for m in first)
            and all(now[m]["blockId"] > first[m]["blockId"] for m in first)
            and newest_swap(market_node, maker) != newest_before
        )

    wait_until(moved, timeout=20.0, what="every pool's price to move")
    newest = newest_swap(market_node, maker)
    swap = market_node.result("getTransaction", [newest, {"encoding": "json", "commitment": "confirmed"}])
    assert swap["meta"]["err"] is None and swap["blockTime"] >= market_node.manifest["genesisTime"]
    assert swap["transaction"]["message"]["accountKeys"][0] == maker
