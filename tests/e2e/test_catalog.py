"""The catalog through the HTTP API: products, search, pagination, edits, archiving, roles."""

from __future__ import annotations

import random
import uuid
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from storekeeper.accounts.domain import Role
from tests.conftest import Actor, Actors
from tests.e2e.api_support import API, assert_error, product
from tests.shop import add_product, add_warehouses


def _create(client: TestClient, who: Actor, body: dict[str, Any]) -> dict[str, Any]:
    r = client.post(f"{API}/products", headers=who.headers, json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def _walk(client: TestClient, limit: int, q: str | None = None) -> list[list[str]]:
    """Every page of the product list, following ``next_cursor`` to the end."""
    pages: list[list[str]] = []
    params: dict[str, Any] = {"limit": limit}
    if q is not None:
        params["q"] = q
    while True:
        r = client.get(f"{API}/products", params=params)
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append([item["sku"] for item in body["items"]])
        if body["next_cursor"] is None:
            return pages
        params["cursor"] = body["next_cursor"]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _skus(client: TestClient, q: str) -> list[str]:
    r = client.get(f"{API}/products", params={"q": q, "limit": 200})
    assert r.status_code == 200, r.text
    return [item["sku"] for item in r.json()["items"]]


# --- create and read --------------------------------------------------------------------------


def test_created_product_echoes_its_fields_and_attributes_round_trip(
    client: TestClient, manager: Actor
) -> None:
    attributes = {
        "category": "chilled",
        "tags": ["dairy", "organic"],
        "size": {"volume_ml": 1000, "ratio": 0.5},
        "returnable": True,
        "supplier": None,
        "label": "Käse 🧀",
    }
    body = product(
        "MILK-1",
        name="Whole milk 1l",
        price_cents=129,
        currency="USD",
        attributes=attributes,
        min_temp_c=2.0,
        max_temp_c=6.5,
    )

    created = _create(client, manager, body)
    fetched = client.get(f"{API}/products/MILK-1")

    assert {k: created[k] for k in body} == body
    assert created["version"] == 1
    assert created["archived"] is False
    assert fetched.status_code == 200
    assert fetched.json() == created
    assert fetched.json()["attributes"] == attributes


def test_created_product_defaults_to_euro_no_attributes_and_no_temperature_range(
    client: TestClient, manager: Actor
) -> None:
    created = _create(client, manager, {"sku": "RICE", "name": "Rice", "price_cents": 0})

    assert created["currency"] == "EUR"
    assert created["attributes"] == {}
    assert created["min_temp_c"] is None
    assert created["max_temp_c"] is None


def test_temperature_range_may_be_a_single_point_or_one_sided(
    client: TestClient, manager: Actor
) -> None:
    point = _create(client, manager, product("ICE", min_temp_c=-18, max_temp_c=-18))
    floor = _create(client, manager, product("WINE", min_temp_c=8))

    assert (point["min_temp_c"], point["max_temp_c"]) == (-18, -18)
    assert (floor["min_temp_c"], floor["max_temp_c"]) == (8, None)


@pytest.mark.parametrize(
    "fields",
    [
        {"min_temp_c": 8, "max_temp_c": 2},
        {"min_temp_c": -101},
        {"max_temp_c": 100.5},
        {"price_cents": -1},
        {"currency": "eur"},
        {"sku": "has space"},
        {"sku": "-leading-dash"},
        {"sku": "x" * 65},
        {"name": ""},
        {"attributes": ["not", "an", "object"]},
    ],
    ids=lambda fields: "-".join(f"{k}={v}" for k, v in fields.items())[:40],
)
def test_invalid_product_is_422_and_not_created(
    client: TestClient, manager: Actor, fields: dict[str, Any]
) -> None:
    body = {**product("BAD-1"), **fields}

    r = client.post(f"{API}/products", headers=manager.headers, json=body)

    assert_error(r, 422, "validation_error")
    assert client.get(f"{API}/products", params={"limit": 200}).json()["items"] == []


@pytest.mark.parametrize(
    "raw_attributes",
    [b'{"x": 1e999}', b'{"x": "\\ud800"}', b'{"x": "a\\u0000b"}', b'{"a\\u0000": 1}'],
    ids=["infinity", "lone-surrogate", "nul-in-value", "nul-in-key"],
)
def test_attributes_that_no_database_can_store_are_422(
    client: TestClient, manager: Actor, raw_attributes: bytes
) -> None:
    raw = (
        b'{"sku": "ODD-1", "name": "Odd", "price_cents": 1, "attributes": ' + raw_attributes + b"}"
    )

    r = client.post(
        f"{API}/products",
        headers={**manager.headers, "Content-Type": "application/json"},
        content=raw,
    )

    assert_error(r, 422, "validation_error")
    assert_error(client.get(f"{API}/products/ODD-1"), 404, "unknown_sku")


def test_duplicate_sku_is_409_and_keeps_the_first_product(
    client: TestClient, manager: Actor
) -> None:
    _create(client, manager, product("TEA", name="Green tea"))

    r = client.post(
        f"{API}/products", headers=manager.headers, json=product("TEA", name="Black tea")
    )

    assert "TEA" in assert_error(r, 409, "duplicate_sku")
    assert client.get(f"{API}/products/TEA").json()["name"] == "Green tea"


def test_unknown_sku_is_404_unknown_sku(client: TestClient) -> None:
    assert_error(client.get(f"{API}/products/NOPE"), 404, "unknown_sku")


# --- listing ----------------------------------------------------------------------------------


def test_pages_cover_every_product_once_in_sku_order(client: TestClient, manager: Actor) -> None:
    skus = [f"P-{n:03d}" for n in range(23)] + ["a-lower", "Z.9", "0x", "A_4", "b-1"]
    for sku in random.Random(4).sample(skus, len(skus)):
        _create(client, manager, product(sku))

    pages = _walk(client, limit=5)
    walked = [sku for page in pages for sku in page]

    assert [len(page) for page in pages] == [5, 5, 5, 5, 5, 3]
    assert walked == sorted(skus)
    assert _walk(client, limit=200) == [sorted(skus)]


def test_a_full_last_page_has_no_next_cursor(client: TestClient, manager: Actor) -> None:
    for n in range(4):
        _create(client, manager, product(f"S-{n}"))

    assert _walk(client, limit=2) == [["S-0", "S-1"], ["S-2", "S-3"]]


def test_products_added_during_a_walk_neither_repeat_nor_shift_pages(
    client: TestClient, manager: Actor
) -> None:
    for sku in ("B", "D", "F", "H"):
        _create(client, manager, product(sku))
    first = client.get(f"{API}/products", params={"limit": 2}).json()

    _create(client, manager, product("A"))  # before the cursor: not seen in this walk
    _create(client, manager, product("E"))  # after it: seen in order
    rest = client.get(
        f"{API}/products", params={"limit": 10, "cursor": first["next_cursor"]}
    ).json()

    assert [p["sku"] for p in first["items"]] == ["B", "D"]
    assert [p["sku"] for p in rest["items"]] == ["E", "F", "H"]
    assert rest["next_cursor"] is None


def test_query_matches_sku_or_name_ignoring_case(client: TestClient, manager: Actor) -> None:
    _create(client, manager, product("MILK-1", name="Whole milk"))
    _create(client, manager, product("YOG-1", name="Greek Yoghurt made with MILK"))
    _create(client, manager, product("milkshake", name="Shake"))
    _create(client, manager, product("RICE", name="Basmati rice"))

    assert _skus(client, "milk") == ["MILK-1", "YOG-1", "milkshake"]
    assert _skus(client, "RiCe") == ["RICE"]
    assert _skus(client, "ghurt MADE") == ["YOG-1"]
    assert _skus(client, "nothing") == []


def test_query_treats_percent_underscore_and_backslash_literally(
    client: TestClient, manager: Actor
) -> None:
    _create(client, manager, product("JUICE-100", name="100% juice"))
    _create(client, manager, product("JUICE-10", name="100 juice"))
    _create(client, manager, product("SNAKE", name="snake_case"))
    _create(client, manager, product("SNAKX", name="snakexcase"))
    _create(client, manager, product("SLASH", name="back\\slash"))

    assert _skus(client, "%") == ["JUICE-100"]
    assert _skus(client, "0% j") == ["JUICE-100"]
    assert _skus(client, "_") == ["SNAKE"]
    assert _skus(client, "e_c") == ["SNAKE"]
    assert _skus(client, "\\") == ["SLASH"]
    assert _skus(client, "k\\s") == ["SLASH"]


def test_query_pages_only_through_matches(client: TestClient, manager: Actor) -> None:
    for n in range(7):
        _create(client, manager, product(f"TEA-{n}", name="Tea"))
        _create(client, manager, product(f"COF-{n}", name="Coffee"))

    pages = _walk(client, limit=3, q="tea")

    assert pages == [["TEA-0", "TEA-1", "TEA-2"], ["TEA-3", "TEA-4", "TEA-5"], ["TEA-6"]]


# --- editing ----------------------------------------------------------------------------------


def test_patch_changes_only_the_given_fields_and_bumps_the_version(
    client: TestClient, manager: Actor
) -> None:
    created = _create(
        client,
        manager,
        product(
            "OIL", name="Olive oil", price_cents=999, attributes={"origin": "ES"}, min_temp_c=5
        ),
    )

    r = client.patch(f"{API}/products/OIL", headers=manager.headers, json={"price_cents": 899})
    again = client.patch(
        f"{API}/products/OIL",
        headers=manager.headers,
        json={"attributes": {"origin": "IT"}, "min_temp_c": None},
    )

    assert r.status_code == 200, r.text
    assert r.json()["price_cents"] == 899
    assert r.json()["version"] == 2
    assert {k: r.json()[k] for k in ("name", "currency", "attributes", "min_temp_c")} == {
        "name": "Olive oil",
        "currency": "EUR",
        "attributes": {"origin": "ES"},
        "min_temp_c": 5,
    }
    assert _moment(r.json()["updated_at"]) > _moment(created["updated_at"])
    assert r.json()["created_at"] == created["created_at"]
    assert again.json()["version"] == 3
    assert again.json()["attributes"] == {"origin": "IT"}
    assert again.json()["min_temp_c"] is None
    assert client.get(f"{API}/products/OIL").json() == again.json()


def test_patch_that_changes_nothing_keeps_the_version(client: TestClient, manager: Actor) -> None:
    _create(client, manager, product("SALT", price_cents=50))

    same = client.patch(f"{API}/products/SALT", headers=manager.headers, json={"price_cents": 50})
    empty = client.patch(f"{API}/products/SALT", headers=manager.headers, json={})

    assert same.status_code == empty.status_code == 200
    assert same.json()["version"] == empty.json()["version"] == 1


@pytest.mark.parametrize(
    "change",
    [{"min_temp_c": 7}, {"max_temp_c": 1}, {"min_temp_c": 10, "max_temp_c": 9}],
)
def test_patch_that_would_invert_the_temperature_range_is_422(
    client: TestClient, manager: Actor, change: dict[str, float]
) -> None:
    _create(client, manager, product("FISH", min_temp_c=2, max_temp_c=6))

    r = client.patch(f"{API}/products/FISH", headers=manager.headers, json=change)

    assert_error(r, 422)
    unchanged = client.get(f"{API}/products/FISH").json()
    assert (unchanged["min_temp_c"], unchanged["max_temp_c"], unchanged["version"]) == (2, 6, 1)


@pytest.mark.parametrize("field", ["name", "price_cents", "currency", "attributes"])
def test_patch_with_explicit_null_for_a_required_field_is_422(
    client: TestClient, manager: Actor, field: str
) -> None:
    _create(client, manager, product("JAM"))

    r = client.patch(f"{API}/products/JAM", headers=manager.headers, json={field: None})

    assert_error(r, 422, "validation_error")
    assert client.get(f"{API}/products/JAM").json()["version"] == 1


def test_patch_of_sku_or_unknown_field_is_422(client: TestClient, manager: Actor) -> None:
    _create(client, manager, product("FIG"))

    for change in ({"sku": "FIG-2"}, {"colour": "purple"}, {"version": 7}):
        r = client.patch(f"{API}/products/FIG", headers=manager.headers, json=change)
        assert_error(r, 422, "validation_error")


def test_patch_of_unknown_sku_is_404(client: TestClient, manager: Actor) -> None:
    r = client.patch(f"{API}/products/NOPE", headers=manager.headers, json={"price_cents": 1})

    assert_error(r, 404, "unknown_sku")


@pytest.mark.parametrize("if_match", ['"1"', "1", "*"])
def test_patch_with_if_match_of_the_current_version_applies(
    client: TestClient, manager: Actor, if_match: str
) -> None:
    _create(client, manager, product("RYE", price_cents=300))

    r = client.patch(
        f"{API}/products/RYE",
        headers={**manager.headers, "If-Match": if_match},
        json={"price_cents": 320},
    )

    assert r.status_code == 200, r.text
    assert (r.json()["price_cents"], r.json()["version"]) == (320, 2)


def test_patch_with_a_stale_if_match_is_409_stale_version_and_changes_nothing(
    client: TestClient, manager: Actor, actors: Actors
) -> None:
    _create(client, manager, product("OAT", name="Oats", price_cents=300))
    other = actors.make(Role.ADMIN)
    first = client.patch(
        f"{API}/products/OAT",
        headers={**other.headers, "If-Match": '"1"'},
        json={"name": "Rolled oats"},
    )

    stale = client.patch(
        f"{API}/products/OAT",
        headers={**manager.headers, "If-Match": '"1"'},
        json={"price_cents": 1},
    )
    # A stale edit is refused even when it would change nothing: it was made on old values.
    stale_no_op = client.patch(
        f"{API}/products/OAT", headers={**manager.headers, "If-Match": "1"}, json={}
    )

    assert first.json()["version"] == 2
    detail = assert_error(stale, 409, "stale_version")
    assert "version 1" in detail and "version 2" in detail
    assert_error(stale_no_op, 409, "stale_version")
    current = client.get(f"{API}/products/OAT").json()
    assert (current["name"], current["price_cents"], current["version"]) == ("Rolled oats", 300, 2)


@pytest.mark.parametrize("if_match", ['W/"1"', '"1", "2"', "one", '"-1"', ""])
def test_patch_with_a_malformed_if_match_is_422(
    client: TestClient, manager: Actor, if_match: str
) -> None:
    _create(client, manager, product("BRAN"))

    r = client.patch(
        f"{API}/products/BRAN",
        headers={**manager.headers, "If-Match": if_match},
        json={"price_cents": 5},
    )

    assert_error(r, 422, "validation_error")
    assert client.get(f"{API}/products/BRAN").json()["version"] == 1


def test_patch_with_if_match_of_unknown_sku_is_404(client: TestClient, manager: Actor) -> None:
    r = client.patch(
        f"{API}/products/NOPE",
        headers={**manager.headers, "If-Match": '"1"'},
        json={"price_cents": 1},
    )

    assert_error(r, 404, "unknown_sku")


# --- archiving --------------------------------------------------------------------------------


def test_archived_product_stays_readable_leaves_the_list_and_cannot_be_ordered(
    client: TestClient, manager: Actor, customer: Actor
) -> None:
    add_warehouses(client, manager.headers)
    add_product(client, manager.headers, "OLD", stock={"BER": 5})
    add_product(client, manager.headers, "NEW", stock={"BER": 5})

    archived = client.delete(f"{API}/products/OLD", headers=manager.headers)
    order = client.post(
        f"{API}/orders",
        headers={**customer.headers, "Idempotency-Key": str(uuid.uuid4())},
        json={"lines": [{"sku": "OLD", "qty": 1}]},
    )

    assert archived.status_code == 200, archived.text
    assert archived.json()["archived"] is True
    assert archived.json()["version"] == 2
    assert client.get(f"{API}/products/OLD").json() == archived.json()
    assert _walk(client, limit=50) == [["NEW"]]
    assert _skus(client, "OLD") == []
    assert "OLD" in assert_error(order, 404, "unknown_sku")


def test_archiving_twice_changes_nothing_more(client: TestClient, manager: Actor) -> None:
    _create(client, manager, product("GONE"))
    first = client.delete(f"{API}/products/GONE", headers=manager.headers)

    second = client.delete(f"{API}/products/GONE", headers=manager.headers)

    assert second.status_code == 200
    assert second.json() == first.json()


def test_archiving_unknown_sku_is_404(client: TestClient, manager: Actor) -> None:
    assert_error(client.delete(f"{API}/products/NOPE", headers=manager.headers), 404, "unknown_sku")


# --- roles ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.CUSTOMER, Role.CLERK, Role.DEVICE])
def test_only_managers_and_admins_may_change_the_catalog(
    client: TestClient, manager: Actor, actors: Actors, role: Role
) -> None:
    _create(client, manager, product("KEEP"))
    outsider = actors.make(role)

    created = client.post(f"{API}/products", headers=outsider.headers, json=product("MINE"))
    patched = client.patch(
        f"{API}/products/KEEP", headers=outsider.headers, json={"price_cents": 1}
    )
    deleted = client.delete(f"{API}/products/KEEP", headers=outsider.headers)

    for r in (created, patched, deleted):
        assert_error(r, 403, "forbidden")
    assert client.get(f"{API}/products/KEEP").json()["version"] == 1
    assert_error(client.get(f"{API}/products/MINE"), 404, "unknown_sku")


def test_admin_may_change_the_catalog(client: TestClient, actors: Actors) -> None:
    admin = actors.make(Role.ADMIN)

    created = client.post(f"{API}/products", headers=admin.headers, json=product("ADM"))
    patched = client.patch(f"{API}/products/ADM", headers=admin.headers, json={"name": "Admin's"})

    assert created.status_code == 201
    assert patched.json()["name"] == "Admin's"


def test_anonymous_callers_may_read_but_not_write_the_catalog(
    client: TestClient, manager: Actor
) -> None:
    _create(client, manager, product("OPEN"))

    writes = [
        client.post(f"{API}/products", json=product("ANON")),
        client.patch(f"{API}/products/OPEN", json={"price_cents": 1}),
        client.delete(f"{API}/products/OPEN"),
    ]

    for r in writes:
        assert_error(r, 401, "not_authenticated")
        assert r.headers["www-authenticate"] == "Bearer"
    assert client.get(f"{API}/products/OPEN").status_code == 200
    assert _walk(client, limit=10) == [["OPEN"]]
