"""With ``--ledger`` the market survives a restart: the genesis is replayed from the ledger like any
other transaction (not re-run), so the restarted node has the same programs, pools, vaults and
trader histories, and the market maker's later swaps too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.localnet.conftest import MARKET_CHAIN, MARKET_STARTUP_DEADLINE, LocalnetNode, start_node, stop_node

SEED = 23


def snapshot(node: LocalnetNode) -> dict[str, Any]:
    manifest = node.manifest
    professional = next(t["pubkey"] for t in manifest["traders"] if t["name"] == "professional")
    maker = manifest["marketMaker"]
    return {
        "addresses": {
            key: manifest[key]
            for key in ("mints", "programs", "pools", "traders", "genesisTime", "historyStart", "seed")
        }
        | {"bot": manifest["botAuthority"]["pubkey"], "users": [u["vault"] for u in manifest["demoUsers"]]},
        "professional": node.result("getSignaturesForAddress", [professional, {"limit": 1000}]),
        "vault": node.result("getAccountInfo", [manifest["demoUsers"][0]["vault"], {"encoding": "base64"}])[
            "value"
        ],
        "maker_newest": node.result("getSignaturesForAddress", [maker, {"limit": 1}])[0]["signature"],
    }


def test_a_market_ledger_survives_a_restart_with_its_genesis_and_histories(tmp_path: Path) -> None:
    flags = (*MARKET_CHAIN, "--seed", str(SEED), "--ledger", str(tmp_path / "ledger"))
    first = start_node(tmp_path / "first", *flags, deadline_s=MARKET_STARTUP_DEADLINE)
    try:
        before = snapshot(first)
    finally:
        assert stop_node(first) == 0
    # another --seed on restart: the ledger keeps the seed its genesis used
    second = start_node(
        tmp_path / "second", *flags[:-4], "--seed", "99", *flags[-2:], deadline_s=MARKET_STARTUP_DEADLINE
    )
    try:
        after = snapshot(second)
        assert after["addresses"] == before["addresses"]
        assert after["professional"] == before["professional"]
        assert after["vault"] == before["vault"]
        newest = second.result("getTransaction", [before["maker_newest"], {"encoding": "json"}])
        assert newest is not None and newest["meta"]["err"] is None
        assert second.manifest["genesisTransactions"] == 0  # replayed, not re-run
    finally:
        assert stop_node(second) == 0
