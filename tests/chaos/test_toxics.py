"""Each toxic's effect on a real TCP connection through the fault proxy to a real upstream.

The proxy runs in-process under the test's trio loop with a mock clock, so "not before 500 ms"
is asserted in virtual time: exact and free of wall-clock flakiness.
"""

from __future__ import annotations

import errno

import pytest
import trio
import trio.testing

from chaos.fault_proxy import FaultProxy, Proxy, open_fault_proxy
from chaos.toxics import ProxySpec, ToxicSpec
from tests.chaos.conftest import Upstream, connect, receive_exactly, receive_until_eof


def _proxy(fault_proxy: FaultProxy, upstream: Upstream, name: str = "svc") -> Proxy:
    return fault_proxy.create(ProxySpec(name=name, upstream=upstream.address, listen="127.0.0.1:0"))


async def _pair(proxy: Proxy, upstream: Upstream) -> tuple[trio.SocketStream, trio.SocketStream]:
    client = await connect(proxy.port)
    server = await upstream.next_connection()
    return client, server


async def test_without_toxics_bytes_pass_both_ways_intact(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream
) -> None:
    client, server = await _pair(_proxy(fault_proxy, upstream), upstream)
    payload = bytes(range(256)) * 64
    await client.send_all(payload)
    assert await receive_exactly(server, len(payload)) == payload
    await server.send_all(payload[::-1])
    assert await receive_exactly(client, len(payload)) == payload[::-1]


