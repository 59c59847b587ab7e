"""Every role against every endpoint, with ownership: the policy of docs/security.md as a table.

Each row names an endpoint, how to build the request (fresh objects per caller where the call
changes them) and the status each caller must get. Forbidden combinations answer 403, or 404
where even the object's existence is private (someone else's order); anonymous callers 401.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from storekeeper.accounts.domain import Role
from tests.conftest import Actor, Actors
from tests.e2e.api_support import API, product
from tests.shop import add_product, add_warehouses

CALLERS = (
    "admin",
    "manager",
    "clerk",  # assigned to BER
    "clerk_elsewhere",  # assigned to HAM
    "customer",  # owns the orders below
    "other_customer",
    "device",  # scope warehouse:BER
    "anonymous",
)


@dataclass
class World:
    """A shop, one actor per caller, and helpers to make objects on the owner's behalf."""

    client: TestClient
    actors: dict[str, Actor]
    headers: dict[str, dict[str, str]]

    def order(self) -> str:
        """A fresh confirmed order of ``customer``, served from BER."""
        r = self.client.post(
            f"{API}/orders",
            json={"lines": [{"sku": "MILK", "qty": 1}]},
            headers={**self.headers["customer"], "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 201, r.text
        assert r.json()["lines"][0]["warehouse"] == "BER"
        return str(r.json()["id"])


@pytest.fixture
def world(client: TestClient, actors: Actors) -> World:
    made = {
        "admin": actors.make(Role.ADMIN),
        "manager": actors.make(Role.MANAGER),
        "clerk": actors.make(Role.CLERK, warehouses=["BER"]),
        "clerk_elsewhere": actors.make(Role.CLERK, warehouses=["HAM"]),
        "customer": actors.make(Role.CUSTOMER),
        "other_customer": actors.make(Role.CUSTOMER),
    }
    headers = {name: actor.headers for name, actor in made.items()}
    add_warehouses(client, headers["manager"])
    add_product(client, headers["manager"], "MILK", stock={"BER": 1000})
    r = client.post(
        f"{API}/devices",
        headers=headers["admin"],
        json={"label": "pos", "scope": "warehouse:BER"},
    )
    headers["device"] = {"Authorization": f"Bearer {r.json()['token']}"}
    headers["anonymous"] = {}
    return World(client, made, headers)


Call = Callable[[World, str], Any]


def _post(path: str | Callable[[World], str], body: Any = None, **extra: str) -> Call:
    def call(w: World, caller: str) -> Any:
        url = path(w) if callable(path) else path
        payload = body(w) if callable(body) else body
        return w.client.post(f"{API}{url}", json=payload, headers={**w.headers[caller], **extra})

    return call


def _get(path: str | Callable[[World], str]) -> Call:
    def call(w: World, caller: str) -> Any:
        url = path(w) if callable(path) else path
        return w.client.get(f"{API}{url}", headers=w.headers[caller])

    return call


def _send(method: str, path: str | Callable[[World], str], body: Any = None) -> Call:
    def call(w: World, caller: str) -> Any:
        url = path(w) if callable(path) else path
        return w.client.request(method, f"{API}{url}", json=body, headers=w.headers[caller])

    return call


def _fresh_sku(_: World) -> dict[str, Any]:
    return product(f"P-{uuid.uuid4().hex[:8]}")


def _place(w: World, caller: str) -> Any:
    return w.client.post(
        f"{API}/orders",
        json={"lines": [{"sku": "MILK", "qty": 1}]},
        headers={**w.headers[caller], "Idempotency-Key": str(uuid.uuid4())},
    )


def _on_new_order(action: str) -> Call:
    def call(w: World, caller: str) -> Any:
        return w.client.post(f"{API}/orders/{w.order()}/{action}", headers=w.headers[caller])

    return call


def _read_order(w: World, caller: str) -> Any:
    return w.client.get(f"{API}/orders/{w.order()}", headers=w.headers[caller])


def _new_user(_: World) -> dict[str, Any]:
    return {
        "email": f"u-{uuid.uuid4().hex[:8]}@example.com",
        "password": "a-long-passphrase",
        "role": "clerk",
    }


def _revoke_new_device(w: World, caller: str) -> Any:
    r = w.client.post(
        f"{API}/devices", headers=w.headers["admin"], json={"label": "x", "scope": "warehouse:BER"}
    )
    return w.client.delete(f"{API}/devices/{r.json()['id']}", headers=w.headers[caller])


STAFF_ONLY = {"admin": 2, "manager": 2, "anonymous": 401}  # everyone else 403
ADMIN_ONLY = {"admin": 2, "anonymous": 401}
STOCK_AT_BER = {"admin": 2, "manager": 2, "clerk": 2, "anonymous": 401}
SIGNED_IN = {caller: 2 for caller in CALLERS if caller != "anonymous"} | {"anonymous": 401}
BUYERS = {
    c: 2 for c in ("admin", "manager", "clerk", "clerk_elsewhere", "customer", "other_customer")
}
OWN_ORDER = {
    "admin": 2,
    "manager": 2,
    "clerk": 2,
    "clerk_elsewhere": 2,
    "customer": 2,
    "other_customer": 404,
    "anonymous": 401,
}
SHIP_FROM_BER = {"admin": 2, "manager": 2, "clerk": 2, "anonymous": 401}

# endpoint -> (call, expected status by caller: 2 means any 2xx; callers not named get 403)
MATRIX: dict[str, tuple[Call, dict[str, int]]] = {
    "GET /products": (_get("/products"), {c: 2 for c in CALLERS}),
    "GET /products/{sku}": (_get("/products/MILK"), {c: 2 for c in CALLERS}),
    "POST /products": (_post("/products", _fresh_sku), STAFF_ONLY),
    "PATCH /products/{sku}": (_send("PATCH", "/products/MILK", {"name": "Milk"}), STAFF_ONLY),
    "DELETE /products/{sku}": (
        lambda w, c: _send("DELETE", f"/products/{_make_product(w)}")(w, c),
        STAFF_ONLY,
    ),
    "POST /warehouses": (
        _post(
            "/warehouses", lambda _: {"code": uuid.uuid4().hex[:6], "name": "x", "lat": 1, "lon": 1}
        ),
        STAFF_ONLY,
    ),
    "GET /warehouses": (_get("/warehouses"), SIGNED_IN),
    "GET /reports/sales": (_get("/reports/sales"), STAFF_ONLY),
    "GET /reports/dead-stock": (_get("/reports/dead-stock?format=csv"), STAFF_ONLY),
    "GET /reports/low-stock": (_get("/reports/low-stock"), STAFF_ONLY),
    "GET /reports/valuation": (_get("/reports/valuation"), STAFF_ONLY),
    "GET /reports/abc": (_get("/reports/abc"), STAFF_ONLY),
    "GET /reports/stock-history/{sku}": (_get("/reports/stock-history/MILK"), STAFF_ONLY),
    "POST /stock/movements at BER": (
        _post(
            "/stock/movements", {"sku": "MILK", "warehouse": "BER", "delta": 1, "reason": "receipt"}
        ),
        STOCK_AT_BER,
    ),
    "POST /stock/counts at BER": (
        _post("/stock/counts", {"sku": "MILK", "warehouse": "BER", "counted": 1000}),
        STOCK_AT_BER,
    ),
    "POST /stock/counts/batch at BER": (
        _post(
            "/stock/counts/batch",
            {"warehouse": "BER", "lines": [{"sku": "MILK", "counted": 1000}]},
        ),
        STOCK_AT_BER,
    ),
    "POST /stock/transfers BER to HAM": (
        _post("/stock/transfers", {"sku": "MILK", "from": "BER", "to": "HAM", "qty": 1}),
        STAFF_ONLY,  # a clerk would need both warehouses
    ),
    "GET /stock/{sku}": (
        _get("/stock/MILK"),
        {"admin": 2, "manager": 2, "clerk": 2, "clerk_elsewhere": 2, "anonymous": 401},
    ),
    "POST /stock/reservations": (
        _post(
            "/stock/reservations",
            lambda _: {"ref": f"cart-{uuid.uuid4().hex}", "lines": [{"sku": "MILK", "qty": 1}]},
        ),
        STAFF_ONLY,
    ),
    "POST /stock/reservations/{ref}/release": (
        lambda w, c: _send("POST", f"/stock/reservations/{_reserve(w)}/release", {})(w, c),
        STAFF_ONLY,
    ),
    "POST /stock/reservations/{ref}/fulfil": (
        lambda w, c: _send("POST", f"/stock/reservations/{_reserve(w)}/fulfil", {})(w, c),
        STAFF_ONLY,
    ),
    "POST /orders": (_place, {**BUYERS, "anonymous": 401}),
    "POST /sensors": (
        _post(
            "/sensors",
            lambda _: {
                "id": f"s-{uuid.uuid4().hex[:8]}",
                "warehouse": "BER",
                "room": "cold",
                "min_temp_c": 2,
                "max_temp_c": 8,
            },
        ),
        STAFF_ONLY,
    ),
    "GET /sensors": (
        _get("/sensors"),
        {"admin": 2, "manager": 2, "clerk": 2, "clerk_elsewhere": 2, "anonymous": 401},
    ),
    # Answers per reading: a caller outside the sensor's warehouse gets it refused (499).
    "POST /telemetry (a BER sensor)": (
        lambda w, c: _telemetry_outcome(w, c),
        {"admin": 2, "manager": 2, "device": 2, "anonymous": 401},
    ),
    "GET /telemetry/{sensor} (at BER)": (
        lambda w, c: _get(f"/telemetry/{_sensor(w)}")(w, c),
        {"admin": 2, "manager": 2, "clerk": 2, "anonymous": 401},
    ),
    "GET /alerts": (
        _get("/alerts"),
        {"admin": 2, "manager": 2, "clerk": 2, "clerk_elsewhere": 2, "anonymous": 401},
    ),
    "GET /orders": (_get("/orders"), {**BUYERS, "anonymous": 401}),
    "GET /orders/{id} (customer's)": (_read_order, OWN_ORDER),
    "POST /orders/{id}/cancel (customer's)": (_on_new_order("cancel"), OWN_ORDER),
    "POST /orders/{id}/ship (from BER)": (_on_new_order("ship"), SHIP_FROM_BER),
    "POST /users": (_post("/users", _new_user), ADMIN_ONLY),
    "GET /users": (_get("/users"), ADMIN_ONLY),
    "PATCH /users/{id}": (
        lambda w, c: _send("PATCH", f"/users/{w.actors['other_customer'].id}", {"warehouses": []})(
            w, c
        ),
        ADMIN_ONLY,
    ),
    "POST /devices": (_post("/devices", {"label": "s", "scope": "warehouse:BER"}), ADMIN_ONLY),
    "GET /devices": (_get("/devices"), ADMIN_ONLY),
    "DELETE /devices/{id}": (_revoke_new_device, ADMIN_ONLY),
    "GET /audit": (_get("/audit"), ADMIN_ONLY),
    "GET /me": (_get("/me"), SIGNED_IN),
    "GET /sync/pull (BER)": (
        _get("/sync/pull?scope=warehouse:BER&limit=5"),
        {"admin": 2, "manager": 2, "clerk": 2, "device": 2, "anonymous": 401},
    ),
    # Push answers per mutation: a caller outside the scope gets its mutation rejected.
    "POST /sync/push (receive at BER)": (
        lambda w, c: _push_outcome(w, c),
        {
            "admin": 2,
            "manager": 2,
            "clerk": 2,
            "clerk_elsewhere": 499,
            "device": 2,
            "anonymous": 401,
        },
    ),
    "GET /sync/exceptions": (
        _get("/sync/exceptions"),
        {"admin": 2, "manager": 2, "clerk": 2, "clerk_elsewhere": 2, "anonymous": 401},
    ),
}


class _Outcome:
    """An HTTP status, turned into 499 when the one mutation or reading sent was refused
    inside a 200 answer (a 2xx would pass as allowed)."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code


def _push_outcome(w: World, caller: str) -> _Outcome:
    mutation = {
        "id": str(uuid.uuid4()),
        "type": "stock.receive",
        "data": {"warehouse": "BER", "sku": "MILK", "qty": 1},
        "hlc": f"{int(time.time() * 1000)}-0-{caller}",
    }
    r = w.client.post(
        f"{API}/sync/push",
        json={"replica_id": f"r-{caller}", "mutations": [mutation]},
        headers=w.headers[caller],
    )
    if r.status_code == 200 and r.json()["results"][0]["status"] == "rejected":
        return _Outcome(499)
    return _Outcome(r.status_code)


def _sensor(w: World) -> str:
    sensor = f"s-{uuid.uuid4().hex[:8]}"
    r = w.client.post(
        f"{API}/sensors",
        headers=w.headers["admin"],
        json={"id": sensor, "warehouse": "BER", "room": "cold", "min_temp_c": 2, "max_temp_c": 8},
    )
    assert r.status_code == 201, r.text
    return sensor


def _telemetry_outcome(w: World, caller: str) -> _Outcome:
    now = datetime.now(UTC).isoformat()
    reading = {"sensor": _sensor(w), "ts": now, "temp_c": 4.0}
    r = w.client.post(f"{API}/telemetry", json={"readings": [reading]}, headers=w.headers[caller])
    if r.status_code == 200 and not r.json()["results"][0]["stored"]:
        return _Outcome(499)
    return _Outcome(r.status_code)


def _reserve(w: World) -> str:
    ref = f"cart-{uuid.uuid4().hex}"
    r = w.client.post(
        f"{API}/stock/reservations",
        headers=w.headers["admin"],
        json={"ref": ref, "lines": [{"sku": "MILK", "qty": 1}]},
    )
    assert r.status_code == 201, r.text
    return ref


def _make_product(w: World) -> str:
    sku = f"P-{uuid.uuid4().hex[:8]}"
    r = w.client.post(f"{API}/products", headers=w.headers["admin"], json=product(sku))
    assert r.status_code == 201, r.text
    return sku


@pytest.mark.parametrize("endpoint", list(MATRIX))
def test_each_caller_gets_exactly_what_the_policy_allows(world: World, endpoint: str) -> None:
    call, expected = MATRIX[endpoint]
    wrong = []
    for caller in CALLERS:
        want = expected.get(caller, 403)
        got = call(world, caller).status_code
        if (want == 2 and not 200 <= got < 300) or (want != 2 and got != want):
            wrong.append(f"{caller}: expected {'2xx' if want == 2 else want}, got {got}")
    assert wrong == [], f"{endpoint}: " + "; ".join(wrong)
