"""HTTP caching of ``GET /products/{sku}`` (ETag, 304, Cache-Control) and the per-process view
cache: dropped at once in the writing process, within the documented bound in another."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from storekeeper.config import Settings
from tests.conftest import Actor, start_server, stop_server
from tests.e2e.api_support import API, assert_error, product


def test_a_product_read_has_a_strong_etag_and_a_matching_if_none_match_is_304(
    client: TestClient, manager: Actor
) -> None:
    assert client.post(f"{API}/products", headers=manager.headers, json=product("TEA-1")).is_success
    url = f"{API}/products/TEA-1"
    first = client.get(url)
    assert first.status_code == 200
    assert first.headers["etag"] == '"1"'
    assert first.headers["cache-control"] == "public, no-cache"  # anonymous: shared caches too
    assert client.get(url, headers=manager.headers).headers["cache-control"] == "private, no-cache"
    for held in ('"1"', 'W/"1"', '"0", "1"', "*"):
        r = client.get(url, headers={"If-None-Match": held})
        assert r.status_code == 304, held
        assert r.content == b""
        assert r.headers["etag"] == '"1"'
    assert client.get(url, headers={"If-None-Match": '"2"'}).json() == first.json()

    # The ETag is what If-Match takes back; the edit is seen at once by this process.
    edit = client.patch(
        url, headers={**manager.headers, "If-Match": first.headers["etag"]}, json={"name": "Sencha"}
    )
    assert edit.status_code == 200, edit.text
    again = client.get(url, headers={"If-None-Match": '"1"'})
    assert again.status_code == 200
    assert again.headers["etag"] == '"2"'
    assert again.json()["name"] == "Sencha"

    assert_error(client.get(f"{API}/products/NOPE"), 404, "unknown_sku")
    assert client.get(f"{API}/products/{'X' * 65}").status_code == 422
    # Past its declared limit, If-None-Match is refused like any bad header (schemathesis found it).
    too_long = client.get(url, headers={"If-None-Match": '"1",' * 300})
    assert_error(too_long, 422, "validation_error")
    # Another route's fixed path under /products is still that route's, not a SKU.
    export = client.get(f"{API}/products/export", headers=manager.headers)
    assert export.status_code == 200, export.text
    assert "etag" not in export.headers


@pytest.mark.parametrize("backend", ["postgresql"])
def test_a_write_in_one_process_is_not_served_stale_by_another_past_the_bound(
    settings: Settings, manager: Actor, tmp_path: Path
) -> None:
    # The bound (docs/scaling.md): a view is served only while the process's last outbox read
    # began at most catalog_cache_max_stale_s ago. Generous here, so that a loaded machine
    # cannot make process B bypass its cache in step 1; the hub polls far more often.
    bound_s = 5.0
    tuned = settings.model_copy(update={"catalog_cache_max_stale_s": bound_s, "live_poll_s": 0.1})
    a = start_server(tuned, tmp_path / "a.log")
    b = start_server(tuned, tmp_path / "b.log")
    try:
        with (
            httpx.Client(base_url=a.url, timeout=30) as to_a,
            httpx.Client(base_url=b.url, timeout=30) as to_b,
        ):
            r = to_a.post(f"{API}/products", headers=manager.headers, json=product("TEA-2"))
            assert r.status_code == 201, r.text
            url = f"{API}/products/TEA-2"
            assert to_b.get(url).json()["version"] == 1  # B keeps this view

            # 1. B answers from its cache: a change made behind the app's back (no outbox
            # event) is not seen by B.
            engine = create_engine(tuned.effective_database_url)
            with engine.begin() as connection:
                connection.execute(
                    text("UPDATE catalog_product SET name = 'behind' WHERE sku = 'TEA-2'")
                )
            engine.dispose()
            assert to_b.get(url).json()["name"] != "behind"

            # 2. An edit through A: B may answer version 1 for a while, never after the bound.
            edit = to_a.patch(url, headers=manager.headers, json={"price_cents": 999})
            assert edit.status_code == 200, edit.text
            written = time.monotonic()
            while True:
                sent = time.monotonic()
                seen = to_b.get(url).json()
                if seen["version"] == 2:
                    break
                assert sent - written <= bound_s, "B served a stale view past the bound"
                time.sleep(0.02)
            assert seen["price_cents"] == 999
    finally:
        stop_server(a)
        stop_server(b)
