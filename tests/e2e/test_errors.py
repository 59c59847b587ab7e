"""The error contract: every failure is JSON ``{"detail", "code"}`` with its status, never a 500.

Also the operational endpoints and the published OpenAPI document.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from storekeeper.accounts.domain import Role
from tests.conftest import Actor, Actors
from tests.e2e.api_support import API, assert_error, product
from tests.shop import add_product, add_warehouses

LIMIT = 1_048_576  # the default STOREKEEPER max_body_bytes


def _json(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Content-Type": "application/json"}


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A JSON-ish body of ``total`` bytes sent without a Content-Length (chunked)."""
    sent = 0
    while sent < total:
        part = b" " * min(size, total - sent)
        sent += len(part)
        yield part


# --- malformed and invalid input --------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"{bad json", b'{"sku": "A",}', b"", b"[1, 2]", b"null", b'"text"', b"\xff\xfe"],
    ids=["broken", "trailing-comma", "empty", "array", "null", "string", "not-utf8"],
)
def test_malformed_json_is_422_validation_error(
    client: TestClient, manager: Actor, raw: bytes
) -> None:
    r = client.post(f"{API}/products", headers=_json(manager.headers), content=raw)

    detail = assert_error(r, 422, "validation_error")
    assert isinstance(detail, list)
    assert all({"type", "loc", "msg"} == set(item) for item in detail)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("price_cents", 1.5),
        ("price_cents", None),
        ("sku", 123),
        ("name", ["a"]),
        ("attributes", "colour=red"),
        ("min_temp_c", "cold"),
    ],
)
def test_wrong_types_are_422_naming_the_field(
    client: TestClient, manager: Actor, field: str, value: Any
) -> None:
    r = client.post(
        f"{API}/products", headers=manager.headers, json={**product("TYPES"), field: value}
    )

    detail = assert_error(r, 422, "validation_error")
    assert ["body", field] in [item["loc"][:2] for item in detail]


@pytest.mark.parametrize("qty", [-1, 0, 100_001, 2.5, "one"])
def test_order_line_quantity_must_be_a_positive_whole_number(
    client: TestClient, manager: Actor, customer: Actor, qty: Any
) -> None:
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "BEAN", stock={"BER": 5})

    r = client.post(
        f"{API}/orders",
        headers={**customer.headers, "Idempotency-Key": "k-1"},
        json={"lines": [{"sku": "BEAN", "qty": qty}]},
    )

    assert_error(r, 422, "validation_error")
    stock = client.get(f"{API}/stock/BEAN", headers=manager.headers).json()
    assert stock["reserved"] == 0


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/products", {**product("EXTRA"), "colour": "red"}),
        ("/warehouses", {"code": "W", "name": "W", "lat": 0, "lon": 0, "capacity": 9}),
        (
            "/stock/movements",
            {"sku": "A", "warehouse": "W", "delta": 1, "reason": "receipt", "by": "me"},
        ),
        ("/orders", {"lines": [{"sku": "A", "qty": 1, "discount": 5}]}),
        ("/orders", {"lines": [{"sku": "A", "qty": 1}], "coupon": "FREE"}),
        (
            "/auth/register",
            {"email": "x@example.com", "password": "long-enough-1", "is_active": True},
        ),
    ],
    ids=["product", "warehouse", "movement", "order-line", "order", "registration"],
)
def test_unknown_fields_are_422_not_ignored(
    client: TestClient, actors: Actors, path: str, body: dict[str, Any]
) -> None:
    admin = actors.make(Role.ADMIN)

    r = client.post(f"{API}{path}", headers={**admin.headers, "Idempotency-Key": "k-1"}, json=body)

    detail = assert_error(r, 422, "validation_error")
    assert {item["type"] for item in detail} == {"extra_forbidden"}


def test_order_without_idempotency_key_is_422_and_reserves_nothing(
    client: TestClient, manager: Actor, customer: Actor
) -> None:
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "SOAP", stock={"BER": 5})

    missing = client.post(
        f"{API}/orders", headers=customer.headers, json={"lines": [{"sku": "SOAP", "qty": 1}]}
    )
    empty = client.post(
        f"{API}/orders",
        headers={**customer.headers, "Idempotency-Key": ""},
        json={"lines": [{"sku": "SOAP", "qty": 1}]},
    )

    for r in (missing, empty):
        detail = assert_error(r, 422, "validation_error")
        assert ["header", "Idempotency-Key"] in [item["loc"] for item in detail]
    assert client.get(f"{API}/stock/SOAP", headers=manager.headers).json()["reserved"] == 0


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 201}, {"limit": "ten"}, {"q": "x" * 101}, {"cursor": "c" * 201}],
    ids=["limit-0", "limit-201", "limit-text", "long-q", "long-cursor"],
)
def test_out_of_range_list_parameters_are_422(client: TestClient, params: dict[str, Any]) -> None:
    assert_error(client.get(f"{API}/products", params=params), 422, "validation_error")


