"""The fault proxy's engine: real TCP proxies whose connections run a live chain of toxics.

Owns: ``FaultProxy`` (the registry of proxies, toxiproxy's ``ProxyCollection``), ``Proxy`` (one
listener and its connections), and per connection two links (upstream = client -> server,
downstream = server -> client). A link is three tasks: a reader (socket -> inbox), a pump that
runs each chunk through the toxic chain, and a writer (-> socket). The chain can change under a
live connection: adding, updating or removing a toxic interrupts the pump, which carries on with
the new chain and the undelivered rest of the chunk it held (toxiproxy's "don't drop data on the
floor"). No HTTP here: the chaos runner can drive a ``FaultProxy`` in-process and the API in
``chaos.proxy_api`` is a thin layer over it.

toxiproxy semantics kept on purpose: one side's end of stream closes the whole connection (no
half-close); removing a ``timeout`` toxic closes the connections it held (data it swallowed is
gone, so the stream would be corrupt); ``reset_peer`` fires after ``timeout`` ms once data (or
end of stream) reaches it; ``timeout`` re-arms its timer with every chunk it swallows;
``bandwidth`` with rate 0 stalls data; toxicity is rolled per connection when the connection is
made and when a toxic is added or updated.

Failure it contains: a peer that resets, an upstream that refuses or never answers (the dial
has a deadline; the client's connection is closed, the proxy keeps serving), a toxic that closes
a connection. None of these reach the listener or other connections. Waits on the data path have
no deadline by design: the proxy reproduces the peer's silence, it does not add its own.

May import: the standard library, trio, attrs, chaos.toxics.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import math
import os
import random
import socket
import struct
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Final

import attrs
import trio

from chaos.toxics import (
    PROXY_EXISTS,
    PROXY_NOT_FOUND,
    TOXIC_EXISTS,
    TOXIC_NOT_FOUND,
    Direction,
    FaultProxyError,
    ProxySpec,
    ToxicSpec,
)

__all__ = ["DIAL_TIMEOUT", "FaultProxy", "Proxy", "open_fault_proxy"]

logger = logging.getLogger(__name__)

DIAL_TIMEOUT: Final = 10.0  # seconds to reach the upstream before the client is hung up on
READ_SIZE: Final = 32 * 1024  # io.Copy's buffer in toxiproxy
INBOX_CHUNKS: Final = 1024  # toxiproxy's per-stub channel buffer
_DIRECTIONS: Final[tuple[Direction, Direction]] = ("upstream", "downstream")

_Emit = Callable[[bytes, float], Awaitable[None]]


# ---------------------------------------------------------------------------------------------
# Addresses, with Go's error wording (clients match on it).


def _split_host_port(address: str) -> tuple[str, str]:
    if address == "":
        return "", ""
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise FaultProxyError(f"listen tcp: address {address}: missing ']' in address", 500)
        host, rest = address[1:end], address[end + 1:]
        if not rest.startswith(":"):
            raise FaultProxyError(f"listen tcp: address {address}: missing port in address", 500)
        return host, rest[1:]
    if ":" not in address:
        raise FaultProxyError(f"listen tcp: address {address}: missing port in address", 500)
    host, _, port = address.rpartition(":")
    if ":" in host:
        raise FaultProxyError(f"listen tcp: address {address}: too many colons in address", 500)
    return host, port


def _parse_port(address: str, port: str) -> int:
    if port == "":
        return 0
    if not port.isdigit():
        raise FaultProxyError(f"listen tcp: lookup tcp/{port}: unknown port", 500)
    number = int(port)
    if number > 65535:
        raise FaultProxyError(f"listen tcp: address {port}: invalid port", 500)
    return number


def _resolve_host(host: str) -> str:
    if host == "":
        return ""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if host == "localhost":
        return "127.0.0.1"
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        raise FaultProxyError(f"listen tcp: lookup {host}: no such host", 500) from None
    return str(infos[0][4][0])


def _go_addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def resolve_listen(address: str) -> str:
    """``net.ResolveTCPAddr("tcp", address).String()``: how toxiproxy compares listen addresses."""
    host, port = _split_host_port(address)
    number = _parse_port(address, port)
    return _go_addr(_resolve_host(host), number) if host else f":{number}"


def _bind(address: str) -> trio.socket.SocketType:
    """A listening socket for ``address``; errors worded like Go's ``net.Listen``."""
    host, port_text = _split_host_port(address)
    port = _parse_port(address, port_text)
    resolved = _resolve_host(host)
    family = socket.AF_INET6 if resolved == "" or ":" in resolved else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        bind_host = resolved
        if resolved == "":
            bind_host = "::"
            try:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            except OSError:
                pass
        sock.bind((bind_host, port))  # synchronous: the API's answer reports the outcome
        sock.listen(socket.SOMAXCONN)
    except OSError as exc:
        sock.close()
        shown = _go_addr(resolved, port) if resolved else f":{port}"
        reason = os.strerror(exc.errno).lower() if exc.errno else str(exc)
        raise FaultProxyError(f"listen tcp {shown}: bind: {reason}", 500) from None
    return trio.socket.from_stdlib_socket(sock)


