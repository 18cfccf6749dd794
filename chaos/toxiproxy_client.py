"""A typed async client for toxiproxy's HTTP API: the real ``toxiproxy-server`` or our fault proxy.

Owns: ``ToxiproxyClient`` (proxies: create/get/list/update/enable/disable/delete; toxics:
add/get/list/update/remove; reset, populate, version), the frozen records it returns
(``ProxyInfo``, ``ToxicInfo``), ``ToxiproxyError(status, message)``, and the ``toxic()`` context
manager that removes the toxic it added when the block exits, also on error or cancellation, so
a chaos scenario cannot leave a fault behind. Fault injection helpers live here, next to the
API they drive.

Failure it contains: a toxiproxy server that refuses (typed ``ToxiproxyError`` with the server's
status and message), or does not answer in time (every request runs under ``timeout`` seconds
and raises ``ToxiproxyError(0, ...)``; a transport error likewise).

Only endpoints and fields that toxiproxy 2.12 itself serves are used, so the client works
against both servers. Updates use PATCH (toxiproxy deprecates POST for updates).

``open_toxiproxy()`` picks the server the harness uses: ``$TOXIPROXY_URL`` when set, else our
fault proxy started in-process.

May import: the standard library, attrs, httpx, trio; chaos.fault_proxy and chaos.proxy_api
only inside ``open_toxiproxy`` (a client of a remote server does not load the server).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Final, Literal

import attrs
import httpx
import trio

__all__ = [
    "DEFAULT_URL", "ProxyInfo", "Stream", "ToxicInfo", "ToxiproxyClient", "ToxiproxyError", "open_toxiproxy",
]

DEFAULT_URL: Final = "http://127.0.0.1:8474"
Stream = Literal["upstream", "downstream"]


class ToxiproxyError(Exception):
    """The server refused (``status`` is its HTTP status) or could not be reached (status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@attrs.frozen
class ToxicInfo:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: Mapping[str, int]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ToxicInfo:
        return cls(name=str(data["name"]), type=str(data["type"]), stream=str(data["stream"]),
                   toxicity=float(data["toxicity"]), attributes=dict(data.get("attributes") or {}))


@attrs.frozen
class ProxyInfo:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[ToxicInfo, ...] = ()

    @property
    def port(self) -> int:
        """The port the proxy listens on (as the server reports it)."""
        return int(self.listen.rpartition(":")[2])

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProxyInfo:
        return cls(name=str(data["name"]), listen=str(data["listen"]), upstream=str(data["upstream"]),
                   enabled=bool(data["enabled"]),
                   toxics=tuple(ToxicInfo.from_json(t) for t in data.get("toxics") or ()))


class ToxiproxyClient:
    """``async with ToxiproxyClient(url) as client:``; or pass your own ``httpx.AsyncClient``."""

    def __init__(self, url: str = DEFAULT_URL, *, timeout: float = 10.0,
                 http: httpx.AsyncClient | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = http if http is not None else httpx.AsyncClient(
            headers={"User-Agent": "xorj-chaos"}, timeout=timeout)
        self._owns_http = http is None

    async def __aenter__(self) -> ToxiproxyClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    async def _request(self, method: str, path: str, body: object = None) -> Any:
        content = None if body is None else json.dumps(body).encode()
        try:
            with trio.fail_after(self.timeout):
                response = await self._http.request(method, self.url + path, content=content)
        except trio.TooSlowError:
            raise ToxiproxyError(0, f"{method} {path}: no answer within {self.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise ToxiproxyError(0, f"{method} {path}: {exc}") from None
        if response.status_code >= 400:
            message = response.text.strip()
            try:
                message = str(json.loads(message)["error"])
            except (ValueError, KeyError, TypeError):
                pass
            raise ToxiproxyError(response.status_code, message)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # --- server ---

    async def version(self) -> str:
        """The server's version: ``2.12.0`` (2.1.x answered the bare string)."""
        try:
            with trio.fail_after(self.timeout):
                response = await self._http.get(self.url + "/version")
        except trio.TooSlowError:
            raise ToxiproxyError(0, f"GET /version: no answer within {self.timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise ToxiproxyError(0, f"GET /version: {exc}") from None
        if response.status_code >= 400:
            raise ToxiproxyError(response.status_code, response.text.strip())
        text = response.text.strip()
        try:
            return str(json.loads(text)["version"])
        except (ValueError, KeyError, TypeError):
            return text

    async def reset(self) -> None:
        """Remove every toxic and enable every proxy."""
        await self._request("POST", "/reset")

    async def populate(self, proxies: Sequence[Mapping[str, object]]) -> list[ProxyInfo]:
        """Create or replace proxies (``[{"name", "listen", "upstream", "enabled"?}, ...]``)."""
        data = await self._request("POST", "/populate", list(proxies))
        return [ProxyInfo.from_json(p) for p in data["proxies"]]

    # --- proxies ---

    async def proxies(self) -> dict[str, ProxyInfo]:
        data = await self._request("GET", "/proxies")
        return {name: ProxyInfo.from_json(p) for name, p in data.items()}

    async def create_proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0",
                           enabled: bool = True) -> ProxyInfo:
        body = {"name": name, "upstream": upstream, "listen": listen, "enabled": enabled}
        return ProxyInfo.from_json(await self._request("POST", "/proxies", body))

    async def get_proxy(self, name: str) -> ProxyInfo:
        return ProxyInfo.from_json(await self._request("GET", f"/proxies/{name}"))

    async def update_proxy(self, name: str, *, listen: str | None = None, upstream: str | None = None,
                           enabled: bool | None = None) -> ProxyInfo:
        body = {k: v for k, v in (("listen", listen), ("upstream", upstream), ("enabled", enabled))
                if v is not None}
        return ProxyInfo.from_json(await self._request("PATCH", f"/proxies/{name}", body))

    async def enable(self, name: str) -> ProxyInfo:
        return await self.update_proxy(name, enabled=True)

    async def disable(self, name: str) -> ProxyInfo:
        """Stop listening and close the proxy's connections."""
        return await self.update_proxy(name, enabled=False)

    async def delete_proxy(self, name: str) -> None:
        await self._request("DELETE", f"/proxies/{name}")

    # --- toxics ---

    async def toxics(self, proxy: str) -> list[ToxicInfo]:
        return [ToxicInfo.from_json(t) for t in await self._request("GET", f"/proxies/{proxy}/toxics")]

    async def add_toxic(self, proxy: str, type: str, *, stream: Stream = "downstream",
                        name: str | None = None, toxicity: float = 1.0,
                        attributes: Mapping[str, int] | None = None) -> ToxicInfo:
        body: dict[str, object] = {"type": type, "stream": stream, "toxicity": toxicity,
                                   "attributes": dict(attributes or {})}
        if name is not None:
            body["name"] = name
        return ToxicInfo.from_json(await self._request("POST", f"/proxies/{proxy}/toxics", body))

    async def get_toxic(self, proxy: str, name: str) -> ToxicInfo:
        return ToxicInfo.from_json(await self._request("GET", f"/proxies/{proxy}/toxics/{name}"))

    async def update_toxic(self, proxy: str, name: str, *, toxicity: float | None = None,
                           attributes: Mapping[str, int] | None = None) -> ToxicInfo:
        """Partial update: unspecified attributes keep their values."""
        body: dict[str, object] = {}
        if toxicity is not None:
            body["toxicity"] = toxicity
        if attributes is not None:
            body["attributes"] = dict(attributes)
        return ToxicInfo.from_json(await self._request("PATCH", f"/proxies/{proxy}/toxics/{name}", body))

    async def remove_toxic(self, proxy: str, name: str) -> None:
        await self._request("DELETE", f"/proxies/{proxy}/toxics/{name}")

    @asynccontextmanager
    async def toxic(self, proxy: str, type: str, *, stream: Stream = "downstream",
                    name: str | None = None, toxicity: float = 1.0,
                    attributes: Mapping[str, int] | None = None) -> AsyncIterator[ToxicInfo]:
        """The toxic is in place inside the block and removed when it exits, however it exits."""
        added = await self.add_toxic(proxy, type, stream=stream, name=name, toxicity=toxicity,
                                     attributes=attributes)
        try:
            yield added
        finally:
            # Shielded: a cancelled scenario must still take its fault out of the system.
            with trio.CancelScope(shield=True):
                try:
                    await self.remove_toxic(proxy, added.name)
                except ToxiproxyError as exc:
                    if exc.status != 404:  # already gone (reset, proxy deleted): nothing to undo
                        raise


@asynccontextmanager
async def open_toxiproxy(
    url: str | None = None, *, seed: int | None = None, timeout: float = 10.0
) -> AsyncIterator[ToxiproxyClient]:
    """A client for the toxiproxy the chaos harness should use (DESIGN section 10).

    ``url``, else ``$TOXIPROXY_URL``: a running ``toxiproxy-server`` (or ours, elsewhere).
    Neither: our fault proxy is started in-process on a free loopback port for the duration of
    the block (its proxies and connections end with it).
    """
    url = url or os.environ.get("TOXIPROXY_URL") or None
    if url is not None:
        async with ToxiproxyClient(url, timeout=timeout) as client:
            yield client
        return
    from chaos.fault_proxy import open_fault_proxy  # only the in-process case needs the server
    from chaos.proxy_api import serve_api

    async with open_fault_proxy(seed) as registry, trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve_api, registry, "127.0.0.1", 0))
        async with ToxiproxyClient(f"http://127.0.0.1:{port}", timeout=timeout) as client:
            yield client
        nursery.cancel_scope.cancel()