async def test_latency_delays_downstream_data_and_keeps_it_intact(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy = _proxy(fault_proxy, upstream)
    proxy.add_toxic(ToxicSpec.build("latency", attributes={"latency": 500}))
    client, server = await _pair(proxy, upstream)
    start = trio.current_time()
    await client.send_all(b"ping")
    assert await receive_exactly(server, 4) == b"ping"
    assert trio.current_time() - start < 0.5  # upstream is not delayed
    sent_at = trio.current_time()
    await server.send_all(b"pong" * 1000)
    assert await receive_exactly(client, 4000) == b"pong" * 1000
    assert trio.current_time() - sent_at >= 0.5


async def test_latency_upstream_with_jitter_stays_within_its_bounds(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy = _proxy(fault_proxy, upstream)
    proxy.add_toxic(ToxicSpec.build("latency", stream="upstream", attributes={"latency": 500, "jitter": 100}))
    client, server = await _pair(proxy, upstream)
    for _ in range(5):
        start = trio.current_time()
        await client.send_all(b"x" * 10)
        assert await receive_exactly(server, 10) == b"x" * 10
        assert 0.4 <= trio.current_time() - start <= 0.6 + 0.05


async def test_bandwidth_limits_throughput_to_the_rate(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy = _proxy(fault_proxy, upstream)
    proxy.add_toxic(ToxicSpec.build("bandwidth", attributes={"rate": 100}))  # 100 KB/s
    client, server = await _pair(proxy, upstream)
    payload = bytes(i % 251 for i in range(200_000))
    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.send_all, payload)
        received = await receive_exactly(client, len(payload))
    assert received == payload
    assert trio.current_time() - start >= 1.9  # 200 KB at 100 KB/s: about 2 s


async def test_slow_close_delays_the_close_not_the_data(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy = _proxy(fault_proxy, upstream)
    proxy.add_toxic(ToxicSpec.build("slow_close", attributes={"delay": 1000}))
    client, server = await _pair(proxy, upstream)
    start = trio.current_time()
    await server.send_all(b"bye")
    assert await receive_exactly(client, 3) == b"bye"
    assert trio.current_time() - start < 1.0
    await server.aclose()
    assert await receive_until_eof(client) == (b"", 0)
    assert trio.current_time() - start >= 1.0


async def test_timeout_zero_stops_data_until_removed_which_closes_the_held_connection(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy = _proxy(fault_proxy, upstream)
    proxy.add_toxic(ToxicSpec.build("timeout", stream="upstream", attributes={"timeout": 0}))
    client, server = await _pair(proxy, upstream)
    await client.send_all(b"lost")
    with trio.move_on_after(60):  # a virtual minute: nothing gets through, nothing closes
        await server.receive_some(10)
        pytest.fail("data passed a timeout toxic")
    proxy.remove_toxic("timeout_upstream")
    # toxiproxy closes the connections a timeout toxic held (the bytes it swallowed are gone) ...
    assert await receive_until_eof(client) == (b"", 0)
    # ... and new connections flow again.
    client2, server2 = await _pair(proxy, upstream)
    await client2.send_all(b"flows")
    assert await receive_exactly(server2, 5) == b"flows"


async def test_timeout_closes_the_connection_after_its_timeout(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy = _proxy(fault_proxy, upstream)
    proxy.add_toxic(ToxicSpec.build("timeout", stream="upstream", attributes={"timeout": 1000}))
    client, server = await _pair(proxy, upstream)
    start = trio.current_time()
    await client.send_all(b"GET / HTTP/1.1\r\n\r\n")
    assert await receive_until_eof(client) == (b"", 0)  # the "empty reply" toxiproxy gives
    assert 1.0 <= trio.current_time() - start < 1.1
    assert await receive_until_eof(server) == (b"", 0)  # the request never reached the server


async def test_reset_peer_resets_the_client_connection_after_its_timeout(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy = _proxy(fault_proxy, upstream)
    proxy.add_toxic(ToxicSpec.build("reset_peer", stream="upstream", attributes={"timeout": 300}))
    client, _server = await _pair(proxy, upstream)
    start = trio.current_time()
    await client.send_all(b"hello")
    with pytest.raises(trio.BrokenResourceError) as caught:
        await receive_until_eof(client)
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    assert caught.value.__cause__.errno == errno.ECONNRESET
    assert trio.current_time() - start >= 0.3


async def test_slicer_delivers_the_same_bytes_in_many_small_reads(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy = _proxy(fault_proxy, upstream)
    proxy.add_toxic(ToxicSpec.build(
        "slicer", attributes={"average_size": 10, "size_variation": 5, "delay": 1000}))
    client, server = await _pair(proxy, upstream)
    payload = bytes(range(200)) * 2
    await server.send_all(payload)
    await server.aclose()
    data, reads = await receive_until_eof(client)
    assert data == payload
    assert reads >= len(payload) // 20  # pieces of 5..15 bytes, each read on its own


async def test_limit_data_passes_exactly_n_bytes_then_closes(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy = _proxy(fault_proxy, upstream)
    proxy.add_toxic(ToxicSpec.build("limit_data", attributes={"bytes": 1000}))
    client, server = await _pair(proxy, upstream)
    payload = bytes(i % 256 for i in range(5000))
    for offset in range(0, 5000, 700):  # several chunks: the limit spans them
        await server.send_all(payload[offset:offset + 700])
    data, _ = await receive_until_eof(client)
    assert data == payload[:1000]


async def test_noop_passes_data_through(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy = _proxy(fault_proxy, upstream)
    proxy.add_toxic(ToxicSpec.build("noop", stream="upstream"))
    client, server = await _pair(proxy, upstream)
    await client.send_all(b"same")
    assert await receive_exactly(server, 4) == b"same"


@pytest.mark.parametrize(("toxicity", "delayed"), [(0.0, False), (1.0, True)])
async def test_toxicity_decides_whether_a_connection_gets_the_toxic(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream,
    toxicity: float, delayed: bool,
) -> None:
    proxy = _proxy(fault_proxy, upstream)
    proxy.add_toxic(ToxicSpec.build("latency", toxicity=toxicity, attributes={"latency": 1000}))
    for _ in range(3):
        client, server = await _pair(proxy, upstream)
        start = trio.current_time()
        await server.send_all(b"data")
        assert await receive_exactly(client, 4) == b"data"
        assert (trio.current_time() - start >= 1.0) is delayed


async def test_upstream_toxic_leaves_downstream_alone(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy = _proxy(fault_proxy, upstream)
    proxy.add_toxic(ToxicSpec.build("latency", stream="upstream", attributes={"latency": 2000}))
    client, server = await _pair(proxy, upstream)
    start = trio.current_time()
    await server.send_all(b"down")
    assert await receive_exactly(client, 4) == b"down"
    assert trio.current_time() - start < 2.0
    await client.send_all(b"up")
    assert await receive_exactly(server, 2) == b"up"
    assert trio.current_time() - start >= 2.0


async def test_toxics_added_and_removed_apply_to_a_live_connection(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy = _proxy(fault_proxy, upstream)
    client, server = await _pair(proxy, upstream)
    proxy.add_toxic(ToxicSpec.build("latency", name="slow", attributes={"latency": 3000}))
    start = trio.current_time()
    await server.send_all(b"a")
    assert await receive_exactly(client, 1) == b"a"
    assert trio.current_time() - start >= 3.0
    await server.send_all(b"b")
    await trio.sleep(0.5)
    proxy.remove_toxic("slow")  # the held byte is released at once, not dropped
    start = trio.current_time()
    assert await receive_exactly(client, 1) == b"b"
    assert trio.current_time() - start < 0.1


async def test_disabled_proxy_refuses_and_closes_connections_and_reenabling_serves_again(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy = _proxy(fault_proxy, upstream)
    port = proxy.port
    client, _server = await _pair(proxy, upstream)
    fault_proxy.update("svc", listen=proxy.listen, upstream=proxy.upstream, enabled=False)
    assert await receive_until_eof(client) == (b"", 0)
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)
    fault_proxy.update("svc", listen=proxy.listen, upstream=proxy.upstream, enabled=True)
    assert proxy.port == port
    client2, server2 = await _pair(proxy, upstream)
    await client2.send_all(b"back")
    assert await receive_exactly(server2, 4) == b"back"


async def test_reset_removes_toxics_and_reenables_proxies(
    slow_clock: trio.testing.MockClock, fault_proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy = _proxy(fault_proxy, upstream)
    proxy.add_toxic(ToxicSpec.build("latency", attributes={"latency": 5000}))
    fault_proxy.update("svc", listen=proxy.listen, upstream=proxy.upstream, enabled=False)
    fault_proxy.reset()
    assert proxy.enabled and list(proxy.all_toxics()) == []
    client, server = await _pair(proxy, upstream)
    start = trio.current_time()
    await server.send_all(b"fast")
    assert await receive_exactly(client, 4) == b"fast"
    assert trio.current_time() - start < 1.0


async def test_the_seed_makes_toxicity_decisions_repeatable(
    slow_clock: trio.testing.MockClock, upstream: Upstream
) -> None:
    async def pattern(seed: int) -> list[bool]:
        async with open_fault_proxy(seed=seed) as registry:
            proxy = _proxy(registry, upstream, name=f"seeded{seed}")
            proxy.add_toxic(ToxicSpec.build("latency", toxicity=0.5, attributes={"latency": 1000}))
            delayed = []
            for _ in range(12):
                client, server = await _pair(proxy, upstream)
                start = trio.current_time()
                await server.send_all(b"?")
                assert await receive_exactly(client, 1) == b"?"
                delayed.append(trio.current_time() - start >= 1.0)
            return delayed

    first = await pattern(42)
    assert first == await pattern(42)
    assert any(first) and not all(first)  # toxicity 0.5: some connections get it, some do not
