"""The console's products pages over plain HTTP: paging, htmx fragments, CSV exports, roles."""

from __future__ import annotations

import csv
import io
import re

import pytest
from fastapi.testclient import TestClient

from storekeeper.accounts.domain import Role
from storekeeper.bootstrap import Container
from storekeeper.catalog import service as catalog
from storekeeper.catalog.schemas import ProductCreate
from storekeeper.inventory import ledger, warehouses
from tests.conftest import Actor, Actors
from tests.e2e.test_console_http import _signed_in


def _products(container: Container, count: int, *, prefix: str = "P", name: str = "Tea") -> None:
    with container.db.transaction() as session:
        for i in range(count):
            body = ProductCreate(sku=f"{prefix}-{i:03d}", name=f"{name} {i}", price_cents=100 + i)
            catalog.create(session, data=body.model_dump())


def _skus(page: str) -> list[str]:
    return re.findall(r'<a href="/products/([^"]+)">', page)


def _next(page: str) -> str | None:
    found = re.search(r'id="products-next" href="([^"]+)"', page)
    return found[1].replace("&amp;", "&") if found else None


def _rows(answer_text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(answer_text)))


def test_next_page_links_walk_every_product_of_a_search_once_in_sku_order(
    client: TestClient, manager: Actor, container: Container
) -> None:
    _products(container, 120, prefix="TEA", name="Green tea")
    _products(container, 5, prefix="JAM", name="Jam")
    _signed_in(client, manager)

    seen: list[str] = []
    url: str | None = "/products?q=tea"
    while url is not None:
        answer = client.get(url)
        assert answer.status_code == 200, answer.text
        seen += _skus(answer.text)
        url = _next(answer.text)
        assert url is None or re.fullmatch(r"/products\?q=tea&cursor=[A-Za-z0-9_-]+", url)

    assert seen == [f"TEA-{i:03d}" for i in range(120)]


def test_an_htmx_request_gets_the_table_only_with_the_address_to_show(
    client: TestClient, manager: Actor, container: Container
) -> None:
    _products(container, 3)
    _signed_in(client, manager)

    fragment = client.get("/products?q=tea+1&show=active", headers={"HX-Request": "true"})
    restore = client.get(
        "/products?q=tea+1",
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )

    assert fragment.status_code == 200
    assert "<html" not in fragment.text and "<table>" in fragment.text
    assert _skus(fragment.text) == ["P-001"]
    assert fragment.headers["hx-push-url"] == "/products?q=tea+1"
    assert "HX-Request" in fragment.headers["vary"]
    assert "<html" in restore.text  # the back button after a cache miss needs the whole page


def test_archived_products_are_listed_when_asked_for(
    client: TestClient, manager: Actor, container: Container
) -> None:
    _products(container, 3)
    with container.db.transaction() as session:
        catalog.archive(session, sku="P-001")
    _signed_in(client, manager)

    assert _skus(client.get("/products").text) == ["P-000", "P-002"]
    assert _skus(client.get("/products?show=archived").text) == ["P-001"]
    everything = client.get("/products?show=all").text
    assert _skus(everything) == ["P-000", "P-001", "P-002"]
    assert everything.count(">archived</span>") == 1


def test_csv_export_has_every_page_of_the_filter_and_defuses_formulas(
    client: TestClient, manager: Actor, container: Container
) -> None:
    _products(container, 450, prefix="TEA", name="Tea")
    _products(container, 3, prefix="CAKE", name="Cake")
    with container.db.transaction() as session:
        body = ProductCreate(sku="EVIL", name="=cmd()", price_cents=1)
        catalog.create(session, data=body.model_dump())
    _signed_in(client, manager)

    page = client.get("/products?q=tea")
    answer = client.get("/products?q=tea&format=csv")
    evil = client.get("/products?q=cmd&format=csv")

    assert 'href="/products?q=tea&amp;format=csv"' in page.text
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert "attachment" in answer.headers["content-disposition"]
    rows = _rows(answer.text)
    assert [r["sku"] for r in rows] == [f"TEA-{i:03d}" for i in range(450)]
    assert rows[7]["price_cents"] == "107" and rows[7]["archived"] == "no"
    assert _rows(evil.text)[0]["name"] == "'=cmd()"


def test_movements_page_by_older_links_and_export_whole_history_of_a_clerks_warehouses(
    client: TestClient, manager: Actor, actors: Actors, container: Container
) -> None:
    _products(container, 1)
    with container.db.transaction() as session:
        for code in ("BER", "HAM"):
            warehouses.create_warehouse(session, code=code, name=code, lat=52.5, lon=13.4)
        for i in range(60):
            ledger.record_movement(
                session, sku="P-000", warehouse="BER", delta=i + 1, reason="receipt"
            )
        ledger.record_movement(session, sku="P-000", warehouse="HAM", delta=7, reason="receipt")
    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    _signed_in(client, clerk)

    first = client.get("/products/P-000")
    older = re.search(r'href="(/products/P-000\?before=\d+)#movements">Older', first.text)
    assert older, first.text
    second = client.get(older[1])
    exported = _rows(client.get("/products/P-000/movements.csv").text)

    assert first.status_code == second.status_code == 200
    assert first.text.count("<td>BER</td>") == 1 + 50  # its stock row and a page of movements
    assert "HAM" not in first.text.split('id="stock"')[1]
    assert second.text.count("<td>BER</td>") == 1 + 10
    assert "Older</a>" not in second.text
    assert len(exported) == 60 and {r["warehouse"] for r in exported} == {"BER"}
    assert exported[0]["delta"] == "60" and exported[-1]["delta"] == "1"


