"""The clerk app's IndexedDB store (storekeeper/web/app/store.js) in a real browser: the server
copy kept as chunk records plus a per-row overlay answers like one record per row would, across
two tabs' Store objects and compactions, and a version 1 database upgrades without losing its
rows, cursor or queue (docs/clerk-app.md, "How the server copy is stored")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from playwright.sync_api import Browser, Page

from tests.conftest import LiveServer

_BLANK = "/app/__store_test__"
"""A blank page of the app's origin (answered by Playwright): the app's modules are imported,
app.js does not run, so nothing else opens the database."""
KEYS = ["A", "B", "C", "D", "E", "F"]

_RUN = """async ([steps, keys]) => {
  const { Store, DB_NAME } = await import("/app/store.js");
  await new Promise((ok, fail) => {
    const request = indexedDB.deleteDatabase(DB_NAME);
    request.onsuccess = ok;
    request.onerror = () => fail(request.error);
  });
  // Two Store objects on one database, as two tabs have; "a" compacts after every page.
  const tabs = { a: await Store.open(), b: await Store.open() };
  const opened = [tabs.a, tabs.b];
  tabs.a.compactAt = 1;
  try {
    let pages = 0;
    for (const step of steps) {
      const store = tabs[step.by];
      if (step.kind === "compact") await store.compact();
      else await store.applyPage(step.changes, `cursor-${++pages}`);
    }
    const read = async (store) => {
      const one = {};  // first, before products() reads every chunk (and the index again)
      for (const key of keys) {
        one[key] = [(await store.product(key)) ?? null, (await store.stock(key, "BER")).on_hand];
      }
      return {
        one,
        products: await store.products(),
        stock: await store.stockRows(),
        cursor: (await store.getMeta("cursor")) ?? null,
      };
    };
    const fresh = await Store.open();
    opened.push(fresh);
    return [await read(tabs.a), await read(tabs.b), await read(fresh)];
  } finally {
    for (const store of opened) store.db.close();  // or the next deleteDatabase waits
  }
}"""

_VERSION_1 = """async ([products, stock]) => {
  const { Store, DB_NAME } = await import("/app/store.js");
  await new Promise((ok, fail) => {
    const request = indexedDB.deleteDatabase(DB_NAME);
    request.onsuccess = ok;
    request.onerror = () => fail(request.error);
  });
  // The layout of schema version 1 (one record per row), with a copy, a cursor and a queue.
  await new Promise((ok, fail) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      const db = request.result;
      db.createObjectStore("products", { keyPath: "sku" });
      db.createObjectStore("stock", { keyPath: "sku" });
      const queue = db.createObjectStore("queue", { keyPath: "seq", autoIncrement: true });
      queue.createIndex("id", "id", { unique: true });
      const verdicts = db.createObjectStore("verdicts", { keyPath: "id" });
      verdicts.createIndex("at", "at");
      db.createObjectStore("meta");
    };
    request.onerror = () => fail(request.error);
    request.onsuccess = () => {
      const db = request.result;
      const tx = db.transaction(["products", "stock", "queue", "meta"], "readwrite");
      for (const row of products) tx.objectStore("products").put(row);
      for (const row of stock) tx.objectStore("stock").put(row);
      tx.objectStore("queue").add({
        id: "m-1", type: "stock.sell", data: { warehouse: "BER", sku: "P1", qty: 2 },
        hlc: "1-0-r", created: 1,
      });
      tx.objectStore("meta").put("cursor-v1", "cursor");
      tx.oncomplete = () => { db.close(); ok(); };
      tx.onerror = () => fail(tx.error);
    };
  });
  const store = await Store.open();
  const upgraded = {
    products: await store.products(),
    stock: await store.stockRows(),
    queue: (await store.queued()).map((m) => m.id),
    cursor: await store.getMeta("cursor"),
    p1: (await store.stock("P1", "BER")).on_hand,
  };
  store.compactAt = 1;  // the next page folds the old rows into chunks
  await store.applyPage([
    { entity: "product", key: "P1", op: "upsert", version: 9,
      data: { ...products[0], name: "New" } },
    { entity: "product", key: "P2", op: "delete", version: 9, data: null },
    { entity: "stock", key: "P9", op: "upsert", version: 9,
      data: { sku: "P9", warehouse: "BER", on_hand: 9, reserved: 0, available: 9 } },
  ], "cursor-v2");
  const after = {
    products: (await store.products()).map((p) => [p.sku, p.name]),
    stock: (await store.stockRows()).map((s) => [s.sku, s.on_hand]),
    overlay: await store.db.count("products") + await store.db.count("stock"),
    chunks: await store.db.count("product_chunks") + await store.db.count("stock_chunks"),
    queue: (await store.queued()).map((m) => m.id),
    p1: (await store.stock("P1", "BER")).on_hand,
  };
  store.db.close();
  return { upgraded, after };
}"""


@pytest.fixture
def blank(browser: Browser, live_server: LiveServer) -> Iterator[Page]:
    """A blank page of the live server's origin, in a fresh context (an empty IndexedDB)."""
    context = browser.new_context(service_workers="block")
    page = context.new_page()
    page.route(
        f"{live_server.url}{_BLANK}",
        lambda route: route.fulfill(status=200, content_type="text/html", body="<!doctype html>"),
    )
    page.goto(f"{live_server.url}{_BLANK}")
    yield page
    context.close()


