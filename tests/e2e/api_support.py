"""Helpers for the end-to-end API tests: the error-body contract and small request builders."""

from __future__ import annotations

from typing import Any

import httpx

API = "/api/v1"


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> Any:
    """Check the status and the ``{"detail", "code"}`` JSON error shape; return the detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"detail", "code"}, body
    assert isinstance(body["code"], str), body
    if code is not None:
        assert body["code"] == code, body
    return body["detail"]


def product(sku: str, **fields: Any) -> dict[str, Any]:
    """A valid ``POST /products`` body; ``fields`` override or add to it."""
    return {"sku": sku, "name": f"Product {sku}", "price_cents": 100, **fields}
