"""The embedded default database: a real PostgreSQL 16 (pgserver's binaries) as a child process.

Owns: the data directory ``$XORJ_HOME/postgres`` (initdb once, superuser ``xorj`` with a random
scram-sha-256 password, listening on 127.0.0.1 only over TCP, no Unix socket), the remembered
port and password (``xorj_embedded.json`` inside the data dir, mode 0600), and the server
process's life: start, readiness, fast shutdown, SIGKILL after a grace period.

Failure it contains: a previous run that was killed (a stale ``postmaster.pid``, or a postmaster
orphaned by a ``kill -9`` of the engine) -- start-up and crash recovery are the same path. A
server that does not become ready within its deadline raises ``EmbeddedServerError``; a server
that dies while in use raises ``EmbeddedServerError`` into the caller's scope, so the supervisor
above decides.

Root: PostgreSQL refuses to run as root. When euid is 0 the server runs as the unprivileged
system user ``xorj-postgres`` (created with ``useradd`` if missing); the data dir is owned by it
and only the traverse bit (o+x) is added to parent directories that lack it, with a log line.

We do not use pgserver's own server manager: it listens only on a Unix socket and stops the
server from ``atexit``, which a crash-only engine cannot rely on.

May import: the standard library, trio, attrs, `engine.embedded_process`, pgserver (for its
binaries' path only).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import shutil
import signal
import stat
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import attrs
import trio

from engine.embedded_process import (
    STATE_FILE,
    STOP_GRACE_S,
    EmbeddedServerError,
    ServerState,
    find_orphan,
    free_loopback_port,
    read_state,
    stop_child,
    stop_orphan,
    watch_child,
    write_state,
)

__all__ = ["SERVICE_USER", "EmbeddedPostgres", "embedded_postgres_url", "run_embedded_postgres"]

_log = logging.getLogger("xorj.embedded_postgres")

SERVICE_USER: Final = "xorj-postgres"
SUPERUSER: Final = "xorj"
DATABASE: Final = "xorj"
READY_TIMEOUT_S: Final = 60.0
INITDB_TIMEOUT_S: Final = 120.0


@attrs.frozen
class EmbeddedPostgres:
    """A running embedded server. ``url`` carries the password: never log it unredacted."""

    url: str
    port: int
    pid: int
    data_dir: Path


@attrs.frozen
class _RunAs:
    uid: int
    gid: int


def _bin_dir() -> Path:
    # Located without importing pgserver: its package import has side effects (platformdirs
    # warnings, a server manager) that we do not want, only its binaries.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "pgserver is not installed: no PostgreSQL binaries for the embedded default"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _owner(run_as: _RunAs | None) -> tuple[int, int] | None:
    return None if run_as is None else (run_as.uid, run_as.gid)


def _url(state: ServerState) -> str:
    return f"postgresql://{SUPERUSER}:{state.password}@127.0.0.1:{state.port}/{DATABASE}"


def embedded_postgres_url(home: Path) -> str | None:
    """The URL of the embedded server under ``home`` (running or not), or None if never initialised.

    Synchronous and side-effect free, for the CLI and ``xorj ctl`` which must not start anything.
    """
    state = read_state(home / "postgres")
    return None if state is None else _url(state)


def _service_user() -> _RunAs:
    """The unprivileged account the server runs as when we are root (created if missing)."""
    import pwd

    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        _log.info("creating system user for embedded postgres", extra={"user": SERVICE_USER})
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SERVICE_USER],
            check=True,
            capture_output=True,
            text=True,
        )
        entry = pwd.getpwnam(SERVICE_USER)
    return _RunAs(uid=entry.pw_uid, gid=entry.pw_gid)


def _grant_traverse(path: Path) -> None:
    """Add o+x (traverse only, never read) to every ancestor of ``path`` that lacks it."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)
            _log.warning(
                "granted o+x (traverse only) so the embedded postgres user can reach its files",
                extra={"path": str(parent), "user": SERVICE_USER},
            )


