"""The npm client `toxiproxy-node-client` (4.1.0) driving our fault proxy unchanged.

The package comes from the npm registry: the test installs it once into a cache folder
(``~/.cache/xorj/toxiproxy-node``), or uses the `node_modules` folder named by
``XORJ_TOXIPROXY_NODE_MODULES``. Skipped only on a machine without `node` and `npm`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.chaos.conftest import start_proxy_process, stop_process

CACHE = Path.home() / ".cache" / "xorj" / "toxiproxy-node"

SCRIPT = r"""
const net = require("net");
const { Toxiproxy } = require("toxiproxy-node-client");
const [api, upstream] = process.argv.slice(1);

function echo(port, payload) {
  return new Promise((resolve, reject) => {
    let got = "";
    const sock = net.connect(port, "127.0.0.1", () => sock.write(payload));
    sock.on("data", (d) => { got += d; if (got.length >= payload.length) sock.end(); });
    sock.on("close", () => resolve(got));
    sock.on("error", reject);
  });
}

(async () => {
  const toxiproxy = new Toxiproxy(api);
  const out = { version: await toxiproxy.getVersion() };
  const proxy = await toxiproxy.createProxy({ name: "echo", listen: "127.0.0.1:0", upstream });
  const port = Number(proxy.listen.split(":").pop());
  const toxic = await proxy.addToxic({ type: "limit_data", name: "cut", stream: "downstream",
                                       toxicity: 1, attributes: { bytes: 3 } });
  out.toxic = (await proxy.getToxic("cut")).attributes;
  out.cut = await echo(port, "hello");
  await toxic.remove();
  out.whole = await echo(port, "hello");
  out.names = Object.keys(await toxiproxy.getAll());
  await toxiproxy.reset();
  await proxy.remove();
  console.log(JSON.stringify(out));
})().catch((e) => { console.error(e); process.exit(1); });
"""


@pytest.fixture(scope="session")
def node_modules() -> str:
    given = os.environ.get("XORJ_TOXIPROXY_NODE_MODULES")
    if given:
        return given
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed on this machine")
    if not (CACHE / "node_modules" / "toxiproxy-node-client").is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CACHE),
             "toxiproxy-node-client@4.1.0"],
            capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, f"npm install failed: {done.stderr[-2000:]}"
    return str(CACHE / "node_modules")


def test_toxiproxy_node_client_drives_our_proxy_unchanged(echo_server: str, node_modules: str) -> None:
    process, api_port = start_proxy_process()
    try:
        done = subprocess.run(
            ["node", "-e", SCRIPT, f"http://127.0.0.1:{api_port}", echo_server],
            capture_output=True, text=True, timeout=30, env={**os.environ, "NODE_PATH": node_modules},
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert json.loads(result["version"]) == {"version": "2.12.0"}
        assert result["toxic"] == {"bytes": 3}
        assert (result["cut"], result["whole"]) == ("hel", "hello")
        assert result["names"] == ["echo"]
    finally:
        assert stop_process(process) == 0