def test_path_parameters_are_validated(client: TestClient, manager: Actor) -> None:
    assert_error(
        client.get(f"{API}/orders/not-a-uuid", headers=manager.headers), 422, "validation_error"
    )
    assert_error(client.get(f"{API}/products/{'x' * 65}"), 422, "validation_error")


# --- routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"{API}/nope", f"{API}/products/A/extra", "/api/v2/me"])
def test_unknown_route_is_404_json(client: TestClient, path: str) -> None:
    assert_error(client.get(path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PUT", f"{API}/products"),
        ("DELETE", f"{API}/warehouses"),
        ("GET", f"{API}/auth/token"),
        ("POST", f"{API}/products/SKU-1"),
        ("PATCH", "/healthz"),
    ],
)
def test_wrong_method_is_405_json_with_allow_header(
    client: TestClient, method: str, path: str
) -> None:
    r = client.request(method, path)

    assert_error(r, 405, "method_not_allowed")
    assert r.headers.get("allow")


# --- body size --------------------------------------------------------------------------------


def test_body_over_the_limit_with_content_length_is_413(client: TestClient, manager: Actor) -> None:
    body = b'{"sku": "BIG", "name": "' + b"x" * LIMIT + b'", "price_cents": 1}'

    r = client.post(f"{API}/products", headers=_json(manager.headers), content=body)

    assert_error(r, 413, "body_too_large")
    assert_error(client.get(f"{API}/products/BIG"), 404, "unknown_sku")


def test_body_over_the_limit_sent_chunked_is_413(client: TestClient, manager: Actor) -> None:
    r = client.post(f"{API}/products", headers=_json(manager.headers), content=_chunks(LIMIT + 1))

    assert_error(r, 413, "body_too_large")


def test_oversized_body_is_refused_before_authentication(client: TestClient) -> None:
    r = client.post(
        f"{API}/products", headers={"Content-Type": "application/json"}, content=_chunks(LIMIT * 2)
    )

    assert_error(r, 413, "body_too_large")


def test_chunked_body_within_the_limit_is_served(client: TestClient, manager: Actor) -> None:
    parts = [b'{"sku": "CHUNKED", ', b'"name": "Sent in parts", ', b'"price_cents": 5}']

    r = client.post(
        f"{API}/products", headers=_json(manager.headers), content=(part for part in parts)
    )

    assert r.status_code == 201, r.text
    assert r.json()["name"] == "Sent in parts"


def test_body_just_under_the_limit_reaches_validation(client: TestClient, manager: Actor) -> None:
    padding = b" " * (LIMIT - 100)
    body = b'{"sku": "PADDED", "name": "n", "price_cents": 1}' + padding

    r = client.post(f"{API}/products", headers=_json(manager.headers), content=body)

    assert r.status_code == 201, r.text


# --- cursors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cursor",
    ["not-a-cursor", "!!!", "AA", _cursor("has space"), _cursor("\x00"), "%%%"],
    ids=["random", "punctuation", "nul-byte", "not-a-sku", "encoded-nul", "percent"],
)
def test_bad_product_cursor_is_422_invalid_cursor(
    client: TestClient, manager: Actor, cursor: str
) -> None:
    client.post(f"{API}/products", headers=manager.headers, json=product("ANY"))

    assert_error(client.get(f"{API}/products", params={"cursor": cursor}), 422, "invalid_cursor")


@pytest.mark.parametrize(
    "cursor",
    [
        "zzz",
        _cursor("2026-01-01T00:00:00|" + str(uuid.uuid4())),
        _cursor("2026-01-01T00:00:00+00:00|not-a-uuid"),
        _cursor("yesterday|" + str(uuid.uuid4())),
        _cursor("a|b|c"),
    ],
    ids=["random", "naive-timestamp", "bad-uuid", "bad-timestamp", "three-parts"],
)
def test_bad_order_cursor_is_422_invalid_cursor(
    client: TestClient, manager: Actor, cursor: str
) -> None:
    r = client.get(f"{API}/orders", headers=manager.headers, params={"cursor": cursor})

    assert_error(r, 422, "invalid_cursor")