def _data(entity: str, key: str, value: int) -> dict[str, Any]:
    if entity == "product":
        return {"sku": key, "name": f"Tea {value}", "price_cents": value, "currency": "EUR"}
    return {"sku": key, "warehouse": "BER", "on_hand": value, "reserved": 0, "available": value}


_changes = st.lists(
    st.tuples(
        st.sampled_from(["product", "stock"]),
        st.sampled_from(KEYS),
        st.sampled_from(["upsert", "delete"]),
        st.integers(0, 99),
    ),
    max_size=6,
)
_steps = st.lists(
    st.one_of(
        st.tuples(st.just("page"), st.sampled_from(["a", "b"]), _changes),
        st.tuples(st.just("compact"), st.sampled_from(["a", "b"]), st.just([])),
    ),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=_steps)
def test_chunks_and_overlay_answer_like_one_record_per_row(
    blank: Page, steps: list[tuple[str, str, list[tuple[str, str, str, int]]]]
) -> None:
    model: dict[str, dict[str, dict[str, Any]]] = {"product": {}, "stock": {}}
    script_steps: list[dict[str, Any]] = []
    pages = 0
    for kind, by, changes in steps:
        if kind == "compact":
            script_steps.append({"kind": kind, "by": by})
            continue
        pages += 1
        page_changes: list[dict[str, Any]] = []
        for entity, key, op, value in changes:
            data = _data(entity, key, value) if op == "upsert" else None
            page_changes.append(
                {"entity": entity, "key": key, "op": op, "version": pages, "data": data}
            )
            if data is None:
                model[entity].pop(key, None)
            else:
                model[entity][key] = data
        script_steps.append({"kind": kind, "by": by, "changes": page_changes})

    states = blank.evaluate(_RUN, [script_steps, KEYS])

    products = [model["product"][k] for k in sorted(model["product"])]
    stock = [model["stock"][k] for k in sorted(model["stock"])]
    one = {
        key: [model["product"].get(key), model["stock"].get(key, {}).get("on_hand", 0)]
        for key in KEYS
    }
    for state in states:  # the writing tabs, then a fresh Store
        assert state["one"] == one
        assert state["products"] == products
        assert state["stock"] == stock
        assert state["cursor"] == (f"cursor-{pages}" if pages else None)


def test_a_version_1_database_keeps_its_copy_cursor_and_queue(blank: Page) -> None:
    products = [_data("product", f"P{n}", n) for n in (1, 2, 3)]
    stock = [_data("stock", f"P{n}", 10 * n) for n in (1, 2, 3)]

    result = blank.evaluate(_VERSION_1, [products, stock])

    upgraded = result["upgraded"]
    assert upgraded["products"] == products
    assert upgraded["stock"] == stock
    assert upgraded["queue"] == ["m-1"]
    assert upgraded["cursor"] == "cursor-v1"
    assert upgraded["p1"] == 10 - 2  # the server copy plus the queued sale
    after = result["after"]
    assert after["products"] == [["P1", "New"], ["P3", "Tea 3"]]
    assert after["stock"] == [["P1", 10], ["P2", 20], ["P3", 30], ["P9", 9]]
    assert after["overlay"] == 0  # folded into chunks
    assert after["chunks"] >= 2
    assert after["queue"] == ["m-1"]
    assert after["p1"] == 10 - 2


_TAIL = """async (texts) => {
  const { tail } = await import("/app/replica.js");
  return texts.map((text) => tail(text));
}"""


def test_the_next_cursor_is_read_from_the_end_of_a_page(blank: Page) -> None:
    page = (
        '{"changes":[{"entity":"product","key":"A","op":"upsert","version":1,'
        '"data":{"sku":"A","attributes":{"cursor":"no","has_more":false}}}],'
        '"cursor":"eyJ2IjoxfQ","has_more":true}'
    )
    inner_last = (  # a page whose last key "cursor" is inside a change: not the page's own
        '{"cursor":"c","has_more":true,"changes":[{"data":{"cursor":"x","has_more":false}}]}'
    )
    spaced = '{"changes": [], "cursor": "c", "has_more": false}'

    heads = blank.evaluate(_TAIL, [page, inner_last, spaced, "not json"])

    assert heads == [{"cursor": "eyJ2IjoxfQ", "has_more": True}, None, None, None]
