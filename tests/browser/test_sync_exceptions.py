"""Sync exceptions in a real browser: an offline sale pushed beyond stock through the sync API
shows up with what the replica saw, and a manager resolves it."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from playwright.sync_api import expect

from storekeeper.accounts.domain import Role
from tests.browser.conftest import Console, axe_violations
from tests.conftest import Actor, Actors


def _post(api: httpx.Client, actor: Actor, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = api.post(path, headers=actor.headers, json=body)
    assert r.status_code in (200, 201), r.text
    answer: dict[str, Any] = r.json()
    return answer


def _offline(api: httpx.Client, actor: Actor, kind: str, **data: Any) -> dict[str, Any]:
    """Push one offline mutation from replica ``till-7``; its result."""
    body = {
        "replica_id": "till-7",
        "mutations": [{"id": str(uuid.uuid4()), "type": kind, "data": data, "hlc": "1-0-till-7"}],
    }
    result: dict[str, Any] = _post(api, actor, "/sync/push", body)["results"][0]
    return result


def test_a_sale_beyond_stock_is_listed_with_what_the_till_saw_and_resolved_by_a_receipt(
    console: Console, actors: Actors
) -> None:
    manager = actors.make(Role.MANAGER)
    api = httpx.Client(base_url=console.url("/api/v1"), timeout=10)
    for code in ("BER", "HAM"):
        _post(api, manager, "/warehouses", {"code": code, "name": code, "lat": 52.5, "lon": 13.4})
    _post(api, manager, "/products", {"sku": "MILK", "name": "Milk", "price_cents": 129})
    for code, qty in (("BER", 2), ("HAM", 1)):
        stock = {"sku": "MILK", "warehouse": code, "delta": qty, "reason": "receipt"}
        _post(api, manager, "/stock/movements", stock)
    sale = _offline(api, manager, "stock.sell", warehouse="BER", sku="MILK", qty=5)
    assert (sale["status"], sale["detail"]["shortfall"]) == ("conflict", 3)
    count = _offline(
        api, manager, "stock.count", warehouse="HAM", sku="MILK", counted=0, seen_on_hand=4
    )
    assert count["detail"]["shortfall"] == 3
    # The delivery the three extra bottles came from is booked after the fact.
    _post(
        api,
        manager,
        "/stock/movements",
        {"sku": "MILK", "warehouse": "BER", "delta": 6, "reason": "receipt"},
    )
    page = console.page

    console.sign_in(manager)
    console.goto("/sync-exceptions")
    expect(page.locator("tbody tr")).to_have_count(2)
    page.get_by_label("Warehouse").select_option("HAM")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/sync-exceptions\?status=open&warehouse=HAM$"))
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("till-7")
    # A count sends the on-hand the till had recorded: 4, of which the server could take 1.
    expect(page.locator("tbody tr td.num")).to_have_text(["3", "4", "4", "1"])
    page.get_by_label("Warehouse").select_option("")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    console.shoot("sync-exceptions")
    assert axe_violations(page) == []

    page.get_by_role("link", name=f"Exception {sale['detail']['exception_id']}: resolve").click()
    expect(page.get_by_role("heading", name="What the replica saw")).to_be_visible()
    console.shoot("sync-exceptions-resolve")
    page.get_by_label("Attach to a receipt").check()
    page.get_by_role("button", name="Resolve exception").click()
    expect(page.locator("#note")).to_have_attribute("required", "")
    page.get_by_label("Note (what you found)").fill("Tuesday's delivery was booked late")
    page.get_by_role("button", name="Resolve exception").click()
    expect(page.get_by_text("choose the receipt the units came from")).to_be_visible()
    expect(page.get_by_label("Receipt of MILK in BER")).to_have_attribute("aria-invalid", "true")
    assert axe_violations(page) == []
    page.get_by_label("Receipt of MILK in BER").select_option(index=1)  # the latest: +6
    page.get_by_role("button", name="Resolve exception").click()
    expect(page.get_by_role("status")).to_contain_text("resolved: attach to a receipt")
    expect(page.locator("#exception-status")).to_have_text("Resolved")
    r = api.get("/stock/MILK", headers=manager.headers)
    levels = {w["warehouse"]: w["on_hand"] for w in r.json()["warehouses"]}
    assert levels["BER"] == 3  # 2 - 2 sold + 6 received - 3 sold from the delivery

    console.goto("/sync-exceptions?status=resolved")
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr")).to_contain_text("Attach to a receipt")
