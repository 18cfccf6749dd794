"""engine.control_client and engine.ctl against a running control socket server."""

from __future__ import annotations

import argparse
import json
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio

from engine.control_client import ControlError, request
from engine.control_socket import CommandError, CommandSpec, serve_control_socket
from engine.ctl import register, render_tree

TREE: dict[str, object] = {
    "name": "root",
    "kind": "supervisor",
    "strategy": "rest_for_one",
    "state": "running",
    "restarts": 0,
    "mailbox_depth": 0,
    "children": [
        {
            "name": "infra",
            "kind": "supervisor",
            "strategy": "one_for_one",
            "state": "running",
            "restarts": 1,
            "mailbox_depth": 0,
            "children": [
                {
                    "name": "postgres",
                    "kind": "actor",
                    "strategy": None,
                    "state": "running",
                    "restarts": 1,
                    "mailbox_depth": 3,
                    "children": [],
                },
            ],
        },
        {
            "name": "rpc_client",
            "kind": "actor",
            "strategy": None,
            "state": "restarting",
            "restarts": 4,
            "mailbox_depth": 12,
            "children": [],
        },
    ],
}


class FakeEngine:
    """The command table a node would give the control socket, recording what it was asked."""

    def __init__(self) -> None:
        self.restarted: list[object] = []
        self.shutdown = trio.Event()

    def commands(self) -> Mapping[str, CommandSpec]:
        async def status(args: Mapping[str, object]) -> object:
            return {"node": {"state": "running"}, "dependencies": {"postgres": {"state": "up"}}}

        async def tree(args: Mapping[str, object]) -> object:
            return TREE

        async def restart(args: Mapping[str, object]) -> object:
            if args["actor"] == "ghost":
                raise CommandError("restart: no actor named 'ghost'; known: postgres, rpc_client")
            self.restarted.append(args["actor"])
            return None

        async def crash(args: Mapping[str, object]) -> object:
            raise CommandError("crash: fault injection is off (set XORJ_FAULT_INJECTION=1)")

        async def shutdown(args: Mapping[str, object]) -> object:
            self.shutdown.set()
            return None

        actor = {"actor": str}
        return {
            "status": CommandSpec(status),
            "tree": CommandSpec(tree),
            "restart": CommandSpec(restart, required=actor),
            "crash": CommandSpec(crash, required=actor),
            "shutdown": CommandSpec(shutdown),
        }


@asynccontextmanager
async def engine(sock_dir: Path) -> AsyncIterator[tuple[Path, FakeEngine]]:
    fake = FakeEngine()
    async with trio.open_nursery() as nursery:
        path = await nursery.start(serve_control_socket, sock_dir / "control.sock", fake.commands())
        yield path, fake
        nursery.cancel_scope.cancel()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xorj")
    register(parser.add_subparsers(dest="command", required=True))
    return parser


async def xorj(*argv: str) -> int:
    """Run ``xorj <argv>`` as the lead's CLI would: parse, then call the handler (in a thread,
    because the ctl client is blocking)."""
    args = _parser().parse_args(list(argv))
    code: int = await trio.to_thread.run_sync(args.handler, args)
    return code


async def test_request_returns_the_engines_result(sock_dir: Path) -> None:
    async with engine(sock_dir) as (path, _):
        result = await trio.to_thread.run_sync(request, path, "tree")
    assert result == TREE


async def test_request_raises_the_engines_refusal(sock_dir: Path) -> None:
    async with engine(sock_dir) as (path, _):
        with pytest.raises(ControlError, match=r"^restart: missing argument 'actor'$"):
            await trio.to_thread.run_sync(request, path, "restart", {})


async def test_request_without_an_engine_asks_whether_it_runs(sock_dir: Path) -> None:
    path = sock_dir / "control.sock"
    with pytest.raises(ControlError) as raised:
        await trio.to_thread.run_sync(request, path, "status")
    assert str(raised.value) == f"is the engine running? no control socket at {path}"


async def test_request_to_a_stale_socket_file_asks_whether_it_runs(sock_dir: Path) -> None:
    path = sock_dir / "control.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()
    with pytest.raises(ControlError, match=r"^is the engine running\? nothing accepts connections"):
        await trio.to_thread.run_sync(request, path, "status")