def _prepare_dirs(data_dir: Path, run_as: _RunAs | None) -> None:
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    data_dir.mkdir(mode=0o700, exist_ok=True)
    if run_as is not None:
        _grant_traverse(data_dir)
        _grant_traverse(_bin_dir())
        st = data_dir.stat()
        if (st.st_uid, st.st_gid) != (run_as.uid, run_as.gid):
            for root, dirs, files in os.walk(data_dir):
                for name in [*dirs, *files]:
                    os.lchown(os.path.join(root, name), run_as.uid, run_as.gid)
            os.chown(data_dir, run_as.uid, run_as.gid)
    data_dir.chmod(0o700)


def _is_initialised(data_dir: Path) -> bool:
    return (data_dir / "PG_VERSION").exists()


async def _run_checked(cmd: list[str], *, run_as: _RunAs | None, timeout: float, what: str) -> str:
    with trio.fail_after(timeout):
        result = await trio.run_process(
            cmd,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            cwd="/",
            user=None if run_as is None else run_as.uid,
            group=None if run_as is None else run_as.gid,
            extra_groups=None if run_as is None else [],
        )
    if result.returncode != 0:
        err = result.stderr.decode(errors="replace").strip()[-2000:]
        raise EmbeddedServerError(f"{what} failed (exit {result.returncode}): {err}")
    return str(result.stdout.decode(errors="replace"))