def _bound_address(sock: trio.socket.SocketType) -> str:
    host, port = sock.getsockname()[:2]
    if host == "::":
        return f"[::]:{port}"
    return _go_addr(host, port)


def _split_upstream(upstream: str) -> tuple[str, int]:
    host, _, port = upstream.rpartition(":")
    return host.strip("[]") or "localhost", int(port) if port.isdigit() else 0


# ---------------------------------------------------------------------------------------------
# One direction of one connection.


@attrs.define(eq=False)
class _Chunk:
    data: bytes
    at: float  # trio time the reader got it; latency counts from here
    sent: int = 0  # bytes of it already handed to the writer
    dropped: bool = False  # swallowed by timeout/reset_peer: nothing of it is owed downstream

    def rest(self) -> _Chunk | None:
        if self.dropped or self.sent >= len(self.data):
            return None
        return _Chunk(self.data[self.sent:], self.at)


class _EndOfStream:
    """The reader's end of stream travelling through the chain behind the last chunk."""


_EOF: Final = _EndOfStream()


class _CloseLink(Exception):
    """A toxic closes the link (toxiproxy's ``stub.Close()``): flush, then close the writer's socket."""


class _ResetLink(Exception):
    """``reset_peer`` fired: both sockets are closed with SO_LINGER {1, 0} (TCP RST)."""


@attrs.define(eq=False)
class _Stage:
    """A toxic as it runs on one link: whether it applies (toxicity) and its per-link state."""

    spec: ToxicSpec
    applies: bool
    sent_bytes: int = 0  # limit_data: survives updates, like toxiproxy's stub.State
    bandwidth_debt: float = 0.0
    close_at: float = math.inf  # timeout: when the link is closed unless interrupted

    def restart(self, rng: random.Random) -> None:
        """Pipe() starting again (link start, add, update): roll toxicity, arm timers."""
        self.applies = rng.random() < self.spec.toxicity
        self.bandwidth_debt = 0.0
        timeout = self.spec.attr("timeout")
        if self.applies and self.spec.type == "timeout" and timeout > 0:
            self.close_at = trio.current_time() + timeout / 1000
        else:
            self.close_at = math.inf


