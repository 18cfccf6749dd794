"""What the crash-safety test runs on: the parts that survive every kill of the engine, and the
engine itself as a subprocess.

Owns:

- `crash_chain`: one ``python -m localnet --genesis market`` node (fast slots, an 80-slot blockhash
  window -- a blockhash expires in ~4 s, longer than a restart, so stored bytes can be resent
  after one --, admin methods, no live traders; seed 7, whose top trader holds tokens, so the
  executors' first plan trades);
- `crash_redis`: an embedded Redis of its own (the test engages the global kill switch, which the
  engine mirrors to Redis: that must not leak into other tests' Redis);
- `crash_home`: a short private XORJ_HOME (the control socket path must fit a Unix socket name);
- `EngineProcess`: ``xorj run`` under trio, its JSON log read line by line as it comes, waited on
  with deadlines (events, not sleeps), and its exit code;
- `ctl`: one ``xorj ctl`` call, as an operator types it;
- `bot_transactions`: every transaction the bot key paid for on one vault PDA, read from the
  chain (getSignaturesForAddress, paged, then getTransaction) with its TradeExecuted events.

The embedded PostgreSQL and the fresh database per test are tests/infra's fixtures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from solders.commitment_config import CommitmentLevel
from solders.pubkey import Pubkey
from solders.rpc.config import RpcSignaturesForAddressConfig
from solders.signature import Signature

from actors.rpc_client import RetryPolicy, RpcClient
from contracts.vault_client import TradeExecuted, trade_events
from engine.embedded_redis import EmbeddedRedis, run_embedded_redis
from tests.infra.conftest import ServerThread, db_url, gateway, pg_server, xorj_home  # noqa: F401
from tests.localnet.conftest import LocalnetNode, start_node, stop_node

ROOT = Path(__file__).resolve().parents[2]
XORJ = (sys.executable, "-m", "engine.cli")
CHAIN = ("--slot-ms", "50", "--blockhash-window", "80", "--finalize-slots", "4", "--confirm-slots", "1",
         "--genesis", "market", "--price-port", "0", "--admin", "--no-live-traders", "--seed", "7")
PAGE = 1000  # getSignaturesForAddress's page size (the RPC's maximum)


def _private_tmp(prefix: str) -> Path:
    # Not under pytest's tmp root: short (a Unix socket path has ~107 bytes) and never reset to
    # 0700 by another pytest run while the engine uses it.
    return Path(tempfile.mkdtemp(prefix=prefix))


@pytest.fixture(scope="session")
def crash_chain() -> Iterator[LocalnetNode]:
    workdir = _private_tmp("xorj-crash-chain-")
    node = start_node(workdir, *CHAIN, deadline_s=120.0)
    try:
        yield node
    finally:
        assert stop_node(node) == 0
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def crash_redis() -> Iterator[EmbeddedRedis]:
    home = _private_tmp("xorj-crash-redis-")
    thread = ServerThread(lambda: run_embedded_redis(home))
    try:
        yield thread.start()
    finally:
        thread.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def crash_home() -> Iterator[Path]:
    root = _private_tmp("xorj-crash-")
    yield root / "home"
    shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------------ the engine


class EngineExited(AssertionError):
    """The engine ended while the test waited for something else."""


class EngineProcess:
    """One ``xorj run`` subprocess: its log as parsed JSON events (plus ``_t``, the trio clock at
    which the line was read) and its exit."""

    def __init__(self, process: trio.Process, spawned_at: float) -> None:
        self.process = process
        self.spawned_at = spawned_at
        self.events: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.exited = trio.Event()
        self._changed = trio.Event()

    @classmethod
    async def start(cls, nursery: trio.Nursery, env: Mapping[str, str]) -> EngineProcess:
        process = await trio.lowlevel.open_process(
            [*XORJ, "run"], env=dict(env), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT)
        engine = cls(process, trio.current_time())
        nursery.start_soon(engine._read)
        return engine

    async def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        pending = b""
        async for chunk in stdout:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._line(line.decode(errors="replace"))
        if pending:
            self._line(pending.decode(errors="replace"))
        await self.process.wait()
        self.exited.set()
        self._notify()

    def _line(self, text: str) -> None:
        self.raw.append(text)
        if text.startswith("{"):
            try:
                event = json.loads(text)
            except ValueError:
                return
            event["_t"] = trio.current_time()
            self.events.append(event)
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def first(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        return next((e for e in self.events if predicate(e)), None)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.raw[-lines:])

    async def wait_for(
        self, what: str, predicate: Callable[[dict[str, Any]], bool], *, within: float
    ) -> dict[str, Any]:
        """The first log event matching ``predicate``; `EngineExited` if the engine ends first,
        `trio.TooSlowError` after ``within`` seconds."""
        with trio.fail_after(within):
            while True:
                found = self.first(predicate)
                if found is not None:
                    return found
                if self.exited.is_set():
                    raise EngineExited(f"the engine exited ({self.returncode}) before {what}:\n{self.tail()}")
                await self._changed.wait()

    async def stop_hard(self) -> None:
        """SIGKILL and reap, whatever state the engine is in (cleanup after a failed wait)."""
        if self.process.returncode is None:
            self.process.kill()
        with trio.CancelScope(shield=True), trio.move_on_after(30):
            await self.process.wait()


def msg_is(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: event.get("msg") == text


async def ctl(env: Mapping[str, str], *args: str, within: float = 60.0) -> subprocess.CompletedProcess[bytes]:
    """``xorj ctl ARGS`` as a subprocess; never raises for a non-zero exit (the caller decides)."""
    with trio.fail_after(within):
        return await trio.run_process([*XORJ, "ctl", *args], env=dict(env), cwd=ROOT, check=False,
                                      capture_stdout=True, capture_stderr=True)


def engine_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any engine setting it may carry, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("XORJ_CONFIG", "XORJ_CONTROL_SOCKET", "XORJ_CRASH_AT", "DATABASE_URL", "REDIS_URL",
                        "SOLANA_RPC_URL", "SOLANA_RPC_BACKUP_URL", "PRICE_API_URL", "LOCALNET_MANIFEST")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env


# ------------------------------------------------------------------------------------- the chain


@attrs.frozen
class Landed:
    """One transaction the bot paid for, as the chain has it."""

    signature: str
    vault: str
    succeeded: bool
    err: str | None
    events: tuple[TradeExecuted, ...]


@pytest.fixture
async def chain_rpc(crash_chain: LocalnetNode) -> AsyncIterator[RpcClient]:
    async with RpcClient(crash_chain.url, rate_per_s=5000.0, burst=500, default_timeout_s=10.0,
                         retry=RetryPolicy(retries=2, min_s=0.01, max_s=0.1)) as client:
        yield client


async def vault_signatures(rpc: RpcClient, vault: Pubkey) -> list[Signature]:
    """Every signature that touched ``vault``, newest first, paging with ``before`` as a validator
    requires."""
    found: list[Signature] = []
    before: Signature | None = None
    while True:
        page = (await rpc.get_signatures_for_address(vault, RpcSignaturesForAddressConfig(
            before=before, limit=PAGE, commitment=CommitmentLevel.Confirmed))).value
        found.extend(s.signature for s in page)
        if len(page) < PAGE:
            return found
        before = page[-1].signature


async def bot_transactions(rpc: RpcClient, vault: Pubkey, bot: Pubkey) -> dict[str, Landed]:
    """The transactions on ``vault`` whose fee payer is the bot key (what ``bot_trade`` sends), by
    signature: success or error, and the TradeExecuted events in their logs."""
    signatures = await vault_signatures(rpc, vault)
    landed: dict[str, Landed] = {}
    for chunk in range(0, len(signatures), 100):
        part = signatures[chunk:chunk + 100]
        answers = await rpc.get_transactions(part)
        for signature, answer in zip(part, answers, strict=True):
            assert not isinstance(answer, Exception), (signature, answer)
            tx = answer.value
            assert tx is not None and tx.transaction.meta is not None, signature
            message = tx.transaction.transaction.message  # type: ignore[union-attr]
            if message.account_keys[0] != bot:
                continue  # the owner's own transactions (genesis: initialise, deposit, grant)
            meta = tx.transaction.meta
            landed[str(signature)] = Landed(
                signature=str(signature), vault=str(vault), succeeded=meta.err is None,
                err=None if meta.err is None else str(meta.err),
                events=tuple(trade_events(meta.log_messages or [])))
    return landed


async def signature_statuses(rpc: RpcClient, signatures: list[str]) -> dict[str, bool]:
    """For each signature: is it on chain at all (searching the whole history)?"""
    found: dict[str, bool] = {}
    for chunk in range(0, len(signatures), 200):
        part = signatures[chunk:chunk + 200]
        answer = await rpc.get_signature_statuses([Signature.from_string(s) for s in part],
                                                  search_transaction_history=True)
        for signature, status in zip(part, answer.value, strict=True):
            found[signature] = status is not None
    return found
