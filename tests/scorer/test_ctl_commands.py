"""The scorer's control commands (`engine.scoring_commands`) against a real database and a real
scorer under a Supervisor (RPC: the stand-in mainnet node), and how `xorj ctl` parses and prints them."""

from __future__ import annotations

import argparse

import pytest
from solders.keypair import Keypair

from actors.rpc_client import RetryPolicy, RpcClient, RpcClientActor
from actors.scorer import Scorer, ScorerSettings
from engine.control_socket import CommandError
from engine.ctl import COMMANDS, register, render_rankings
from engine.postgres_gateway import PostgresGateway
from engine.scoring_commands import scorer_commands
from supervisors import ChildSpec, Supervisor
from tests.rpc.conftest import rpc_nodes
from tests.runtime.conftest import running


async def test_traders_add_validates_the_wallet_and_rankings_show_the_latest_completed_run(
    schema: PostgresGateway,
) -> None:
    db = schema
    settings = ScorerSettings(interval_s=None, db_timeout_s=10.0)
    async with rpc_nodes("mainnet") as [server]:
        def client() -> RpcClient:
            return RpcClient(server.url, retry=RetryPolicy(retries=0), rate_per_s=1000.0, burst=100)

        tree = Supervisor([
            ChildSpec("rpc_client", lambda: RpcClientActor(client, probe_interval_s=60.0)),
            ChildSpec("scorer", lambda: Scorer(db, settings)),
        ])
        async with running(tree) as t:
            commands = scorer_commands(t.registry.ref("scorer"), db)
            traders, rankings, score_now = (commands[n].handler for n in ("traders", "rankings", "score-now"))

            for bad in ("not-a-wallet", "0OIl" * 11, ""):
                with pytest.raises(CommandError, match="not a Solana wallet address"):
                    await traders({"action": "add", "wallet": bad})
            with pytest.raises(CommandError, match="missing the wallet"):
                await traders({"action": "add"})
            with pytest.raises(CommandError, match="unknown action"):
                await traders({"action": "remove", "wallet": "x"})
            with pytest.raises(CommandError, match="limit must be"):
                await rankings({"limit": 0})
            assert await rankings({}) == {"run": None, "rankings": []}

            wallet = str(Keypair().pubkey())
            added = await traders({"action": "add", "wallet": f" {wallet} "})
            assert added == {"wallet": wallet, "added": True}
            assert await traders({"action": "add", "wallet": wallet}) == {"wallet": wallet, "added": False}
            listed = await traders({"action": "list"})
            assert isinstance(listed, dict) and [r["source"] for r in listed["traders"]] == ["ctl"]

            outcome = await score_now({})
            assert isinstance(outcome, dict) and outcome["status"] == "COMPLETED"
            shown = await rankings({"limit": 5})
            assert isinstance(shown, dict) and shown["run"]["id"] == outcome["run_id"]
            assert [(r["rank"], r["wallet"]) for r in shown["rankings"]] == [(1, wallet)]
            table = render_rankings(shown, {})
            assert wallet in table and "RANK" in table and "trades < 50" in table


def test_xorj_ctl_parses_the_scorer_commands() -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["ctl", "rankings", "--limit", "7", "--json"])
    assert (args.ctl_command, args.limit, args.json) == ("rankings", 7, True)
    args = parser.parse_args(["ctl", "traders", "add", "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"])
    assert (args.action, args.wallet) == ("add", "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin")
    args = parser.parse_args(["ctl", "traders", "list"])
    assert (args.action, args.wallet) == ("list", None)
    assert {"score-now", "rankings", "traders"} <= {c.name for c in COMMANDS}
    assert render_rankings({"run": None, "rankings": []}, {}).startswith("no COMPLETED scoring run")