class _Link:
    def __init__(
        self,
        conn: _Connection,
        direction: Direction,
        source: trio.SocketStream,
        dest: trio.SocketStream,
        specs: Iterable[ToxicSpec],
    ) -> None:
        self.conn = conn
        self.direction = direction
        self.source = source
        self.dest = dest
        self.stages: list[_Stage] = []
        for spec in specs:
            stage = _Stage(spec, applies=False)
            stage.restart(conn.rng)
            self.stages.append(stage)
        self._scope: trio.CancelScope | None = None
        self._interrupted = False
        self._close_requested = False

    # -- chain changes (called from API handlers, same trio thread) --

    def _interrupt(self) -> None:
        self._interrupted = True
        if self._scope is not None:
            self._scope.cancel()

    def add(self, spec: ToxicSpec) -> None:
        stage = _Stage(spec, applies=False)
        stage.restart(self.conn.rng)
        self.stages.append(stage)
        self._interrupt()

    def update(self, spec: ToxicSpec) -> None:
        for stage in self.stages:
            if stage.spec.name == spec.name:
                stage.spec = spec
                stage.restart(self.conn.rng)
        self._interrupt()

    def remove(self, spec: ToxicSpec) -> None:
        self.stages = [stage for stage in self.stages if stage.spec.name != spec.name]
        if spec.type == "timeout":
            # toxiproxy's TimeoutToxic.Cleanup: the data it swallowed is gone, so the stream
            # would be corrupt; the connection is closed instead of resumed.
            self._close_requested = True
        self._interrupt()

    # -- the three tasks --

    async def read(self, inbox: trio.MemorySendChannel[_Chunk]) -> None:
        async with inbox:
            while True:
                try:
                    data = await self.source.receive_some(READ_SIZE)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
                if not data:
                    return
                await inbox.send(_Chunk(data, trio.current_time()))

    async def write(self, outbox: trio.MemoryReceiveChannel[bytes]) -> None:
        try:
            async with outbox:
                async for data in outbox:
                    await self.dest.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.conn.close_sockets()
        finally:
            self.dest.socket.close()

    def _close_deadline(self) -> float:
        return min((stage.close_at for stage in self.stages if stage.applies), default=math.inf)

    async def pump(
        self, inbox: trio.MemoryReceiveChannel[_Chunk], outbox: trio.MemorySendChannel[bytes]
    ) -> None:
        pending: _Chunk | _EndOfStream | None = None
        try:
            async with outbox:
                while not self._close_requested:
                    self._interrupted = False
                    with trio.CancelScope(deadline=self._close_deadline()) as scope:
                        self._scope = scope
                        if pending is None:
                            try:
                                pending = await inbox.receive()
                            except trio.EndOfChannel:
                                pending = _EOF
                        stages = [stage for stage in self.stages if stage.applies]
                        if isinstance(pending, _EndOfStream):
                            await self._end_of_stream(stages)
                            return
                        await self._through(pending, pending, stages, 0, outbox)
                        pending = None
                    self._scope = None
                    if scope.cancelled_caught and not self._interrupted:
                        return  # a timeout toxic's timer fired: close the link
                    if isinstance(pending, _Chunk):
                        pending = pending.rest()
        except _CloseLink:
            return
        except _ResetLink:
            self.conn.reset()

    async def _end_of_stream(self, stages: list[_Stage]) -> None:
        for stage in stages:
            kind = stage.spec.type
            if kind == "slow_close":
                await trio.sleep(stage.spec.attr("delay") / 1000)
            elif kind == "reset_peer":
                await trio.sleep(stage.spec.attr("timeout") / 1000)
                raise _ResetLink
            elif kind == "timeout":
                return

    async def _through(
        self,
        chunk: _Chunk,
        root: _Chunk,
        stages: list[_Stage],
        index: int,
        outbox: trio.MemorySendChannel[bytes],
    ) -> None:
        """Deliver ``chunk`` (a part of ``root``) through ``stages[index:]`` to the writer."""
        if not chunk.data:
            return
        if index == len(stages):
            await outbox.send(chunk.data)
            root.sent += len(chunk.data)
            return
        stage = stages[index]
        spec = stage.spec

        async def emit(data: bytes, at: float) -> None:
            await self._through(_Chunk(data, at), root, stages, index + 1, outbox)

        kind = spec.type
        if kind == "latency":
            delay = spec.attr("latency") / 1000
            jitter = spec.attr("jitter")
            if jitter > 0:
                delay += (self.conn.rng.randrange(2 * jitter) - jitter) / 1000
            wait = chunk.at + delay - trio.current_time()
            if wait > 0:
                await trio.sleep(wait)
            await emit(chunk.data, chunk.at + wait)
        elif kind == "bandwidth":
            await self._bandwidth(stage, chunk, emit)
        elif kind == "slicer":
            delay = spec.attr("delay") / 1_000_000
            bounds = _slice_bounds(0, len(chunk.data), spec.attr("average_size"),
                                   spec.attr("size_variation"), self.conn.rng)
            for start, end in bounds:
                await emit(chunk.data[start:end], chunk.at)
                await trio.sleep(delay)
        elif kind == "timeout":
            root.dropped = True
            timeout = spec.attr("timeout")
            if timeout > 0 and self._scope is not None:
                stage.close_at = trio.current_time() + timeout / 1000
                self._scope.deadline = self._close_deadline()
        elif kind == "reset_peer":
            root.dropped = True
            await trio.sleep(spec.attr("timeout") / 1000)
            raise _ResetLink
        elif kind == "limit_data":
            limit = spec.attr("bytes")
            remaining = max(limit - stage.sent_bytes, 0)
            data = chunk.data[:remaining]
            if data:
                stage.sent_bytes += len(data)
                await emit(data, chunk.at)
            if limit - stage.sent_bytes <= 0:
                root.dropped = True
                raise _CloseLink
        else:  # noop, slow_close (acts only on close)
            await emit(chunk.data, chunk.at)

    async def _bandwidth(self, stage: _Stage, chunk: _Chunk, emit: _Emit) -> None:
        rate = stage.spec.attr("rate")  # KB/s, i.e. bytes per millisecond
        data = chunk.data
        if rate <= 0:
            await trio.sleep_forever()  # toxiproxy stalls the stream at rate 0
        stage.bandwidth_debt += len(data) / rate / 1000
        step = rate * 100  # bytes per 100 ms
        while len(data) > step:
            await trio.sleep(0.1)
            await emit(data[:step], chunk.at)
            data = data[step:]
            stage.bandwidth_debt -= 0.1
        started = trio.current_time()
        if stage.bandwidth_debt > 0:
            await trio.sleep(stage.bandwidth_debt)
        stage.bandwidth_debt -= trio.current_time() - started
        await emit(data, chunk.at)