async def _initdb(data_dir: Path, password: str, run_as: _RunAs | None) -> None:
    # The password reaches initdb through a 0600 file owned by the server user, never argv.
    pwfile = data_dir.parent / ".xorj_pg_pwfile"
    fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        if run_as is not None:
            os.chown(pwfile, run_as.uid, run_as.gid)
        _log.info("initialising embedded postgres data dir", extra={"data_dir": str(data_dir)})
        await _run_checked(
            [
                str(_bin_dir() / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                SUPERUSER,
                "--pwfile",
                str(pwfile),
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            run_as=run_as,
            timeout=INITDB_TIMEOUT_S,
            what="initdb",
        )
    finally:
        pwfile.unlink(missing_ok=True)


def _clear_and_prepare(directory: Path, run_as: _RunAs | None) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    _prepare_dirs(directory, run_as)


def _move_into_place(staging: Path, data_dir: Path) -> None:
    if data_dir.exists():
        try:
            data_dir.rmdir()
        except OSError as exc:
            raise EmbeddedServerError(
                f"{data_dir} is not empty and not a PostgreSQL data dir: refusing to touch it"
            ) from exc
    staging.rename(data_dir)


async def _initialise(data_dir: Path, port: int | None, run_as: _RunAs | None) -> None:
    """initdb into a staging dir, record port and password there, then rename it into place, so
    a crash at any point leaves either no database or a complete one with its state file."""
    staging = data_dir.with_name(data_dir.name + ".initdb")
    await trio.to_thread.run_sync(_clear_and_prepare, staging, run_as)
    state = ServerState(port=port or free_loopback_port(), password=secrets.token_urlsafe(24))
    await _initdb(staging, state.password, run_as)
    write_state(staging, state, _owner(run_as))
    _move_into_place(staging, data_dir)


def _server_argv(data_dir: Path, port: int) -> list[str]:
    return [
        str(_bin_dir() / "postgres"),
        "-D",
        str(data_dir),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        f"port={port}",
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=200",
        "-c",
        "logging_collector=off",
    ]


async def _wait_ready(process: trio.Process, port: int, password: str, deadline_s: float) -> None:
    """Poll ``pg_isready`` until the server accepts connections, failing if it exits first."""
    env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "2"}
    with trio.fail_after(deadline_s):
        while True:
            if process.returncode is not None:
                raise EmbeddedServerError(
                    f"postgres exited during start-up (exit {process.returncode}); "
                    f"see postgres.log beside the data dir (port {port} taken?)"
                )
            probe = await trio.run_process(
                [
                    str(_bin_dir() / "pg_isready"),
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    SUPERUSER,
                    "-d",
                    "postgres",
                ],
                check=False,
                env=env,
                capture_stdout=True,
                capture_stderr=True,
            )
            if probe.returncode == 0:
                return
            await trio.sleep(0.1)


async def _ensure_database(port: int, password: str) -> None:
    env = {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "5"}
    psql = [
        str(_bin_dir() / "psql"),
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
        "-U",
        SUPERUSER,
        "-d",
        "postgres",
        "-v",
        "ON_ERROR_STOP=1",
        "-tAc",
    ]
    with trio.fail_after(30):
        found = await trio.run_process(
            [*psql, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
            capture_stdout=True,
            capture_stderr=True,
            check=False,
            env=env,
        )
        if found.returncode != 0:
            raise EmbeddedServerError(f"psql failed: {found.stderr.decode(errors='replace').strip()}")
        if found.stdout.strip() != b"1":
            created = await trio.run_process(
                [*psql, f"CREATE DATABASE {DATABASE}"],
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                env=env,
            )
            if created.returncode != 0:
                raise EmbeddedServerError(
                    f"CREATE DATABASE failed: {created.stderr.decode(errors='replace').strip()}"
                )
            _log.info("created database", extra={"database": DATABASE})


@asynccontextmanager
async def run_embedded_postgres(home: Path, port: int | None = None) -> AsyncIterator[EmbeddedPostgres]:
    """Start (initialising on first use) the embedded server under ``home``; stop it on exit.

    ``port``: a configured port; otherwise the one remembered from the first start (chosen free
    then), so the URL is stable across restarts. Raises ``EmbeddedServerError`` when it cannot
    start, and into the body if the server dies while the body runs.
    """
    data_dir = (home / "postgres").absolute()
    # useradd, chown and chmod are blocking system calls: off the event loop.
    run_as = await trio.to_thread.run_sync(_service_user) if os.geteuid() == 0 else None
    if not _is_initialised(data_dir):
        await _initialise(data_dir, port, run_as)
    await trio.to_thread.run_sync(_prepare_dirs, data_dir, run_as)
    state = read_state(data_dir)
    if state is None:
        raise EmbeddedServerError(
            f"{data_dir} holds a database but no {STATE_FILE} (its port and password): "
            "it was not created by xorj; move it aside or set DATABASE_URL"
        )
    if port is not None and port != state.port:
        state = attrs.evolve(state, port=port)
        write_state(data_dir, state, _owner(run_as))

    orphan = find_orphan(data_dir / "postmaster.pid", "postgres", str(data_dir))
    if orphan is not None:
        await stop_orphan(orphan, sig=signal.SIGINT, what="postgres")
        (data_dir / "postmaster.pid").unlink(missing_ok=True)

    # Own session: a Ctrl-C at the terminal reaches the engine, which then stops the server in
    # order, instead of the server dying under the gateway.
    # The server's own log goes to a file beside its data dir, not into the engine's log stream.
    async with await trio.open_file(home / "postgres.log", "ab") as server_log:
        process = await trio.lowlevel.open_process(
            _server_argv(data_dir, state.port),
            cwd=str(data_dir),
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=server_log.wrapped,
            stderr=server_log.wrapped,
            user=None if run_as is None else run_as.uid,
            group=None if run_as is None else run_as.gid,
            extra_groups=None if run_as is None else [],
        )
    try:
        await _wait_ready(process, state.port, state.password, READY_TIMEOUT_S)
        await _ensure_database(state.port, state.password)
        server = EmbeddedPostgres(url=_url(state), port=state.port, pid=process.pid, data_dir=data_dir)
        _log.info(
            "embedded postgres ready",
            extra={"port": state.port, "pid": process.pid, "data_dir": str(data_dir)},
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch_child, process, "postgres")
            try:
                yield server
            finally:
                nursery.cancel_scope.cancel()
    finally:
        # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit.
        await stop_child(process, sig=signal.SIGINT, grace_s=STOP_GRACE_S, what="postgres")
