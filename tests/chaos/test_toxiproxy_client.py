"""Our typed toxiproxy client against the fault proxy's API: every call, typed errors, and the
``toxic()`` context manager that takes its fault out again however the block ends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from chaos.toxiproxy_client import ProxyInfo, ToxiproxyClient, ToxiproxyError, open_toxiproxy
from tests.chaos.conftest import Upstream, connect, receive_exactly


@pytest.fixture
async def client(api_url: str) -> AsyncIterator[ToxiproxyClient]:
    async with ToxiproxyClient(api_url, timeout=5.0) as toxiproxy:
        yield toxiproxy


async def test_version_and_proxy_calls(client: ToxiproxyClient, upstream: Upstream) -> None:
    assert await client.version() == "2.12.0"
    proxy = await client.create_proxy("db", upstream.address)
    assert proxy.enabled and proxy.port > 0 and proxy.upstream == upstream.address
    assert await client.proxies() == {"db": proxy}
    assert await client.get_proxy("db") == proxy
    assert (await client.disable("db")).enabled is False
    assert (await client.enable("db")) == proxy
    await client.delete_proxy("db")
    assert await client.proxies() == {}


async def test_errors_are_typed_with_status_and_message(client: ToxiproxyClient, upstream: Upstream) -> None:
    with pytest.raises(ToxiproxyError) as caught:
        await client.get_proxy("missing")
    assert (caught.value.status, caught.value.message) == (404, "proxy not found")
    await client.create_proxy("db", upstream.address)
    with pytest.raises(ToxiproxyError) as caught:
        await client.create_proxy("db", upstream.address)
    assert (caught.value.status, caught.value.message) == (409, "proxy already exists")
    with pytest.raises(ToxiproxyError) as caught:
        await client.add_toxic("db", "meteor")
    assert (caught.value.status, caught.value.message) == (400, "invalid toxic type")


async def test_unreachable_server_is_a_typed_error() -> None:
    with trio.socket.socket() as sock:  # a port nobody listens on
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with ToxiproxyClient(f"http://127.0.0.1:{port}", timeout=2.0) as toxiproxy:
        with pytest.raises(ToxiproxyError) as caught:
            await toxiproxy.version()
    assert caught.value.status == 0


async def test_toxic_calls_and_partial_update(client: ToxiproxyClient, upstream: Upstream) -> None:
    await client.create_proxy("db", upstream.address)
    toxic = await client.add_toxic("db", "latency", stream="upstream", attributes={"latency": 100})
    assert (toxic.name, toxic.stream, toxic.toxicity) == ("latency_upstream", "upstream", 1.0)
    updated = await client.update_toxic("db", toxic.name, attributes={"jitter": 5})
    assert updated.attributes == {"latency": 100, "jitter": 5}
    assert await client.toxics("db") == [updated]
    assert await client.get_toxic("db", toxic.name) == updated
    await client.remove_toxic("db", toxic.name)
    assert await client.toxics("db") == []


async def test_toxic_context_manager_removes_the_toxic_even_when_the_block_fails(
    client: ToxiproxyClient, upstream: Upstream
) -> None:
    proxy: ProxyInfo = await client.create_proxy("db", upstream.address)
    with pytest.raises(RuntimeError):
        async with client.toxic("db", "timeout", stream="upstream") as toxic:
            assert [t.name for t in await client.toxics("db")] == [toxic.name]
            raise RuntimeError("scenario failed")
    assert await client.toxics("db") == []
    conn = await connect(proxy.port)
    server = await upstream.next_connection()
    await conn.send_all(b"clean")
    assert await receive_exactly(server, 5) == b"clean"


async def test_toxic_context_manager_tolerates_a_reset_inside_the_block(
    client: ToxiproxyClient, upstream: Upstream
) -> None:
    await client.create_proxy("db", upstream.address)
    async with client.toxic("db", "latency"):
        await client.reset()
    assert await client.toxics("db") == []


async def test_populate_and_reset(client: ToxiproxyClient, upstream: Upstream) -> None:
    created = await client.populate([{"name": "a", "listen": "127.0.0.1:0", "upstream": upstream.address}])
    assert [p.name for p in created] == ["a"]
    await client.add_toxic("a", "noop")
    await client.disable("a")
    await client.reset()
    assert (await client.get_proxy("a")).enabled and await client.toxics("a") == []


async def test_open_toxiproxy_starts_our_fault_proxy_when_no_url_is_set(
    monkeypatch: pytest.MonkeyPatch, upstream: Upstream
) -> None:
    monkeypatch.delenv("TOXIPROXY_URL", raising=False)
    async with open_toxiproxy(seed=1) as toxiproxy:
        assert await toxiproxy.version() == "2.12.0"
        proxy = await toxiproxy.create_proxy("db", upstream.address)
        async with toxiproxy.toxic("db", "limit_data", attributes={"bytes": 2}):
            conn = await connect(proxy.port)
            server = await upstream.next_connection()
            await server.send_all(b"abcdef")
            assert await receive_exactly(conn, 6) == b"ab"


async def test_open_toxiproxy_uses_toxiproxy_url_when_set(
    monkeypatch: pytest.MonkeyPatch, api_url: str
) -> None:
    monkeypatch.setenv("TOXIPROXY_URL", api_url)
    async with open_toxiproxy() as toxiproxy:
        assert toxiproxy.url == api_url
        assert await toxiproxy.proxies() == {}
