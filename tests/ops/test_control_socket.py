"""engine.control_socket: a real Unix socket server, driven by raw trio clients."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest
import trio

from engine.control_socket import (
    MAX_LINE_BYTES,
    CommandError,
    CommandSpec,
    ControlSocketError,
    serve_control_socket,
)


async def _status(args: Mapping[str, object]) -> object:
    return {"node": "running", "args": dict(args)}


async def _restart(args: Mapping[str, object]) -> object:
    if args["actor"] == "nobody":
        raise CommandError("restart: no actor named 'nobody'")
    return {"restarted": args["actor"], "grace": args.get("grace")}


async def _buggy(args: Mapping[str, object]) -> object:
    raise KeyError("supervisor table out of sync")


async def _hangs(args: Mapping[str, object]) -> object:
    await trio.sleep_forever()
    raise AssertionError("unreachable")


async def _not_json(args: Mapping[str, object]) -> object:
    return {"actors": {"a", "b"}}


COMMANDS: Mapping[str, CommandSpec] = {
    "not_json": CommandSpec(_not_json),
    "status": CommandSpec(_status),
    "restart": CommandSpec(_restart, required={"actor": str}, optional={"grace": float}),
    "buggy": CommandSpec(_buggy),
    "hangs": CommandSpec(_hangs, timeout=0.05),
}


@asynccontextmanager
async def control_server(path: Path, **kwargs: object) -> AsyncIterator[Path]:
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(serve_control_socket, path, COMMANDS, **kwargs))  # type: ignore[arg-type]
        yield path
        nursery.cancel_scope.cancel()


class LineClient:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def read_line(self) -> dict[str, object] | None:
        with trio.fail_after(5):
            while b"\n" not in self.buffer:
                chunk = await self.stream.receive_some(65536)
                if not chunk:
                    return None
                self.buffer += chunk
        line, _, rest = bytes(self.buffer).partition(b"\n")
        self.buffer = bytearray(rest)
        answer = json.loads(line)
        assert isinstance(answer, dict)
        return answer

    async def ask(self, request: object) -> dict[str, object] | None:
        await self.send(json.dumps(request).encode() + b"\n")
        return await self.read_line()


@asynccontextmanager
async def connect(path: Path) -> AsyncIterator[LineClient]:
    with trio.fail_after(5):
        stream = await trio.open_unix_socket(str(path))
    async with stream:
        yield LineClient(stream)


async def test_a_command_round_trips(sock_dir: Path) -> None:
    async with control_server(sock_dir / "c.sock") as path, connect(path) as client:
        answer = await client.ask({"cmd": "restart", "args": {"actor": "rpc_client", "grace": 2}})
    assert answer == {"ok": True, "result": {"restarted": "rpc_client", "grace": 2}}


async def test_several_requests_share_one_connection(sock_dir: Path) -> None:
    async with control_server(sock_dir / "c.sock") as path, connect(path) as client:
        await client.send(b'{"cmd": "status"}\n\n{"cmd": "status", "args": {}}\n')
        first, second = await client.read_line(), await client.read_line()
        third = await client.ask({"cmd": "status", "args": None})
    assert first == second == third == {"ok": True, "result": {"node": "running", "args": {}}}


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (b"{not json", "request is not valid JSON: "),
        (b"[1, 2]", "request must be a JSON object"),
        (b'{"cmd": "explode"}', "unknown command 'explode'; known: buggy, hangs, not_json, restart, status"),
        (
            b'{"args": {}}',
            "request needs 'cmd' naming a command; known: buggy, hangs, not_json, restart, status",
        ),
        (b'{"cmd": "restart", "args": []}', "restart: args must be an object"),
        (b'{"cmd": "restart", "args": {}}', "restart: missing argument 'actor'"),
        (b'{"cmd": "restart", "args": {"actor": 7}}', "restart: argument 'actor' must be a string, got 7"),
        (
            b'{"cmd": "restart", "args": {"actor": "a", "grace": true}}',
            "restart: argument 'grace' must be a number, got true",
        ),
        (
            b'{"cmd": "restart", "args": {"actor": "a", "force": 1}}',
            "restart: unknown argument 'force'; accepted: actor, grace",
        ),
        (b'{"cmd": "status", "extra": 1}', "unknown request field 'extra'"),
        (b'{"cmd": "restart", "args": {"actor": "nobody"}}', "restart: no actor named 'nobody'"),
        (b'{"cmd": "hangs"}', "hangs: no answer within 0.05s"),
        (b'{"cmd": "not_json"}', "not_json: internal error: result is not JSON"),
    ],
)
async def test_bad_requests_get_an_error_naming_the_problem_and_the_connection_lives_on(
    sock_dir: Path, line: bytes, error: str
) -> None:
    async with control_server(sock_dir / "c.sock") as path, connect(path) as client:
        await client.send(line + b"\n")
        answer = await client.read_line()
        after = await client.ask({"cmd": "status"})
    assert answer is not None and answer["ok"] is False
    assert str(answer["error"]).startswith(error)
    assert after is not None and after["ok"] is True


@pytest.mark.parametrize("tail", [b"", b"\n"])
async def test_an_oversized_line_is_refused_and_the_connection_closed(sock_dir: Path, tail: bytes) -> None:
    async with control_server(sock_dir / "c.sock") as path, connect(path) as client:
        await client.send(b" " * (2 * MAX_LINE_BYTES) + tail)
        answer = await client.read_line()
        closed = await client.read_line()
    assert answer == {"ok": False, "error": f"request line too long (limit {MAX_LINE_BYTES} bytes)"}
    assert closed is None


async def test_a_crashing_handler_is_answered_logged_and_the_server_serves_the_next_client(
    sock_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with control_server(sock_dir / "c.sock") as path:
        async with connect(path) as client:
            answer = await client.ask({"cmd": "buggy"})
        async with connect(path) as next_client:
            after = await next_client.ask({"cmd": "status"})
    assert answer is not None and answer["ok"] is False
    assert "buggy: internal error: KeyError" in str(answer["error"])
    assert after is not None and after["ok"] is True
    failures = [r for r in caplog.records if r.getMessage() == "control command failed"]
    assert failures and failures[0].exc_info is not None


async def test_the_socket_file_is_private_and_removed_on_exit(sock_dir: Path) -> None:
    async with control_server(sock_dir / "c.sock") as path:
        mode = path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert not path.exists()


async def test_a_stale_socket_file_is_replaced(sock_dir: Path) -> None:
    path = sock_dir / "c.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))
    dead.close()
    assert path.exists()
    async with control_server(path), connect(path) as client:
        answer = await client.ask({"cmd": "status"})
    assert answer is not None and answer["ok"] is True


async def test_a_second_engine_refuses_to_take_over_a_live_socket(sock_dir: Path) -> None:
    async with control_server(sock_dir / "c.sock") as path:
        with pytest.raises(ControlSocketError, match="another engine is already answering"):
            await serve_control_socket(path, COMMANDS)
        async with connect(path) as client:
            answer = await client.ask({"cmd": "status"})
    assert answer is not None and answer["ok"] is True


async def test_a_regular_file_at_the_socket_path_is_not_deleted(sock_dir: Path) -> None:
    path = sock_dir / "c.sock"
    path.write_text("operator notes")
    with pytest.raises(ControlSocketError, match="not a socket"):
        await serve_control_socket(path, COMMANDS)
    assert path.read_text() == "operator notes"


async def test_an_idle_client_is_told_and_closed(sock_dir: Path) -> None:
    async with control_server(sock_dir / "c.sock", idle_timeout=0.05) as path, connect(path) as client:
        answer = await client.read_line()
        closed = await client.read_line()
    assert answer == {"ok": False, "error": "idle for 0.05s; closing"}
    assert closed is None


async def test_clients_beyond_the_connection_limit_are_turned_away(sock_dir: Path) -> None:
    async with control_server(sock_dir / "c.sock", max_connections=1) as path:
        async with connect(path) as first:
            assert (await first.ask({"cmd": "status"})) is not None
            async with connect(path) as second:
                refused = await second.read_line()
            still = await first.ask({"cmd": "status"})
    assert refused == {"ok": False, "error": "too many control connections (limit 1)"}
    assert still is not None and still["ok"] is True


# The venv's interpreter may live under /root; the system one is executable by any uid.
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")


@pytest.mark.skipif(os.geteuid() != 0 or SYSTEM_PYTHON is None, reason="needs root and /usr/bin/python3")
async def test_a_peer_with_another_uid_is_refused(sock_dir: Path) -> None:
    assert SYSTEM_PYTHON is not None
    os.chmod(sock_dir, 0o755)
    async with control_server(sock_dir / "c.sock") as path:
        # Simulate a socket left world-writable: SO_PEERCRED is the check that still holds.
        path.chmod(0o666)
        client = (
            "import socket, sys\n"
            "s = socket.socket(socket.AF_UNIX); s.settimeout(5); s.connect(sys.argv[1])\n"
            "print(s.makefile().readline(), end='')\n"
        )
        result = await trio.run_process(
            [SYSTEM_PYTHON, "-I", "-c", client, str(path)], user=65534, capture_stdout=True
        )
    answer = json.loads(result.stdout)
    assert answer == {"ok": False, "error": "permission denied: uid 65534 may not control this engine"}


async def test_a_socket_path_longer_than_unix_allows_is_refused_clearly(sock_dir: Path) -> None:
    with pytest.raises(ControlSocketError, match="too long for a Unix socket"):
        await serve_control_socket(sock_dir / ("x" * 120), COMMANDS)
