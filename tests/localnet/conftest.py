"""The local chain under test: real ``python -m localnet`` processes on ephemeral ports.

A node is started as a subprocess with ``--rpc-port 0 --manifest FILE``; it is ready when the
manifest appears (written atomically after the server listens). Clients are solana-py's own
``AsyncClient`` (driven with ``asyncio.run`` from sync tests: solana-py is asyncio, the test
suite runs trio) and plain httpx for raw JSON-RPC framing checks.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import attrs
import httpx
import pytest
from solana.rpc.async_api import AsyncClient

ROOT = Path(__file__).resolve().parents[2]
STARTUP_DEADLINE = 20.0
MARKET_STARTUP_DEADLINE = 120.0  # the market genesis lands ~11,000 transactions (seconds, not minutes)
MARKET_SEED = 11
# A market node: the seeded genesis, 100 ms slots, admin methods (tests mint to fresh wallets); no
# live traders, so the trader histories are genesis's alone (test_live_traders turns them on).
MARKET_CHAIN = (
    "--slot-ms", "100", "--blockhash-window", "150", "--finalize-slots", "4", "--confirm-slots", "1",
    "--genesis", "market", "--price-port", "0", "--admin", "--no-live-traders",
)
T = TypeVar("T")

# Fast slots and short windows keep the suite quick; the semantics are the same at 400 ms / 150.
FAST_CHAIN = (
    "--slot-ms", "40", "--blockhash-window", "30", "--finalize-slots", "4", "--confirm-slots", "1",
    "--genesis", "mints",
)


@attrs.frozen
class LocalnetNode:
    process: subprocess.Popen[bytes]
    url: str
    manifest: dict[str, Any]
    workdir: Path
    http: httpx.Client

    def rpc(self, method: str, params: object = None, *, timeout: float = 10.0) -> dict[str, Any]:
        """One raw JSON-RPC call; returns the whole answer object (result or error)."""
        body: dict[str, object] = {"jsonrpc": "2.0", "id": 1, "method": method}
        if params is not None:
            body["params"] = params
        answer: dict[str, Any] = self.http.post(self.url, json=body, timeout=timeout).json()
        return answer

    def result(self, method: str, params: object = None) -> Any:
        answer = self.rpc(method, params)
        assert "error" not in answer, answer
        return answer["result"]

    def run(self, scenario: Callable[[AsyncClient], Awaitable[T]], *, deadline: float = 30.0) -> T:
        """Run ``scenario`` with solana-py's client against this node, under a deadline."""

        async def main() -> T:
            async with AsyncClient(self.url) as client:
                async with asyncio.timeout(deadline):
                    return await scenario(client)

        return asyncio.run(main())


def start_node(workdir: Path, *flags: str, deadline_s: float = STARTUP_DEADLINE) -> LocalnetNode:
    workdir.mkdir(parents=True, exist_ok=True)
    manifest_path = workdir / "manifest.json"
    manifest_path.unlink(missing_ok=True)
    log = (workdir / "node.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "localnet", "--rpc-port", "0", "--manifest", str(manifest_path), *flags],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=log,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    # The node prints one line once it serves (after writing its manifest): wait for that event,
    # or for its stdout to close (it exited), under the deadline.
    serving = threading.Event()

    def pump(stdout: IO[bytes]) -> None:
        for line in stdout:
            log.write(line)
            log.flush()
            if line.startswith(b"localnet listening on"):
                serving.set()
        serving.set()

    assert process.stdout is not None
    threading.Thread(target=pump, args=(process.stdout,), daemon=True).start()
    if not serving.wait(deadline_s):
        process.kill()
        raise TimeoutError(f"localnet did not start within {deadline_s}s")
    if process.poll() is not None or not manifest_path.exists():
        process.wait(timeout=10)
        raise RuntimeError(f"localnet exited with {process.returncode}: {(workdir / 'node.log').read_text()}")
    manifest = json.loads(manifest_path.read_text())
    return LocalnetNode(process, manifest["rpcUrl"], manifest, workdir, httpx.Client())


def stop_node(node: LocalnetNode, *, timeout: float = 15.0) -> int:
    """SIGTERM and wait; the exit code (0 is a clean stop)."""
    node.http.close()
    if node.process.poll() is None:
        node.process.send_signal(signal.SIGTERM)
    try:
        return node.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        node.process.kill()
        node.process.wait()
        raise


def wait_until(predicate: Callable[[], T], *, timeout: float = 10.0, what: str = "condition") -> T:
    """Poll ``predicate`` until it returns something truthy, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@pytest.fixture(scope="session")
def admin_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalnetNode]:
    node = start_node(tmp_path_factory.mktemp("localnet-admin"), "--admin", "--seed", "7", *FAST_CHAIN)
    yield node
    assert stop_node(node) == 0


@pytest.fixture(scope="session")
def plain_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalnetNode]:
    node = start_node(tmp_path_factory.mktemp("localnet-plain"), *FAST_CHAIN)
    yield node
    assert stop_node(node) == 0


@pytest.fixture(scope="session")
def market_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalnetNode]:
    """One seeded market node the market tests share (read-mostly: each test uses its own wallets)."""
    node = start_node(
        tmp_path_factory.mktemp("localnet-market"), *MARKET_CHAIN, "--seed", str(MARKET_SEED),
        deadline_s=MARKET_STARTUP_DEADLINE,
    )
    yield node
    assert stop_node(node) == 0


@pytest.fixture
def no_faults(admin_node: LocalnetNode) -> Iterator[LocalnetNode]:
    """The admin node with every fault knob off before and after the test."""
    off = {"dropRate": 0.0, "landDelaySlots": 0, "errorAfterLanding": False}
    admin_node.result("localnet_setFaults", [off])
    yield admin_node
    admin_node.result("localnet_setFaults", [off])