def _slice_bounds(
    start: int, end: int, average: int, variation: int, rng: random.Random
) -> list[tuple[int, int]]:
    """toxiproxy's slicer: halve around the middle (+- variation) until pieces are near average."""
    if (end - start) - average <= variation or end - start <= 1:
        return [(start, end)]
    jiggle = rng.randrange(variation * 2) - variation if variation > 0 else 0
    mid = min(max(start + (end - start) // 2 + jiggle, start + 1), end - 1)
    left = _slice_bounds(start, mid, average, variation, rng)
    return left + _slice_bounds(mid, end, average, variation, rng)


# ---------------------------------------------------------------------------------------------
# Connections and proxies.


class _Connection:
    def __init__(self, proxy: Proxy, client: trio.SocketStream, upstream: trio.SocketStream) -> None:
        self.proxy = proxy
        self.rng = proxy.registry.rng
        self.client = client
        self.upstream = upstream
        self.links: dict[Direction, _Link] = {
            "upstream": _Link(self, "upstream", client, upstream, proxy.toxics["upstream"]),
            "downstream": _Link(self, "downstream", upstream, client, proxy.toxics["downstream"]),
        }

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            for link in self.links.values():
                inbox_send, inbox_recv = trio.open_memory_channel[_Chunk](INBOX_CHUNKS)
                out_send, out_recv = trio.open_memory_channel[bytes](16)
                nursery.start_soon(link.read, inbox_send)
                nursery.start_soon(link.pump, inbox_recv, out_send)
                nursery.start_soon(link.write, out_recv)

    def close_sockets(self) -> None:
        """Hang up on both peers now (a closed socket wakes every task blocked on it)."""
        self.client.socket.close()
        self.upstream.socket.close()

    def reset(self) -> None:
        for stream in (self.client, self.upstream):
            try:
                stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass  # already closed by the other link: nothing left to reset
        self.close_sockets()


class Proxy:
    """One proxy: its configuration, its toxics per stream, its listener and live connections.

    Mutated only through ``FaultProxy``'s methods, from the trio thread that runs it.
    """

    def __init__(self, registry: FaultProxy, spec: ProxySpec) -> None:
        self.registry = registry
        self.name = spec.name
        self.listen = spec.listen
        self.upstream = spec.upstream
        self.enabled = False
        self.toxics: dict[Direction, list[ToxicSpec]] = {"upstream": [], "downstream": []}
        self._listener: trio.socket.SocketType | None = None
        self._scope: trio.CancelScope | None = None
        self.connections: set[_Connection] = set()

    def as_json(self) -> dict[str, object]:
        """toxiproxy's ``proxyWithToxics``: name, listen, upstream, enabled, Logger, toxics."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "Logger": {},
            "toxics": [toxic.as_json() for toxic in self.all_toxics()],
        }

    def all_toxics(self) -> Iterator[ToxicSpec]:
        """Upstream toxics first, then downstream, each in creation order (toxiproxy's order)."""
        for direction in _DIRECTIONS:
            yield from self.toxics[direction]

    def find_toxic(self, name: str) -> ToxicSpec | None:
        return next((toxic for toxic in self.all_toxics() if toxic.name == name), None)

    @property
    def port(self) -> int:
        """The bound port (0 while disabled)."""
        if self._listener is None:
            return 0
        port: int = self._listener.getsockname()[1]
        return port

    def start(self) -> None:
        if self.enabled:
            return
        sock = _bind(self.listen)
        self.listen = _bound_address(sock)
        self._listener = sock
        self.enabled = True
        self._scope = trio.CancelScope()
        self.registry.nursery.start_soon(self._serve, sock, self._scope)

    def stop(self) -> None:
        """Stop listening and hang up on every connection, now (not at the next checkpoint)."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._scope is not None:
            self._scope.cancel()
            self._scope = None
        for conn in list(self.connections):
            conn.close_sockets()
        self.enabled = False

    async def _serve(self, sock: trio.socket.SocketType, scope: trio.CancelScope) -> None:
        listener = trio.SocketListener(sock)
        with scope:
            async with trio.open_nursery() as nursery:
                while True:
                    try:
                        client = await listener.accept()
                    except trio.ClosedResourceError:
                        return
                    except OSError as exc:
                        if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                            logger.warning("accept failed; retrying", extra={"proxy": self.name})
                            await trio.sleep(0.05)
                            continue
                        raise
                    nursery.start_soon(self._handle, client)

    async def _handle(self, client: trio.SocketStream) -> None:
        host, port = _split_upstream(self.upstream)
        upstream: trio.SocketStream | None = None
        with trio.move_on_after(DIAL_TIMEOUT):
            try:
                upstream = await trio.open_tcp_stream(host, port)
            except OSError as exc:
                logger.info("upstream unreachable", extra={"proxy": self.name, "error": str(exc)})
        if upstream is None:
            client.socket.close()
            return
        conn = _Connection(self, client, upstream)
        self.connections.add(conn)
        try:
            await conn.run()
        finally:
            self.connections.discard(conn)
            conn.close_sockets()

    # toxic chain changes, applied to the configuration and to every live connection

    def add_toxic(self, toxic: ToxicSpec) -> None:
        if self.find_toxic(toxic.name) is not None:
            raise FaultProxyError(*TOXIC_EXISTS)
        self.toxics[toxic.direction].append(toxic)
        for conn in self.connections:
            conn.links[toxic.direction].add(toxic)

    def update_toxic(self, toxic: ToxicSpec) -> None:
        chain = self.toxics[toxic.direction]
        for i, existing in enumerate(chain):
            if existing.name == toxic.name:
                chain[i] = toxic
        for conn in self.connections:
            conn.links[toxic.direction].update(toxic)

    def remove_toxic(self, name: str) -> None:
        toxic = self.find_toxic(name)
        if toxic is None:
            raise FaultProxyError(*TOXIC_NOT_FOUND)
        self.toxics[toxic.direction].remove(toxic)
        for conn in self.connections:
            conn.links[toxic.direction].remove(toxic)

    def reset_toxics(self) -> None:
        for toxic in list(self.all_toxics()):
            self.remove_toxic(toxic.name)


class FaultProxy:
    """The registry of proxies (toxiproxy's ``ProxyCollection``). Its proxies' listeners and
    connections run in ``nursery``; every method is synchronous, so an API answer reflects the
    new state (a disabled proxy already refuses connections when the 200 is sent)."""

    def __init__(self, nursery: trio.Nursery, seed: int | None = None) -> None:
        self.nursery = nursery
        self.rng = random.Random(seed)
        self.proxies: dict[str, Proxy] = {}

    def get(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise FaultProxyError(*PROXY_NOT_FOUND)
        return proxy

    def create(self, spec: ProxySpec) -> Proxy:
        if spec.name in self.proxies:
            raise FaultProxyError(*PROXY_EXISTS)
        proxy = Proxy(self, spec)
        if spec.enabled:
            proxy.start()
        self.proxies[spec.name] = proxy
        return proxy

    def update(self, name: str, listen: str, upstream: str, enabled: bool) -> Proxy:
        """toxiproxy's ``Proxy.Update``: restart when listen/upstream differ, then (en|dis)able."""
        proxy = self.get(name)
        if resolve_listen(listen) != proxy.listen or upstream != proxy.upstream:
            proxy.stop()
            proxy.listen = listen
            proxy.upstream = upstream
        if enabled != proxy.enabled:
            if enabled:
                proxy.start()
            else:
                proxy.stop()
        return proxy

    def delete(self, name: str) -> None:
        proxy = self.get(name)
        proxy.stop()
        del self.proxies[name]

    def add_or_replace(self, spec: ProxySpec) -> Proxy:
        """``/populate``'s rule: an existing proxy with the same listen and upstream is kept."""
        existing = self.proxies.get(spec.name)
        if existing is not None:
            try:
                same_listen = resolve_listen(spec.listen) == existing.listen
            except FaultProxyError:
                same_listen = False
            if same_listen and spec.upstream == existing.upstream:
                return existing
            existing.stop()
            del self.proxies[spec.name]
        return self.create(spec)

    def reset(self) -> None:
        """``POST /reset``: every proxy enabled again, every toxic removed; proxies are kept."""
        for proxy in list(self.proxies.values()):
            proxy.start()
            proxy.reset_toxics()

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()


class _OpenFaultProxy:
    def __init__(self, seed: int | None) -> None:
        self._seed = seed
        self._nursery_cm = trio.open_nursery()
        self._registry: FaultProxy | None = None

    async def __aenter__(self) -> FaultProxy:
        nursery = await self._nursery_cm.__aenter__()
        self._registry = FaultProxy(nursery, self._seed)
        return self._registry

    async def __aexit__(self, *exc_info: object) -> bool | None:
        assert self._registry is not None
        self._registry.close()
        self._registry.nursery.cancel_scope.cancel()
        return await self._nursery_cm.__aexit__(*exc_info)  # type: ignore[arg-type]


def open_fault_proxy(seed: int | None = None) -> _OpenFaultProxy:
    """``async with open_fault_proxy() as fp:``; leaving the block closes every proxy."""
    return _OpenFaultProxy(seed)
