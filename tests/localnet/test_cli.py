"""``xorj localnet`` plugs into an argparse tree; its flags become the node's settings."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from localnet import cli
from tests.localnet.conftest import ROOT, LocalnetNode


def test_register_adds_a_localnet_command_with_a_handler() -> None:
    parser = argparse.ArgumentParser(prog="xorj")
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            "localnet",
            "--rpc-port",
            "0",
            "--slot-ms",
            "50",
            "--blockhash-window",
            "20",
            "--admin",
            "--seed",
            "3",
            "--ledger",
            "/tmp/l",
            "--manifest",
            "/tmp/m.json",
        ]
    )
    assert args.handler is cli.run
    settings = cli.settings_from_args(args)
    assert (settings.rpc_port, settings.admin, settings.ledger_dir, settings.manifest) == (
        0,
        True,
        Path("/tmp/l"),
        Path("/tmp/m.json"),
    )
    assert (settings.chain.slot_ms, settings.chain.blockhash_window, settings.chain.seed) == (50, 20, 3)


def test_defaults_are_a_validators() -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    settings = cli.settings_from_args(parser.parse_args([]))
    assert (settings.rpc_port, settings.chain.slot_ms, settings.chain.blockhash_window) == (8899, 400, 150)
    assert settings.admin is False and settings.ledger_dir is None


def test_a_taken_port_is_a_plain_error_and_exit_1(plain_node: LocalnetNode) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "localnet", "--rpc-port", str(plain_node.manifest["rpcPort"])],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert done.returncode == 1
    assert "Address already in use" in done.stderr and "Traceback" not in done.stderr
    assert plain_node.result("getHealth") == "ok"
