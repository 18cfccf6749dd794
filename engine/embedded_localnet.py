"""The embedded local chain: with no `SOLANA_RPC_URL`, the engine runs `python -m localnet` as a
supervised child process under `$XORJ_HOME/localnet` and points itself at it.

Owns: the child process (started, watched, stopped with SIGTERM then SIGKILL; one orphaned by a
killed engine is found by its pid file and stopped before a new one starts), its ports (chosen
once and remembered, so URLs survive restarts), its ledger folder (the chain survives a restart of
the engine) and its manifest (program ids, mints, the bot key file, demo users).

Failure it contains: a chain that will not start (a clear error naming its log file) or that dies
(`serve_localnet` raises, so its supervisor restarts it; the chain comes back from its ledger).

May import: the standard library, trio, attrs, `engine.embedded_process`.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import attrs
import trio

from engine.embedded_process import (
    EmbeddedServerError,
    find_orphan,
    free_loopback_port,
    stop_child,
    stop_orphan,
)

START_TIMEOUT_S = 120.0
STOP_GRACE_S = 10.0
PORTS_FILE = "ports.json"


@attrs.frozen
class LocalnetPorts:
    rpc: int
    price: int

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.rpc}"

    @property
    def price_url(self) -> str:
        return f"http://127.0.0.1:{self.price}"


def localnet_ports(home: Path, rpc: int | None = None, price: int | None = None) -> LocalnetPorts:
    """Configured ports win; otherwise the ones chosen at the first start, remembered."""
    folder = home / "localnet"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / PORTS_FILE
    try:
        saved = json.loads(path.read_text())
        remembered = LocalnetPorts(int(saved["rpc"]), int(saved["price"]))
    except FileNotFoundError:
        remembered = None
    except (ValueError, KeyError, TypeError) as exc:
        raise EmbeddedServerError(f"{path} is corrupt: {exc}") from exc
    ports = LocalnetPorts(
        rpc or (remembered.rpc if remembered else free_loopback_port()),
        price or (remembered.price if remembered else free_loopback_port()),
    )
    if ports != remembered:
        path.write_text(json.dumps(attrs.asdict(ports)) + "\n")
    return ports


def manifest_path(home: Path) -> Path:
    return home / "localnet" / "manifest.json"


async def serve_localnet(
    home: Path,
    ports: LocalnetPorts,
    seed: int,
    *,
    admin: bool,
    task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the chain until cancelled; report the manifest's path once it serves."""
    folder = home / "localnet"
    manifest = manifest_path(home)
    pidfile = folder / "localnet.pid"
    # A chain left running by an engine that was killed holds our ports and ledger: stop it first.
    orphan = find_orphan(pidfile, "localnet", str(manifest))
    if orphan is not None:
        await stop_orphan(orphan, sig=signal.SIGTERM, what="localnet")
    manifest.unlink(missing_ok=True)  # a fresh one is the signal that this start is serving
    log_path = home / "localnet.log"
    argv = [
        sys.executable, "-m", "localnet",
        "--rpc-port", str(ports.rpc), "--price-port", str(ports.price),
        "--manifest", str(manifest), "--ledger", str(folder / "ledger"), "--seed", str(seed),
    ]
    if admin:
        argv.append("--admin")
    with log_path.open("ab") as log:
        process = await trio.lowlevel.open_process(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    pidfile.write_text(f"{process.pid}\n")
    try:
        with trio.move_on_after(START_TIMEOUT_S) as waiting:
            # Another process writes the manifest (atomically) once it serves; poll for it.
            while not manifest.exists():
                if process.poll() is not None:
                    raise EmbeddedServerError(
                        f"the local chain exited while starting (exit {process.returncode}); see {log_path}")
                await trio.sleep(0.05)
        if waiting.cancelled_caught:
            raise EmbeddedServerError(
                f"the local chain did not serve within {START_TIMEOUT_S:g}s; see {log_path}")
        task_status.started(manifest)
        await process.wait()
        raise EmbeddedServerError(f"the local chain exited (exit {process.returncode}); see {log_path}")
    finally:
        await stop_child(process, sig=signal.SIGTERM, grace_s=STOP_GRACE_S, what="localnet")
        pidfile.unlink(missing_ok=True)
