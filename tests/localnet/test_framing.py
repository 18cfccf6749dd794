"""JSON-RPC framing as a validator answers it: batches, parse errors, invalid requests, unknown
methods, wrong params -- each answered with the right code, and the node unharmed afterwards."""

from __future__ import annotations

import json

import httpx
import pytest
from solders.rpc.responses import GetBalanceResp, GetHealthResp, GetVersionResp

from tests.localnet.conftest import LocalnetNode


def _request(method: str, params: object) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})


def _post(node: LocalnetNode, body: bytes | str) -> httpx.Response:
    content = body.encode() if isinstance(body, str) else body
    return node.http.post(node.url, content=content, headers={"content-type": "application/json"}, timeout=10)


def test_a_batch_is_answered_in_order_with_each_answer_or_error(plain_node: LocalnetNode) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "getHealth"},
        {"jsonrpc": "2.0", "id": "two", "method": "getVersion"},
        {"jsonrpc": "2.0", "id": 3, "method": "noSuchMethod"},
        {"jsonrpc": "2.0", "id": 4, "method": "getBalance", "params": ["11111111111111111111111111111111"]},
    ]
    answers = _post(plain_node, json.dumps(batch)).json()
    assert [answer["id"] for answer in answers] == [1, "two", 3, 4]
    assert GetHealthResp.from_json(json.dumps(answers[0])) == GetHealthResp("ok")
    assert isinstance(GetVersionResp.from_json(json.dumps(answers[1])), GetVersionResp)
    assert answers[2]["error"] == {"code": -32601, "message": "Method not found"}
    assert isinstance(GetBalanceResp.from_json(json.dumps(answers[3])), GetBalanceResp)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("{not json", -32700),
        ("[]", -32600),
        ('{"id": 1, "method": "getHealth"}', -32600),
        ('{"jsonrpc": "2.0", "id": 1, "method": 7}', -32600),
        ('{"jsonrpc": "2.0", "id": 1, "method": "getSlotLeaderOfTheUniverse"}', -32601),
        ('{"jsonrpc": "2.0", "id": 1, "method": "getBalance"}', -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "getBalance", "params": ["zzz"]}', -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "getBalance", "params": {"a": 1}}', -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "getTransaction", "params": [12]}', -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "sendTransaction", "params": ["0OIl"]}', -32602),
        (_request("sendTransaction", ["AAAA", {"encoding": "base64"}]), -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "getSignatureStatuses", "params": [["x"]]}', -32602),
        (
            '{"jsonrpc": "2.0", "id": 1, "method": "getSlot", "params": [{"commitment": "eventually"}]}',
            -32602,
        ),
    ],
)
def test_a_malformed_request_is_a_jsonrpc_error_and_the_node_keeps_answering(
    plain_node: LocalnetNode, body: str, code: int
) -> None:
    response = _post(plain_node, body)
    assert response.status_code == 200
    assert response.json()["error"]["code"] == code
    assert plain_node.result("getHealth") == "ok"


def test_admin_methods_do_not_exist_without_admin(plain_node: LocalnetNode) -> None:
    for method, params in [
        ("localnet_mint", ["11111111111111111111111111111111", "11111111111111111111111111111111", 1]),
        ("localnet_createMint", ["USDC", 6]),
        ("localnet_setFaults", [{"dropRate": 1.0}]),
        ("localnet_getFaults", None),
        ("localnet_warpSlots", [10]),
    ]:
        assert plain_node.rpc(method, params)["error"] == {"code": -32601, "message": "Method not found"}
    assert plain_node.manifest["admin"] is False


def test_get_is_refused_and_health_answers(plain_node: LocalnetNode) -> None:
    assert plain_node.http.get(plain_node.url, timeout=10).status_code == 405
    assert plain_node.http.get(plain_node.url + "/health", timeout=10).text == "ok"


def test_a_notification_gets_no_answer(plain_node: LocalnetNode) -> None:
    response = _post(plain_node, '{"jsonrpc": "2.0", "method": "getHealth"}')
    assert response.status_code == 200 and response.content == b""


def test_a_min_context_slot_not_reached_is_refused_with_the_context_slot(plain_node: LocalnetNode) -> None:
    far = 10**12
    answer = plain_node.rpc("getBalance", ["11111111111111111111111111111111", {"minContextSlot": far}])
    assert answer["error"]["code"] == -32016
    assert answer["error"]["data"]["contextSlot"] < far
    reached = plain_node.rpc("getBalance", ["11111111111111111111111111111111", {"minContextSlot": 1}])
    assert "result" in reached
