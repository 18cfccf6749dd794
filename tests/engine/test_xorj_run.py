"""`xorj run` as an operator runs it: a real process on embedded Postgres and Redis, driven through
`xorj ctl`, `/metrics` and signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

XORJ = [sys.executable, "-m", "engine.cli"]


def ctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*XORJ, "ctl", *args], env=env, capture_output=True, text=True, timeout=60)


def wait_until(condition: object, what: str, timeout: float = 90.0) -> None:
    """Poll a condition under a deadline (the engine is another process: there is no event to await)."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)  # noqa: ASYNC251 -- a sync test polling another process


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str], Path]]:
    env = {
        **os.environ,
        "XORJ_HOME": str(tmp_path / "home"),
        "METRICS_PORT": "0",
        "XORJ_FAULT_INJECTION": "1",
        "LOG_FORMAT": "json",
    }
    for var in ("DATABASE_URL", "REDIS_URL", "XORJ_CONTROL_SOCKET", "XORJ_CONFIG"):
        env.pop(var, None)
    log_path = tmp_path / "engine.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([*XORJ, "run"], env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: ctl(env, "status").returncode == 0 or proc.poll() is not None, "the engine")
        assert proc.poll() is None, log_path.read_text()
        yield proc, env, log_path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_xorj_run_serves_tree_crash_restart_metrics_and_exits_0_on_sigterm(
    engine: tuple[subprocess.Popen[str], dict[str, str], Path],
) -> None:
    proc, env, log_path = engine
    tree = json.loads(ctl(env, "tree", "--json").stdout)
    assert tree["name"] == "root" and tree["strategy"] == "rest_for_one"
    infra = next(c for c in tree["children"] if c["name"] == "infra")
    assert [c["name"] for c in infra["children"]] == ["postgres", "redis", "http", "control"]
    assert all(c["state"] == "running" for c in infra["children"])

    status = json.loads(ctl(env, "status", "--json").stdout)
    wait_until(lambda: json.loads(ctl(env, "status", "--json").stdout)["status"] == "ok", "healthy deps")
    metrics_url = f"http://127.0.0.1:{status['metrics_port']}"

    crashed = ctl(env, "crash", "redis")
    assert crashed.returncode == 0, crashed.stderr
    wait_until(
        lambda: json.loads(ctl(env, "tree", "--json").stdout)["children"][0]["children"][1]["restarts"] == 1,
        "the restart in the tree",
    )
    metrics = httpx.get(f"{metrics_url}/metrics", timeout=10).text
    assert 'xorj_actor_restarts_total{actor="redis"} 1.0' in metrics
    assert 'xorj_supervisor_children{supervisor="infra"} 4.0' in metrics
    health = httpx.get(f"{metrics_url}/health", timeout=10)
    assert health.json()["node"]["state"] == "running"

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    events = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    crash = [e for e in events if e.get("event") == "crashed" and e.get("child") == "redis"]
    assert crash and "InjectedCrash" in crash[0]["reason"]
    stopped = [e["child"] for e in events if e.get("event") == "stopped"]
    assert stopped == ["executors", "control", "http", "redis", "postgres", "infra"]  # reverse order
    assert not (Path(env["XORJ_HOME"]) / "control.sock").exists()


def test_restart_of_an_unknown_actor_or_the_root_is_refused_and_the_engine_keeps_running(
    engine: tuple[subprocess.Popen[str], dict[str, str], Path],
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