async def test_request_gives_up_at_its_deadline(sock_dir: Path) -> None:
    async def hangs(args: Mapping[str, object]) -> object:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async with trio.open_nursery() as nursery:
        path = await nursery.start(serve_control_socket, sock_dir / "c.sock", {"hangs": CommandSpec(hangs)})
        with pytest.raises(ControlError, match=r"no answer from the engine within 0\.05s"):
            await trio.to_thread.run_sync(lambda: request(path, "hangs", timeout=0.05))
        nursery.cancel_scope.cancel()


async def test_ctl_tree_prints_one_aligned_line_per_node(
    sock_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with engine(sock_dir) as (path, _):
        code = await xorj("ctl", "tree", "--socket", str(path))
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines() == [
        "root              supervisor  rest_for_one  running     restarts=0  mailbox=0",
        "├── infra         supervisor  one_for_one   running     restarts=1  mailbox=0",
        "│   └── postgres  actor       -             running     restarts=1  mailbox=3",
        "└── rpc_client    actor       -             restarting  restarts=4  mailbox=12",
    ]


async def test_ctl_tree_json_prints_the_raw_result(
    sock_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with engine(sock_dir) as (path, _):
        code = await xorj("ctl", "tree", "--json", "--socket", str(path))
    assert code == 0
    assert json.loads(capsys.readouterr().out) == TREE


async def test_ctl_status_prints_nested_fields(sock_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with engine(sock_dir) as (path, _):
        code = await xorj("ctl", "status", "--socket", str(path))
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "node:",
        "  state: running",
        "dependencies:",
        "  postgres:",
        "    state: up",
    ]


async def test_ctl_restart_sends_the_actor(sock_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with engine(sock_dir) as (path, fake):
        code = await xorj("ctl", "restart", "rpc_client", "--socket", str(path))
    assert code == 0
    assert fake.restarted == ["rpc_client"]
    assert capsys.readouterr().out == "restart of rpc_client requested\n"


async def test_ctl_shutdown_reaches_the_engine(sock_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async with engine(sock_dir) as (path, fake):
        code = await xorj("ctl", "shutdown", "--socket", str(path))
        assert fake.shutdown.is_set()
    assert code == 0
    assert capsys.readouterr().out == "shutdown requested\n"


async def test_ctl_prints_a_refusal_as_one_line_and_exits_1(
    sock_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with engine(sock_dir) as (path, _):
        code = await xorj("ctl", "crash", "rpc_client", "--socket", str(path))
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    assert captured.err == "xorj ctl crash: crash: fault injection is off (set XORJ_FAULT_INJECTION=1)\n"


async def test_ctl_finds_the_socket_through_the_config(
    sock_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("XORJ_CONTROL_SOCKET", raising=False)
    monkeypatch.setenv("XORJ_HOME", str(sock_dir))
    async with engine(sock_dir):
        code = await xorj("ctl", "restart", "postgres")
    assert code == 0


async def test_ctl_without_an_engine_exits_1_with_one_line(
    sock_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = sock_dir / "none.sock"
    monkeypatch.setenv("XORJ_CONTROL_SOCKET", str(path))
    code = await xorj("ctl", "status")
    assert code == 1
    assert capsys.readouterr().err == f"xorj ctl status: is the engine running? no control socket at {path}\n"


async def test_ctl_with_a_bad_config_exits_2_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("METRICS_PORT", "abc")
    code = await xorj("ctl", "status")
    assert code == 2
    assert capsys.readouterr().err.startswith("xorj ctl status: config error: METRICS_PORT: ")


def test_ctl_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        _parser().parse_args(["ctl", "restart"])
    assert exited.value.code == 2
    assert "actor" in capsys.readouterr().err


def test_render_tree_tolerates_missing_fields() -> None:
    assert render_tree({"name": "root", "children": [{"name": "x"}]}).splitlines() == [
        "root   ?  -  ?  restarts=?  mailbox=?",
        "└── x  ?  -  ?  restarts=?  mailbox=?",
    ]
