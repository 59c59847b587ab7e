"""Values at the edges of what a parameter or a database column can hold: 4xx, never a 500.

Digits that ``str.isdigit`` accepts but ``int`` does not, ids past BIGINT, a total past BIGINT,
and case-insensitive search of non-ASCII capitals on both databases.
"""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from storekeeper.accounts.domain import Role
from storekeeper.ids import MAX_ID, parse_id
from tests.conftest import Actor, Actors
from tests.e2e.api_support import API, assert_error
from tests.shop import add_product, add_warehouses


@pytest.mark.parametrize("cursor", ["²", "١٢", "-1", "1" * 20, str(MAX_ID + 1), ""])
def test_sync_exception_cursor_that_is_not_an_id_is_invalid_cursor(
    client: TestClient, manager: Actor, cursor: str
) -> None:
    r = client.get(f"{API}/sync/exceptions", params={"cursor": cursor}, headers=manager.headers)
    assert_error(r, 422, "invalid_cursor")


def test_sync_exception_cursor_at_the_largest_id_is_an_empty_page(
    client: TestClient, manager: Actor
) -> None:
    r = client.get(
        f"{API}/sync/exceptions", params={"cursor": str(MAX_ID)}, headers=manager.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["items"] == []


@pytest.mark.parametrize("before", [2**63, 10**30])
def test_audit_before_past_bigint_is_refused(
    client: TestClient, actors: Actors, before: int
) -> None:
    admin = actors.make(Role.ADMIN)
    r = client.get(f"{API}/audit", params={"before": before}, headers=admin.headers)
    assert_error(r, 422, "validation_error")
    r = client.get(f"{API}/audit", params={"before": MAX_ID}, headers=admin.headers)
    assert r.status_code == 200, r.text


def test_order_total_past_bigint_is_refused_and_reserves_nothing(
    client: TestClient, manager: Actor, customer: Actor
) -> None:
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "GOLD", price_cents=10**12, stock={"BER": 10_000_000})
    r = client.post(
        f"{API}/orders",
        headers={**customer.headers, "Idempotency-Key": str(uuid.uuid4())},
        # A line holds at most 100,000 units; repeated lines of one SKU add up.
        json={"lines": [{"sku": "GOLD", "qty": 100_000}] * 100},
    )
    assert_error(r, 422, "total_too_large")
    assert client.get(f"{API}/stock/GOLD", headers=manager.headers).json()["reserved"] == 0


def test_search_finds_non_ascii_capitals_on_both_databases(
    client: TestClient, manager: Actor
) -> None:
    for sku, name in [("APF-1", "ÄPFEL AUS DEM ALTEN LAND"), ("OEL-1", "Öl"), ("X-1", "Birnen")]:
        r = client.post(
            f"{API}/products",
            headers=manager.headers,
            json={"sku": sku, "name": name, "price_cents": 100},
        )
        assert r.status_code == 201, r.text

    def found(q: str) -> list[str]:
        r = client.get(f"{API}/products", params={"q": q})
        assert r.status_code == 200, r.text
        return [item["sku"] for item in r.json()["items"]]

    assert found("äpfel") == ["APF-1"]
    assert found("ÄPFEL") == ["APF-1"]
    assert found("öl") == ["OEL-1"]
    assert found("apf") == ["APF-1"]  # the SKU


def test_parse_id_takes_ascii_digits_within_bigint_only() -> None:
    assert parse_id("0") == 0
    assert parse_id(str(MAX_ID)) == MAX_ID
    for text in ["", "²", "٣", " 1", "+1", "1_0", str(MAX_ID + 1), "9" * 40]:
        assert parse_id(text) is None, text
