"""toxiproxy 2.12's HTTP API as recorded in notes/toxiproxy-api.md: exact statuses, bodies,
content types and headers, against the fault proxy's API served in-process on a real socket."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import trio

from tests.chaos.conftest import Upstream, connect, receive_exactly

ERROR_TYPE = "text/plain; charset=utf-8"
XID = re.compile(r"[0-9a-v]{20}")


@pytest.fixture
async def http(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api_url, headers={"User-Agent": "toxiproxy-test"}) as client:
        yield client


async def _create(http: httpx.AsyncClient, upstream: Upstream, name: str = "web") -> dict[str, object]:
    response = await http.post("/proxies", json={"name": name, "listen": "127.0.0.1:0",
                                                 "upstream": upstream.address})
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def _assert_error(response: httpx.Response, status: int, message: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == ERROR_TYPE
    assert response.content == json.dumps({"error": message, "status": status},
                                          separators=(",", ":")).encode() + b"\n"


async def test_version_answers_the_toxiproxy_version_with_a_newline(http: httpx.AsyncClient) -> None:
    response = await http.get("/version")
    assert response.status_code == 200
    assert response.content == b'{"version": "2.12.0"}\n'
    assert response.headers["content-type"] == "application/json;charset=utf-8"


async def test_every_response_carries_a_request_id(http: httpx.AsyncClient) -> None:
    ids = set()
    for method, path in [("GET", "/version"), ("GET", "/proxies"), ("GET", "/proxies/nope"),
                         ("GET", "/nope"), ("PUT", "/proxies"), ("POST", "/reset")]:
        response = await http.request(method, path)
        assert XID.fullmatch(response.headers["x-toxiproxy-request-id"]), (method, path)
        ids.add(response.headers["x-toxiproxy-request-id"])
    assert len(ids) == 6


async def test_browsers_are_refused(http: httpx.AsyncClient) -> None:
    response = await http.get("/proxies", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
    assert response.status_code == 403
    assert response.content == b"User agent not allowed\n"
    assert response.headers["content-type"] == ERROR_TYPE


async def test_unknown_route_is_404_and_wrong_method_is_405_with_an_empty_body(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/nope")
    assert (response.status_code, response.content) == (404, b"404 page not found\n")
    assert response.headers["content-type"] == ERROR_TYPE
    for method, path in [("PUT", "/proxies"), ("GET", "/reset"), ("POST", "/version"),
                         ("PUT", "/proxies/x/toxics/y"), ("DELETE", "/populate")]:
        response = await http.request(method, path)
        assert (response.status_code, response.content) == (405, b""), (method, path)


async def test_proxies_start_empty_and_a_created_proxy_shows_its_real_port(
    http: httpx.AsyncClient, upstream: Upstream
) -> None:
    assert (await http.get("/proxies")).content == b"{}"
    created = await http.post("/proxies", json={"name": "web", "listen": "127.0.0.1:0",
                                                "upstream": upstream.address})
    assert created.status_code == 201
    assert created.headers["content-type"] == "application/json"
    body = created.json()
    assert list(body) == ["name", "listen", "upstream", "enabled", "Logger", "toxics"]
    host, _, port = body["listen"].rpartition(":")
    assert host == "127.0.0.1" and int(port) > 0
    assert created.content == (
        b'{"name":"web","listen":"127.0.0.1:' + port.encode() + b'","upstream":"'
        + upstream.address.encode() + b'","enabled":true,"Logger":{},"toxics":[]}'
    )
    assert (await http.get("/proxies")).json() == {"web": body}
    assert (await http.get("/proxies/web")).json() == body
    client = await connect(int(port))  # and it really proxies
    server = await upstream.next_connection()
    await client.send_all(b"hi")
    assert await receive_exactly(server, 2) == b"hi"


async def test_proxy_without_listen_binds_all_interfaces(http: httpx.AsyncClient, upstream: Upstream) -> None:
    response = await http.post("/proxies", json={"name": "any", "upstream": upstream.address})
    assert response.status_code == 201
    assert re.fullmatch(r"(\[::\]|0\.0\.0\.0):[0-9]+", response.json()["listen"])


async def test_proxy_create_errors(http: httpx.AsyncClient, upstream: Upstream) -> None:
    await _create(http, upstream)
    _assert_error(await http.post("/proxies", json={"name": "web", "listen": "127.0.0.1:0",
                                                    "upstream": upstream.address}),
                  409, "proxy already exists")
    _assert_error(await http.post("/proxies", json={"upstream": upstream.address}),
                  400, "missing required field: name")
    _assert_error(await http.post("/proxies", json={"name": "x"}), 400, "missing required field: upstream")
    _assert_error(await http.post("/proxies", json={"name": "x", "listen": "notanaddr", "upstream": "a:1"}),
                  500, "listen tcp: address notanaddr: missing port in address")
    _assert_error(await http.post("/proxies", content=b""), 400, "bad request body: EOF")
    _assert_error(await http.post("/proxies", json={"name": 5}), 400,
                  "bad request body: json: cannot unmarshal number into Go struct field Proxy.name "
                  "of type string")


async def test_port_in_use_is_a_500_with_gos_message(http: httpx.AsyncClient, upstream: Upstream) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        response = await http.post("/proxies", json={"name": "x", "listen": f"127.0.0.1:{port}",
                                                     "upstream": upstream.address})
    _assert_error(response, 500, f"listen tcp 127.0.0.1:{port}: bind: address already in use")
    assert (await http.get("/proxies")).content == b"{}"


async def test_unknown_proxy_is_404(http: httpx.AsyncClient) -> None:
    for method, path in [("GET", "/proxies/x"), ("PATCH", "/proxies/x"), ("DELETE", "/proxies/x"),
                         ("GET", "/proxies/x/toxics"), ("POST", "/proxies/x/toxics")]:
        _assert_error(await http.request(method, path, content=b"{}"), 404, "proxy not found")


async def test_proxy_partial_update_disables_and_enables(http: httpx.AsyncClient, upstream: Upstream) -> None:
    body = await _create(http, upstream)
    port = int(str(body["listen"]).rpartition(":")[2])
    disabled = await http.patch("/proxies/web", json={"enabled": False})
    assert disabled.status_code == 200
    assert disabled.json() == {**body, "enabled": False}
    with pytest.raises(OSError):
        await trio.open_tcp_stream("127.0.0.1", port)
    enabled = await http.post("/proxies/web", json={"enabled": True})  # POST works too
    assert enabled.status_code == 200 and enabled.json() == body
    client = await connect(port)
    server = await upstream.next_connection()
    await client.send_all(b"ok")
    assert await receive_exactly(server, 2) == b"ok"


async def test_delete_proxy_is_204_then_404(http: httpx.AsyncClient, upstream: Upstream) -> None:
    await _create(http, upstream)
    response = await http.delete("/proxies/web")
    assert (response.status_code, response.content) == (204, b"")
    _assert_error(await http.delete("/proxies/web"), 404, "proxy not found")


async def test_toxic_lifecycle_with_toxiproxys_shapes(http: httpx.AsyncClient, upstream: Upstream) -> None:
    await _create(http, upstream)
    created = await http.post("/proxies/web/toxics", json={"name": "lat", "type": "latency",
                                                           "attributes": {"latency": 500}})
    assert created.status_code == 200
    assert created.content == (b'{"attributes":{"latency":500,"jitter":0},"name":"lat","type":"latency",'
                               b'"stream":"downstream","toxicity":1}')
    defaulted = await http.post("/proxies/web/toxics", json={"type": "timeout", "stream": "upstream",
                                                             "toxicity": 0.5})
    assert defaulted.json() == {"attributes": {"timeout": 0}, "name": "timeout_upstream", "type": "timeout",
                                "stream": "upstream", "toxicity": 0.5}
    listed = await http.get("/proxies/web/toxics")
    assert [t["name"] for t in listed.json()] == ["timeout_upstream", "lat"]  # upstream first
    assert (await http.get("/proxies/web")).json()["toxics"] == listed.json()
    assert (await http.get("/proxies/web/toxics/lat")).json() == created.json()
    updated = await http.patch("/proxies/web/toxics/lat", json={"attributes": {"jitter": 100}})
    assert updated.json() == {"attributes": {"latency": 500, "jitter": 100}, "name": "lat", "type": "latency",
                              "stream": "downstream", "toxicity": 1}
    updated = await http.post("/proxies/web/toxics/lat", json={"toxicity": 0.25})
    assert updated.json()["toxicity"] == 0.25 and updated.json()["attributes"]["jitter"] == 100
    deleted = await http.delete("/proxies/web/toxics/lat")
    assert (deleted.status_code, deleted.content) == (204, b"")
    _assert_error(await http.delete("/proxies/web/toxics/lat"), 404, "toxic not found")
    _assert_error(await http.get("/proxies/web/toxics/lat"), 404, "toxic not found")
    _assert_error(await http.patch("/proxies/web/toxics/lat", json={}), 404, "toxic not found")


async def test_toxic_errors(http: httpx.AsyncClient, upstream: Upstream) -> None:
    await _create(http, upstream)
    await http.post("/proxies/web/toxics", json={"name": "lat", "type": "latency"})
    _assert_error(await http.post("/proxies/web/toxics", json={"name": "lat", "type": "latency"}),
                  409, "toxic already exists")
    _assert_error(await http.post("/proxies/web/toxics", json={"type": "latency", "stream": "sideways"}),
                  400, "stream was invalid, can be either upstream or downstream")
    _assert_error(await http.post("/proxies/web/toxics", json={"type": "meteor"}), 400, "invalid toxic type")
    _assert_error(await http.post("/proxies/web/toxics", json={"type": "latency", "name": "l2",
                                                               "attributes": {"latency": "500"}}),
                  400, "bad request body: json: cannot unmarshal string into Go struct field "
                       "LatencyToxic.attributes.latency of type int64")
    assert [t["name"] for t in (await http.get("/proxies/web/toxics")).json()] == ["lat"]


async def test_every_toxic_type_is_accepted_with_its_attributes(
    http: httpx.AsyncClient, upstream: Upstream
) -> None:
    await _create(http, upstream)
    expected = {
        "latency": {"latency": 0, "jitter": 0}, "bandwidth": {"rate": 0}, "slow_close": {"delay": 0},
        "timeout": {"timeout": 0}, "reset_peer": {"timeout": 0},
        "slicer": {"average_size": 0, "size_variation": 0, "delay": 0}, "limit_data": {"bytes": 0},
        "noop": {},
    }
    for toxic_type, attributes in expected.items():
        response = await http.post("/proxies/web/toxics", json={"type": toxic_type, "toxicity": 0})
        assert response.status_code == 200
        assert response.json()["attributes"] == attributes


async def test_reset_removes_toxics_reenables_proxies_and_keeps_them(
    http: httpx.AsyncClient, upstream: Upstream
) -> None:
    await _create(http, upstream)
    await http.post("/proxies/web/toxics", json={"type": "latency"})
    await http.patch("/proxies/web", json={"enabled": False})
    response = await http.post("/reset")
    assert (response.status_code, response.content) == (204, b"")
    proxy = (await http.get("/proxies/web")).json()
    assert proxy["enabled"] is True and proxy["toxics"] == []


async def test_populate_creates_proxies_and_reports_errors_with_null_proxies(
    http: httpx.AsyncClient, upstream: Upstream
) -> None:
    response = await http.post("/populate", json=[
        {"name": "a", "listen": "127.0.0.1:0", "upstream": upstream.address},
        {"name": "b", "listen": "127.0.0.1:0", "upstream": upstream.address, "enabled": False},
    ])
    assert response.status_code == 201
    proxies = response.json()["proxies"]
    assert [(p["name"], p["enabled"]) for p in proxies] == [("a", True), ("b", False)]
    assert set((await http.get("/proxies")).json()) == {"a", "b"}
    again = await http.post("/populate", json=[{"name": "a", "listen": proxies[0]["listen"],
                                                "upstream": upstream.address}])
    assert again.json()["proxies"] == [proxies[0]]  # same listen and upstream: kept as is
    failed = await http.post("/populate", json=[{"name": "c"}])
    assert failed.status_code == 400
    assert failed.json() == {"error": "missing required field: upstream at proxy 1", "status": 400,
                             "proxies": None}
