"""The fault proxy as an operator runs it (`python -m chaos proxy`, a separate process) driven by
an unmodified third-party toxiproxy client from PyPI (toxiproxy-python, imported as `toxiproxy`),
plus `--config` and a clean exit on SIGTERM."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from chaos import cli
from tests.chaos.conftest import ROOT, echo_through, start_proxy_process, stop_process


def test_toxiproxy_python_drives_our_proxy_unchanged(echo_server: str) -> None:
    toxiproxy = pytest.importorskip("toxiproxy")
    from toxiproxy.api import APIConsumer  # type: ignore[import-untyped]

    process, api_port = start_proxy_process("--seed", "1")
    try:
        APIConsumer.host, APIConsumer.port = "127.0.0.1", api_port
        server = toxiproxy.Toxiproxy()
        assert server.running()
        assert json.loads(server.version()) == {"version": "2.12.0"}
        proxy = server.create(upstream=echo_server, name="echo")  # listen defaults to 127.0.0.1:0
        port = int(proxy.listen.rpartition(":")[2])
        assert echo_through(port, b"hello") == b"hello"

        proxy.add_toxic(type="limit_data", name="cut", attributes={"bytes": 3})
        assert set(proxy.toxics()) == {"cut"}
        assert proxy.get_toxic("cut").attributes == {"bytes": 3}
        assert echo_through(port, b"hello") == b"hel"  # exactly 3 bytes, then closed

        proxy.destroy_toxic("cut")
        assert proxy.toxics() == {}
        assert echo_through(port, b"hello") == b"hello"

        with proxy.down():
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", port), timeout=10).close()
        assert echo_through(port, b"again") == b"again"

        with pytest.raises(toxiproxy.api.ProxyExists):
            server.create(upstream=echo_server, name="echo")
        assert set(server.proxies()) == {"echo"}
        assert server.reset()
        assert proxy.destroy()
        assert server.proxies() == {}
    finally:
        assert stop_process(process) == 0


def test_config_file_creates_proxies_at_start_and_sigterm_exits_zero(
    echo_server: str, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        listen_port = probe.getsockname()[1]
    config = tmp_path / "toxiproxy.json"
    config.write_text(json.dumps([{"name": "echo", "listen": f"127.0.0.1:{listen_port}",
                                   "upstream": echo_server}]))
    process, _ = start_proxy_process("--config", os.fspath(config))
    try:
        assert echo_through(listen_port, b"configured") == b"configured"
    finally:
        assert stop_process(process) == 0


def test_register_adds_chaos_proxy_with_a_handler() -> None:
    parser = argparse.ArgumentParser(prog="xorj")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["chaos", "proxy", "--host", "127.0.0.1", "--port", "9999", "--seed", "3"])
    assert (args.host, args.port, args.seed, args.config) == ("127.0.0.1", 9999, 3, None)
    assert callable(args.handler)
    toxiproxy_style = parser.parse_args(["chaos", "proxy", "-host", "0.0.0.0", "-port", "8475", "-seed", "4"])
    assert (toxiproxy_style.host, toxiproxy_style.port, toxiproxy_style.seed) == ("0.0.0.0", 8475, 4)


def test_api_port_in_use_exits_one_with_a_message() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "chaos", "proxy", "--port", str(port)],
                              cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1
    assert "Address already in use" in done.stderr
