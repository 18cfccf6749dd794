"""`xorj run` as an operator runs it: a real process on embedded Postgres and Redis, driven through
`xorj ctl`, `/metrics` and signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

XORJ = [sys.executable, "-m", "engine.cli"]


def ctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*XORJ, "ctl", *args], env=env, capture_output=True, text=True, timeout=60)


class EngineLog:
    """Reads the engine's JSON log lines as they come and lets the test wait for one (an event
    with a deadline, not a sleep)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.events: list[dict[str, object]] = []
        self.raw: list[str] = []
        self.bad: list[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._reader.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._cond:
                self.raw.append(line)
                if line.startswith("{"):
                    try:
                        self.events.append(json.loads(line))
                    except json.JSONDecodeError:  # not the engine's JSON log (a child's output): keep it raw
                        self.bad.append(line)
                self._cond.notify_all()
        with self._cond:
            self.raw.append("<EOF>")
            self._cond.notify_all()

    def wait_for(self, what: str, timeout: float = 90.0, **fields: object) -> dict[str, object]:
        def found() -> dict[str, object] | None:
            for event in self.events:
                if all(event.get(k) == v for k, v in fields.items()):
                    return event
            if self.raw and self.raw[-1] == "<EOF>":
                raise AssertionError(f"engine exited before {what}:\n{''.join(self.raw[-30:])}")
            return None

        with self._cond:
            event = self._cond.wait_for(found, timeout=timeout)
        if event is None:
            raise AssertionError(f"timed out waiting for {what}:\n{''.join(self.raw[-30:])}")
        return event


def engine_env(home: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "XORJ_HOME": str(home),
        "METRICS_PORT": "0",
        "XORJ_FAULT_INJECTION": "1",
        "LOG_FORMAT": "json",
    }
    for var in ("DATABASE_URL", "REDIS_URL", "SOLANA_RPC_URL", "XORJ_CONTROL_SOCKET", "XORJ_CONFIG"):
        env.pop(var, None)
    return env


def start_engine(env: dict[str, str]) -> tuple[subprocess.Popen[str], EngineLog]:
    proc = subprocess.Popen([*XORJ, "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    log = EngineLog(proc)
    log.wait_for("the engine to run", msg="engine running")
    return proc, log


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str], EngineLog]]:
    env = engine_env(tmp_path / "home")
    proc, log = start_engine(env)
    try:
        log.wait_for("the schema", msg="migrations applied")
        yield proc, env, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_xorj_run_serves_tree_crash_restart_metrics_and_exits_0_on_sigterm(
    engine: tuple[subprocess.Popen[str], dict[str, str], EngineLog],
) -> None:
    proc, env, log = engine
    tree = json.loads(ctl(env, "tree", "--json").stdout)
    assert tree["name"] == "root" and tree["strategy"] == "rest_for_one"
    infra = next(c for c in tree["children"] if c["name"] == "infra")
    assert [c["name"] for c in infra["children"]] == ["postgres", "redis", "http", "control", "localnet"]
    assert [c["name"] for c in tree["children"]] == [
        "infra", "rpc_client", "alerter", "price_feed", "scorer", "trader_watch", "risk", "executors",
        "trading"]
    assert all(c["state"] == "running" for c in infra["children"])

    log.wait_for("redis", msg="redis connected")
    status = json.loads(ctl(env, "status", "--json").stdout)
    assert status["dependencies"]["postgres"]["state"] == "up"
    assert status["dependencies"]["solana_rpc"]["state"] in ("up", "connecting")
    metrics_url = f"http://127.0.0.1:{status['metrics_port']}"

    crashed = ctl(env, "crash", "redis")
    assert crashed.returncode == 0, crashed.stderr
    log.wait_for("the restart", event="started", child="redis", incarnation=2)
    redis_node = json.loads(ctl(env, "tree", "--json").stdout)["children"][0]["children"][1]
    assert redis_node["name"] == "redis" and redis_node["restarts"] == 1
    metrics = httpx.get(f"{metrics_url}/metrics", timeout=10).text
    assert 'xorj_actor_restarts_total{actor="redis"} 1.0' in metrics
    assert 'xorj_supervisor_children{supervisor="infra"} 5.0' in metrics
    health = httpx.get(f"{metrics_url}/health", timeout=10)
    assert health.json()["node"]["state"] == "running"

    # once its executors run, the node moves its long-lived heap out of the collector's way
    frozen = log.wait_for("the heap frozen after start-up", msg="long-lived objects frozen")
    assert isinstance(frozen["objects"], int) and frozen["objects"] > 10_000
    assert any(e.get("msg") == "executors started" for e in log.events[: log.events.index(frozen)])

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    log.wait_for("the last line", msg="engine stopped")
    events = log.events
    crash = [e for e in events if e.get("event") == "crashed" and e.get("child") == "redis"]
    assert crash and "InjectedCrash" in str(crash[0]["reason"])
    stopped = [e["child"] for e in events
               if e.get("event") == "stopped" and e.get("supervisor") in ("root", "infra")]
    assert stopped == [  # reverse start order
        "trading", "executors", "risk", "trader_watch", "scorer", "price_feed", "alerter", "rpc_client",
        "localnet", "control", "http", "redis", "postgres", "infra"], "".join(log.raw[-60:])
    # the executors stopped before their supervisor did
    stops = [(i, e) for i, e in enumerate(events) if e.get("event") == "stopped"]
    supervisor_at = next(i for i, e in stops if e.get("child") == "executors")
    executors = [i for i, e in stops if e.get("supervisor") == "executors"]
    assert executors and max(executors) < supervisor_at
    assert not (Path(env["XORJ_HOME"]) / "control.sock").exists()


