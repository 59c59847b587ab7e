"""Builds a small shop through the public API, for tests that need one."""

from __future__ import annotations

from fastapi.testclient import TestClient

# Three real cities: Hamburg is nearest to Bremen, Munich to Augsburg.
WAREHOUSES = {
    "BER": (52.52, 13.405),
    "HAM": (53.551, 9.993),
    "MUC": (48.137, 11.575),
}
BREMEN = {"lat": 53.079, "lon": 8.801}
AUGSBURG = {"lat": 48.366, "lon": 10.898}


def add_warehouses(client: TestClient, headers: dict[str, str]) -> None:
    """Create BER, HAM and MUC."""
    for code, (lat, lon) in WAREHOUSES.items():
        r = client.post(
            "/api/v1/warehouses",
            headers=headers,
            json={"code": code, "name": code, "lat": lat, "lon": lon},
        )
        assert r.status_code == 201, r.text


def add_product(
    client: TestClient,
    headers: dict[str, str],
    sku: str,
    price_cents: int = 250,
    stock: dict[str, int] | None = None,
    currency: str = "EUR",
) -> None:
    """Create a product and receive ``stock`` per warehouse."""
    r = client.post(
        "/api/v1/products",
        headers=headers,
        json={
            "sku": sku,
            "name": f"Product {sku}",
            "price_cents": price_cents,
            "currency": currency,
        },
    )
    assert r.status_code == 201, r.text
    for code, qty in (stock or {}).items():
        r = client.post(
            "/api/v1/stock/movements",
            headers=headers,
            json={"sku": sku, "warehouse": code, "delta": qty, "reason": "receipt"},
        )
        assert r.status_code == 201, r.text


def stock(client: TestClient, headers: dict[str, str], sku: str) -> dict[str, dict[str, int]]:
    """Per-warehouse levels of ``sku`` plus a ``total`` entry."""
    r = client.get(f"/api/v1/stock/{sku}", headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    levels = {w["warehouse"]: w for w in body["warehouses"]}
    levels["total"] = {k: body[k] for k in ("on_hand", "reserved", "available")}
    return levels
