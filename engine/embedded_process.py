"""What every embedded server shares: the child process's life and the remembered port/password.

Owns: `EmbeddedServerError`; stopping a child server (signal, grace, SIGKILL) and noticing that it
died; finding and stopping a server orphaned by a ``kill -9`` of the engine (by its pid file and
command line, through /proc); a free loopback port; and the state file (``xorj_embedded.json``,
mode 0600, written atomically) that keeps a server's port and password stable across restarts.

Used by the embedded PostgreSQL, Redis and local chain. May import: the standard library, trio,
attrs.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Final

import attrs
import trio

_log = logging.getLogger("xorj.embedded")

STATE_FILE: Final = "xorj_embedded.json"
STOP_GRACE_S: Final = 10.0
_POLL_S: Final = 0.05


@attrs.frozen
class ServerState:
    """A server's port and password, remembered in its data dir."""

    port: int
    password: str


def read_state(data_dir: Path) -> ServerState | None:
    path = data_dir / STATE_FILE
    try:
        raw = json.loads(path.read_text())
        return ServerState(port=int(raw["port"]), password=str(raw["password"]))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise EmbeddedServerError(f"{path} is corrupt: {exc}") from exc


def write_private(path: Path, text: str, owner: tuple[int, int] | None = None) -> None:
    """Write ``text`` atomically with mode 0600, owned by ``owner`` (uid, gid) when given."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    if owner is not None:
        os.chown(tmp, *owner)
    os.replace(tmp, path)


def write_state(data_dir: Path, state: ServerState, owner: tuple[int, int] | None = None) -> None:
    write_private(data_dir / STATE_FILE, json.dumps(attrs.asdict(state)), owner)


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be prepared, did not become ready, or died while in use."""



def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])



def _proc_cmdline(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie counts as gone (in a container whose init does not reap
    orphans, a stopped orphan stays a zombie forever)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    state = stat_line.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def find_orphan(pidfile: Path, binary_name: str, marker: str) -> int | None:
    """The pid in ``pidfile`` if it is a live ``binary_name`` process whose command line mentions
    ``marker`` (our data dir); removes the file when it is stale (dead or reused pid)."""
    try:
        first = pidfile.read_text().splitlines()[0].strip()
        pid = int(first)
    except (FileNotFoundError, IndexError, ValueError):
        pidfile.unlink(missing_ok=True)
        return None
    # Servers rewrite their process title, so match on the joined command line.
    cmdline = " ".join(_proc_cmdline(pid) or [])
    if binary_name in cmdline and marker in cmdline:
        return pid
    _log.info("removing stale pid file", extra={"pidfile": str(pidfile), "pid": pid})
    pidfile.unlink(missing_ok=True)
    return None


async def stop_orphan(pid: int, *, sig: int, what: str) -> None:
    """Stop a server left running by a killed previous engine (it is not our child: poll /proc)."""
    _log.warning("stopping orphaned server from a previous run", extra={"server": what, "pid": pid})
    with contextlib.suppress(ProcessLookupError):  # it may have exited on its own meanwhile
        os.kill(pid, sig)
    # Not our child: nothing to wait on but /proc, so poll under a deadline.
    with trio.move_on_after(STOP_GRACE_S):
        while pid_alive(pid):  # noqa: ASYNC110
            await trio.sleep(_POLL_S)
        return
    _log.warning("orphaned server ignored its shutdown signal; killing", extra={"server": what, "pid": pid})
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with trio.fail_after(STOP_GRACE_S):
        while pid_alive(pid):  # noqa: ASYNC110
            await trio.sleep(_POLL_S)



async def stop_child(process: trio.Process, *, sig: int, grace_s: float, what: str) -> None:
    """Signal a child server, wait ``grace_s`` for it to exit, then SIGKILL it. Uncancellable."""
    with trio.CancelScope(shield=True):
        if process.returncode is None:
            process.send_signal(sig)
            with trio.move_on_after(grace_s):
                await process.wait()
            if process.returncode is None:
                _log.warning(
                    "server ignored shutdown signal; killing", extra={"server": what, "pid": process.pid}
                )
                process.kill()
                await process.wait()
        _log.info("server stopped", extra={"server": what, "pid": process.pid, "exit": process.returncode})


async def watch_child(process: trio.Process, what: str) -> None:
    await process.wait()
    raise EmbeddedServerError(f"{what} exited unexpectedly (exit {process.returncode})")