def test_restart_of_an_unknown_actor_or_the_root_is_refused_and_the_engine_keeps_running(
    engine: tuple[subprocess.Popen[str], dict[str, str], EngineLog],
) -> None:
    proc, env, _ = engine
    unknown = ctl(env, "restart", "nobody")
    assert unknown.returncode == 1 and "no actor named 'nobody'" in unknown.stderr
    root = ctl(env, "restart", "root")
    assert root.returncode == 1 and "root of the tree" in root.stderr
    assert ctl(env, "status").returncode == 0
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 0


def test_a_bad_config_value_stops_start_up_with_one_line_and_exit_code_2(tmp_path: Path) -> None:
    env = {**os.environ, "XORJ_HOME": str(tmp_path), "METRICS_PORT": "ninety"}
    done = subprocess.run([*XORJ, "run"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "METRICS_PORT" in done.stderr and "Traceback" not in done.stderr


async def test_crash_is_refused_unless_fault_injection_is_enabled(tmp_path: Path) -> None:
    from engine.config import load_config
    from engine.control_socket import CommandError
    from engine.node import Node

    node = Node(load_config({"XORJ_HOME": str(tmp_path)}))
    with pytest.raises(CommandError, match="fault injection is off"):
        await node.commands()["crash"].handler({"actor": "redis"})


def test_after_kill_9_the_engine_restarts_over_the_servers_its_last_run_left_behind(
    engine: tuple[subprocess.Popen[str], dict[str, str], EngineLog],
) -> None:
    proc, env, _ = engine
    proc.kill()  # kill -9: the embedded PostgreSQL, Redis and local chain are orphaned
    proc.wait(timeout=30)
    again, log = start_engine(env)
    try:
        log.wait_for("the database", msg="database connected")
        status = json.loads(ctl(env, "status", "--json").stdout)
        assert status["state"] == "running"
        tree = json.loads(ctl(env, "tree", "--json").stdout)
        assert all(c["state"] == "running" for c in tree["children"][0]["children"])
        again.send_signal(signal.SIGTERM)
        assert again.wait(timeout=60) == 0
    finally:
        if again.poll() is None:
            again.kill()
            again.wait(timeout=30)
