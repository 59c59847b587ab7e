"""Request bodies from anyone: any bytes or JSON end as a 4xx with a code, never a 500.

Covers the unauthenticated-reachable parsers of POST /api/v1/telemetry and /api/v1/sync/push
(property tests over arbitrary bytes and JSON), and the depth and size limits of free-form JSON
(product ``attributes``, sync mutation ``data``): refused at the door with ``json_too_deep`` or
``json_too_large``, so nothing stored can make a later read fail.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storekeeper.accounts.domain import Role
from storekeeper.jsonlimits import MAX_BYTES, MAX_DEPTH
from tests.conftest import Actor, Actors
from tests.e2e.api_support import API, assert_error
from tests.shop import add_warehouses

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**500), max_value=10**500)
    | st.floats()
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_reading = st.fixed_dictionaries(
    {},
    optional={"sensor": _json | st.just("s-1"), "ts": _json, "temp_c": _json, "humidity": _json},
)
_mutation = st.fixed_dictionaries(
    {},
    optional={
        "id": st.uuids().map(str) | _json,
        "type": st.sampled_from(["stock.sell", "product.update", "x"]) | _json,
        "data": _json,
        "hlc": st.just("1-0-a") | _json,
    },
)
_PROPERTY = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _nested(depth: int) -> dict[str, Any]:
    """An object with ``depth`` levels of objects below it."""
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def _refused(response: Any) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    body = response.json()
    assert isinstance(body.get("code"), str) and "detail" in body, body


@_PROPERTY
@given(body=st.binary(max_size=300))
def test_telemetry_any_bytes_are_refused_not_a_server_error(
    client: TestClient, manager: Actor, body: bytes
) -> None:
    r = client.post(
        f"{API}/telemetry",
        content=body,
        headers={**manager.headers, "Content-Type": "application/json"},
    )
    _refused(r)


@_PROPERTY
@given(document=_json | st.fixed_dictionaries({"readings": st.lists(_reading, max_size=3)}))
def test_telemetry_any_json_is_answered_never_a_server_error(
    client: TestClient, manager: Actor, document: object
) -> None:
    r = client.post(
        f"{API}/telemetry",
        content=json.dumps(document),
        headers={**manager.headers, "Content-Type": "application/json"},
    )
    if r.status_code != 200:  # 200: every reading got its own verdict
        _refused(r)


@_PROPERTY
@given(body=st.binary(max_size=300))
def test_sync_push_any_bytes_are_refused_not_a_server_error(
    client: TestClient, manager: Actor, body: bytes
) -> None:
    r = client.post(
        f"{API}/sync/push",
        content=body,
        headers={**manager.headers, "Content-Type": "application/json"},
    )
    _refused(r)


@_PROPERTY
@given(
    document=_json
    | st.fixed_dictionaries(
        {"replica_id": st.just("replica-a") | _json, "mutations": st.lists(_mutation, max_size=3)}
    )
)
def test_sync_push_any_json_is_answered_never_a_server_error(
    client: TestClient, manager: Actor, document: object
) -> None:
    r = client.post(
        f"{API}/sync/push",
        content=json.dumps(document),
        headers={**manager.headers, "Content-Type": "application/json"},
    )
    if r.status_code != 200:
        _refused(r)


@pytest.mark.parametrize(
    ("path", "body", "code"),
    [
        ("/telemetry", b"[" * 5000 + b"]" * 5000, "json_too_deep"),
        ("/sync/push", b'{"replica_id":' + b"[" * 1000 + b"]" * 1000 + b"}", "json_too_deep"),
        (
            "/products",
            b'{"sku":"A","attributes":' + b'{"a":' * 3000 + b"{" + b"}" * 3001 + b"}",
            "json_too_deep",
        ),
        ("/telemetry", b'{"readings":[' + b"9" * 5000 + b"]}", "validation_error"),
        ("/telemetry", b'{"readings":"\xff"}', "validation_error"),
    ],
)
def test_undecodable_bodies_answer_422(
    client: TestClient, manager: Actor, path: str, body: bytes, code: str
) -> None:
    r = client.post(
        f"{API}{path}",
        content=body,
        headers={**manager.headers, "Content-Type": "application/json"},
    )
    assert_error(r, 422, code)


def test_telemetry_timestamps_that_overflow_in_utc_are_rejected_per_reading(
    client: TestClient, manager: Actor
) -> None:
    add_warehouses(client, manager.headers)
    r = client.post(
        f"{API}/sensors",
        headers=manager.headers,
        json={"id": "s-edge", "warehouse": "BER", "room": "r", "min_temp_c": 2, "max_temp_c": 8},
    )
    assert r.status_code == 201, r.text
    readings = [
        {"sensor": "s-edge", "ts": "0001-01-01T00:00:00+14:00", "temp_c": 4},
        {"sensor": "s-edge", "ts": "9999-12-31T23:59:59-14:00", "temp_c": 4},
    ]
    r = client.post(f"{API}/telemetry", headers=manager.headers, json={"readings": readings})
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        assert r.json()["stored"] == 0


def _product(sku: str, attributes: dict[str, Any]) -> dict[str, Any]:
    return {"sku": sku, "name": sku, "price_cents": 100, "attributes": attributes}


def _deep_text(depth: int) -> str:
    """``_nested(depth)`` as JSON text, written without recursion (json.dumps stops near 1000)."""
    return '{"a":' * depth + "{}" + "}" * depth


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 256, 500, 999])
def test_deep_attributes_are_refused_at_create_patch_and_sync_push(
    client: TestClient, manager: Actor, depth: int
) -> None:
    add_warehouses(client, manager.headers)
    deep = _deep_text(depth)
    headers = {**manager.headers, "Content-Type": "application/json"}
    body = '{"sku":"DEEP","name":"d","price_cents":1,"attributes":' + deep + "}"
    assert_error(
        client.post(f"{API}/products", headers=headers, content=body), 422, "json_too_deep"
    )
    r = client.post(f"{API}/products", headers=manager.headers, json=_product("OK", {}))
    assert r.status_code == 201, r.text
    body = '{"attributes":' + deep + "}"
    r = client.patch(f"{API}/products/OK", headers=headers, content=body)
    assert_error(r, 422, "json_too_deep")
    mutation = (
        f'{{"id":"{uuid.uuid4()}","type":"product.update","hlc":"1700000000000-0-replica-a",'
        '"data":{"warehouse":"BER","sku":"OK","fields":{"attributes":' + deep + "}}}"
    )
    body = '{"replica_id":"replica-a","mutations":[' + mutation + "]}"
    r = client.post(f"{API}/sync/push", headers=headers, content=body)
    if r.status_code == 200:  # within the envelope's bound: refused as that mutation's data
        (result,) = r.json()["results"]
        assert result["status"] == "rejected", result
    else:
        assert_error(r, 422, "json_too_deep")
    assert client.get(f"{API}/products/OK").json()["attributes"] == {}


def test_attributes_within_the_limits_are_stored_and_read_back(
    client: TestClient, manager: Actor, actors: Actors
) -> None:
    deepest = _nested(MAX_DEPTH)
    r = client.post(f"{API}/products", headers=manager.headers, json=_product("EDGE", deepest))
    assert r.status_code == 201, r.text
    assert client.get(f"{API}/products/EDGE").json()["attributes"] == deepest
    assert client.get(f"{API}/products").status_code == 200
    customer = actors.make(Role.CUSTOMER)
    assert client.get(f"{API}/products?q=edge", headers=customer.headers).status_code == 200
    r = client.delete(f"{API}/products/EDGE", headers=manager.headers)
    assert r.status_code < 500, r.text


def test_oversized_attributes_are_refused(client: TestClient, manager: Actor) -> None:
    big = {"text": "x" * MAX_BYTES}
    r = client.post(f"{API}/products", headers=manager.headers, json=_product("BIG", big))
    assert_error(r, 422, "json_too_large")