# --- never a 500 ------------------------------------------------------------------------------


def test_awkward_text_never_causes_a_server_error(
    client: TestClient, manager: Actor, customer: Actor
) -> None:
    # PostgreSQL refuses NUL characters in text; SQLite stores them. Either way: no 500.
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "OK-1", stock={"BER": 5})
    staff = _json(manager.headers)
    nul_product = b'{"sku": "NUL-1", "name": "a\\u0000b", "price_cents": 1}'
    nul_ref = (
        b'{"sku": "OK-1", "warehouse": "BER", "delta": 1, "reason": "receipt", "ref": "r\\u0000"}'
    )
    nul_warehouse = b'{"code": "NUL", "name": "a\\u0000", "lat": 0, "lon": 0}'
    answers = [
        client.post(f"{API}/products", headers=staff, content=nul_product),
        client.patch(f"{API}/products/OK-1", headers=staff, content=b'{"name": "x\\u0000"}'),
        client.post(f"{API}/stock/movements", headers=staff, content=nul_ref),
        client.post(f"{API}/warehouses", headers=staff, content=nul_warehouse),
        client.get(f"{API}/products", params={"q": "\x00"}),
        client.get(f"{API}/products/A%00B"),
        client.get(f"{API}/stock/A%00B", headers=manager.headers),
        client.post(f"{API}/auth/token", data={"username": "a\x00@example.com", "password": "x"}),
        client.post(
            f"{API}/auth/register", json={"email": "nul@example.com", "password": "pass\x00word-1"}
        ),
        client.post(
            f"{API}/orders",
            headers={**customer.headers, "Idempotency-Key": "k\x01"},
            json={"lines": [{"sku": "OK-1", "qty": 1}]},
        ),
        client.get(f"{API}/products", params={"q": "\u00e9\U0001f9c0"}),
        client.get(f"{API}/products/%F0%9F%A7%80"),
    ]

    for r in answers:
        assert r.status_code < 500, (r.request.url, r.text)
        if r.status_code >= 400:
            assert_error(r, r.status_code)


def test_unexpected_content_types_are_422_not_500(client: TestClient, manager: Actor) -> None:
    body = b'{"sku": "CT", "name": "n", "price_cents": 1}'
    for content_type in ("text/plain", "application/xml", "multipart/form-data; boundary=x"):
        r = client.post(
            f"{API}/products",
            headers={**manager.headers, "Content-Type": content_type},
            content=body,
        )
        assert r.status_code < 500, (content_type, r.text)
        assert_error(r, r.status_code)


# --- operations and documentation -------------------------------------------------------------


def test_healthz_and_readyz_answer(client: TestClient, backend: str) -> None:
    health = client.get("/healthz")
    ready = client.get("/readyz")

    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    checks = {"database": "ok", "migrations": "ok"}  # docs/observability.md#health
    assert (ready.status_code, ready.json()) == (
        200,
        {"status": "ready", "database": backend, "checks": checks},
    )


def test_openapi_document_lists_every_public_endpoint(client: TestClient) -> None:
    r = client.get("/openapi.json")

    assert r.status_code == 200
    paths = r.json()["paths"]
    expected = {
        f"{API}/auth/register": {"post"},
        f"{API}/auth/token": {"post"},
        f"{API}/auth/refresh": {"post"},
        f"{API}/me": {"get"},
        f"{API}/users": {"get", "post"},
        f"{API}/products": {"get", "post"},
        f"{API}/products/{{sku}}": {"get", "patch", "delete"},
        f"{API}/warehouses": {"get", "post"},
        f"{API}/stock/movements": {"post"},
        f"{API}/stock/counts": {"post"},
        f"{API}/stock/counts/batch": {"post"},
        f"{API}/stock/transfers": {"post"},
        f"{API}/stock/{{sku}}": {"get"},
        f"{API}/orders": {"get", "post"},
        f"{API}/orders/{{order_id}}": {"get"},
        f"{API}/orders/{{order_id}}/cancel": {"post"},
        f"{API}/orders/{{order_id}}/ship": {"post"},
        "/healthz": {"get"},
        "/readyz": {"get"},
    }
    for path, methods in expected.items():
        assert path in paths, path
        assert methods <= set(paths[path]), (path, set(paths[path]))
    order_headers = [p["name"] for p in paths[f"{API}/orders"]["post"]["parameters"]]
    assert "Idempotency-Key" in order_headers
    assert "OAuth2PasswordBearer" in r.json()["components"]["securitySchemes"]
    assert client.get("/docs").status_code == 200