@pytest.mark.parametrize(
    "path",
    [
        "/products?cursor=%00%01",
        "/products?cursor=" + "x" * 300,
        "/products?show=deleted",
        "/products?format=xml",
        "/products?q=" + "q" * 101,
        "/products/P-000?before=-1",
        "/products/P-000?before=99999999999999999999",
        "/products/P-000?done=hacked",
        "/products/NOPE",
        "/products/NOPE/movements.csv",
    ],
)
def test_a_bad_query_or_unknown_sku_is_a_page_in_words_not_a_500(
    client: TestClient, manager: Actor, container: Container, path: str
) -> None:
    _products(container, 1)
    _signed_in(client, manager)

    answer = client.get(path)

    assert answer.status_code in (404, 422), answer.text
    assert answer.headers["content-type"].startswith("text/html")


def test_a_clerk_may_read_but_not_create_edit_or_archive(
    client: TestClient, actors: Actors, container: Container
) -> None:
    _products(container, 1)
    token = _signed_in(client, actors.make(Role.CLERK, warehouses=["BER"]))

    page = client.get("/products/P-000")
    posts = [
        client.post("/products/new", data={"csrf_token": token, "sku": "X", "name": "X"}),
        client.post("/products/P-000/edit", data={"csrf_token": token, "name": "Mine"}),
        client.post("/products/P-000/archive", data={"csrf_token": token, "confirmed": "yes"}),
    ]

    assert page.status_code == 200
    assert "/edit" not in page.text and "Archive" not in page.text
    assert client.get("/products/P-000/edit").status_code == 403
    assert [p.status_code for p in posts] == [403, 403, 403]
    with container.db.reading() as session:
        product = catalog.get_or_raise(session, sku="P-000")
        assert (product.name, product.version, product.archived) == ("Tea 0", 1, False)


def test_archiving_without_javascript_asks_on_a_page_first(
    client: TestClient, manager: Actor, container: Container
) -> None:
    _products(container, 2)
    token = _signed_in(client, manager)

    page = client.get("/products/P-000")
    asked = client.get("/products/P-000/archive")
    unconfirmed = client.post(
        "/products/P-000/archive", data={"csrf_token": token}, follow_redirects=False
    )
    with container.db.reading() as session:
        assert not catalog.get_or_raise(session, sku="P-000").archived
    confirmed = client.post(
        "/products/P-000/archive",
        data={"csrf_token": token, "confirmed": "yes"},
        follow_redirects=False,
    )
    by_htmx = client.post(
        "/products/P-001/archive",
        data={"confirmed": "yes"},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )

    assert '<form method="get" action="/products/P-000/archive">' in page.text
    assert 'hx-confirm="Archive P-000?' in page.text
    assert 'name="confirmed" value="yes"' in asked.text
    assert unconfirmed.status_code == 303
    assert unconfirmed.headers["location"] == "/products/P-000/archive"
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == "/products/P-000?done=archived"
    assert by_htmx.status_code == 204
    assert by_htmx.headers["hx-redirect"] == "/products/P-001?done=archived"
    with container.db.reading() as session:
        assert catalog.get_or_raise(session, sku="P-000").archived
        assert catalog.get_or_raise(session, sku="P-001").archived


def test_an_edit_form_with_bad_values_says_what_is_wrong_by_each_field(
    client: TestClient, manager: Actor, container: Container
) -> None:
    _products(container, 1)
    token = _signed_in(client, manager)
    form = {
        "csrf_token": token,
        "version": "1",
        "name": "",
        "price": "-3",
        "currency": "euro",
        "min_temp_c": "cold",
        "attributes": "[1, 2]",
    }
    inverted = {**form, "name": "Tea", "price": "1", "currency": "EUR", "attributes": ""}

    answer = client.post("/products/P-000/edit", data=form)
    range_answer = client.post(
        "/products/P-000/edit", data={**inverted, "min_temp_c": "8", "max_temp_c": "2"}
    )

    assert answer.status_code == range_answer.status_code == 422
    for field in ("name", "price", "currency", "min_temp_c", "attributes"):
        assert re.search(rf'aria-describedby="[^"]*{field}-error"', answer.text), field
        assert f'id="{field}-error"' in answer.text
    assert "three capital letters" in answer.text
    assert 'id="max_temp_c-error">must not be below the lowest temperature' in range_answer.text
    with container.db.reading() as session:
        assert catalog.get_or_raise(session, sku="P-000").version == 1


def test_a_scanned_barcode_lists_its_product_first_also_archived_and_in_the_export(
    client: TestClient, manager: Actor, container: Container
) -> None:
    code = "4006381333931"
    _products(container, 3, prefix="TEA", name="Tea")
    with container.db.transaction() as session:
        for sku, codes in (("OLD", [code, "96385074"]), (f"TEA-{code}", [])):
            body = ProductCreate(sku=sku, name="Old tea", price_cents=1, barcodes=codes)
            catalog.create(session, data=body.model_dump())
        catalog.archive(session, sku="OLD")
    _signed_in(client, manager)

    page = client.get(f"/products?q={code}")
    later = client.get(f"/products?q={code}&cursor=VEVBLTAwMA")
    exported = _rows(client.get(f"/products?q={code}&format=csv").text)
    misread = client.get("/products?q=4006381333932")

    assert _skus(page.text) == ["OLD", f"TEA-{code}"]
    assert f"Barcode {code} is OLD's (archived), listed first" in page.text
    assert "barcode match" not in later.text  # later pages go on with the search only
    assert [(r["sku"], r["barcodes"]) for r in exported] == [
        ("OLD", f"{code}\n96385074"),
        (f"TEA-{code}", ""),
    ]
    assert misread.status_code == 200 and _skus(misread.text) == []
