"""Hardening of the HTTP surface: security headers, CORS, and 500s that leak nothing."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import create_engine, text

from storekeeper.api.app import create_app
from storekeeper.bootstrap import bootstrap
from storekeeper.config import Settings
from tests.conftest import TEST_SECRET, Actor
from tests.e2e.api_support import API, product

STRICT_CSP = "default-src 'none'; frame-ancestors 'none'"
ORIGIN = "https://shop.example.com"


def _client(settings: Settings, **changes: object) -> Iterator[TestClient]:
    container = bootstrap(settings.model_copy(update=changes))
    try:
        with TestClient(create_app(container=container), raise_server_exceptions=False) as tc:
            yield tc
    finally:
        container.close()


@pytest.fixture
def production_client(settings: Settings) -> Iterator[TestClient]:
    """The app as deployed: ``STOREKEEPER_ENV=production``."""
    yield from _client(settings, env="production")


@pytest.fixture
def cors_client(settings: Settings) -> Iterator[TestClient]:
    """The app with one allowed cross-origin caller."""
    yield from _client(settings, cors_origins=[ORIGIN])


def _assert_baseline(headers: httpx.Headers) -> None:
    assert headers.get("x-content-type-options") == "nosniff"
    assert headers.get("referrer-policy") == "no-referrer"
    assert headers.get("x-frame-options") == "DENY"


def _directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        parsed[name] = sources
    return parsed


# --- security headers -------------------------------------------------------------------------


def test_api_answers_carry_the_strict_headers_and_are_never_cached(
    client: TestClient, manager: Actor
) -> None:
    client.post(f"{API}/products", headers=manager.headers, json=product("HDR-1"))
    answers = [
        client.get(f"{API}/products"),  # public
        client.get(f"{API}/warehouses", headers=manager.headers),  # authenticated
        client.get(f"{API}/products/NOPE"),  # 404 from a domain error
        client.get(f"{API}/warehouses"),  # 401
        client.post(f"{API}/products", headers=manager.headers, json={}),  # 422
        client.put(f"{API}/products"),  # 405
        client.get(f"{API}/nowhere"),  # 404 from routing
        client.post(
            f"{API}/products",
            headers={**manager.headers, "Content-Type": "application/json"},
            content=b" " * 2_000_000,
        ),  # 413 from the body size limit
        client.get("/healthz"),
    ]

    for r in answers:
        _assert_baseline(r.headers)
        assert r.headers["content-security-policy"] == STRICT_CSP, r.request.url
        assert r.headers["cache-control"] == "no-store", r.request.url
        assert "strict-transport-security" not in r.headers


def test_swagger_ui_policy_allows_exactly_the_assets_its_page_loads(client: TestClient) -> None:
    r = client.get("/docs")

    assert r.status_code == 200
    _assert_baseline(r.headers)
    assert "cache-control" not in r.headers
    policy = _directives(r.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["connect-src"] == ["'self'"]  # the spec and "Try it out"
    html = r.text
    scripts = re.findall(r'<script src="([^"]+)"', html)
    styles = re.findall(r'<link type="text/css" rel="stylesheet" href="([^"]+)"', html)
    icons = re.findall(r'<link rel="shortcut icon" href="([^"]+)"', html)
    assert scripts and styles and icons

    def origin(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    # Served from the package: every asset is on this server, and the policy names no host.
    for url in [*scripts, *styles, *icons]:
        assert not urlsplit(url).netloc, url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.content
    assert "http" not in r.headers["content-security-policy"]
    script_sources = [s for s in policy["script-src"] if not s.startswith("'sha256-")]
    assert script_sources == ["'self'"]
    assert "'self'" in policy["style-src"]
    assert "'self'" in policy["img-src"]
    # The inline bootstrap script runs because its hash is listed, not through 'unsafe-inline'.
    inline = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert inline
    for script in inline:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy["script-src"]
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]


def test_the_docs_page_loads_no_asset_from_another_host(client: TestClient) -> None:
    html = client.get("/docs").text
    external = [
        url
        for url in re.findall(r'(?:src|href)="([^"]+)"', html)
        if urlsplit(url).netloc or url.startswith("//")
    ]
    assert external == []
    assert client.get("/docs/oauth2-redirect").status_code == 200
    assert client.get("/redoc").status_code == 404  # not served: it would need a CDN


def test_openapi_document_is_cacheable_and_strict(client: TestClient) -> None:
    r = client.get("/openapi.json")

    assert r.status_code == 200
    _assert_baseline(r.headers)
    assert r.headers["content-security-policy"] == STRICT_CSP
    assert "cache-control" not in r.headers


def test_hsts_only_in_production(client: TestClient, production_client: TestClient) -> None:
    local = client.get("/healthz")
    deployed = [production_client.get("/healthz"), production_client.get("/docs")]

    assert "strict-transport-security" not in local.headers
    for r in deployed:
        assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        _assert_baseline(r.headers)


# --- CORS -------------------------------------------------------------------------------------


def test_without_configured_origins_there_are_no_cors_headers(client: TestClient) -> None:
    simple = client.get(f"{API}/products", headers={"Origin": ORIGIN})
    preflight = client.options(
        f"{API}/products",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )

    for r in (simple, preflight):
        assert not [h for h in r.headers if h.lower().startswith("access-control-")], r.headers
    assert preflight.status_code == 405


def test_configured_origin_may_call_with_a_bearer_token(cors_client: TestClient) -> None:
    preflight = cors_client.options(
        f"{API}/orders",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    simple = cors_client.get(f"{API}/products", headers={"Origin": ORIGIN})

    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    methods = {m.strip() for m in preflight.headers["access-control-allow-methods"].split(",")}
    assert methods == {"GET", "POST", "PATCH", "DELETE"}
    allowed = {
        h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")
    }
    assert {"authorization", "content-type", "idempotency-key"} <= allowed
    assert "access-control-allow-credentials" not in preflight.headers
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    _assert_baseline(simple.headers)


def test_other_origins_get_no_cors_permission(cors_client: TestClient) -> None:
    evil = "https://evil.example.net"
    preflight = cors_client.options(
        f"{API}/orders",
        headers={"Origin": evil, "Access-Control-Request-Method": "POST"},
    )
    simple = cors_client.get(f"{API}/products", headers={"Origin": evil})

    assert preflight.status_code == 400
    for r in (preflight, simple):
        assert "access-control-allow-origin" not in r.headers


def test_wildcard_origin_is_refused_in_production(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r'not "\*", when STOREKEEPER_ENV=production'):
        Settings(
            env="production",
            secret_key=TEST_SECRET,  # type: ignore[arg-type]
            database_url=f"sqlite:///{tmp_path / 'x.db'}",
            cors_origins=["*"],
            _env_file=None,  # type: ignore[call-arg]
        )


@pytest.mark.parametrize(
    "origin", ["https://shop.example.com/", "https://shop.example.com/app", "shop.example.com"]
)
def test_origins_that_could_never_match_are_refused(origin: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings(cors_origins=[origin], _env_file=None)  # type: ignore[call-arg]


# --- unexpected errors ------------------------------------------------------------------------


@pytest.fixture
def warehouse_table_gone(database_url: str) -> Iterator[None]:
    """The warehouse table renamed away for the test (a broken schema), put back afterwards."""
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE inventory_warehouse RENAME TO inventory_warehouse_hidden"))
    try:
        yield
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("ALTER TABLE inventory_warehouse_hidden RENAME TO inventory_warehouse")
            )
        engine.dispose()


def test_an_unexpected_database_error_is_a_bare_500_and_is_logged(
    client: TestClient,
    manager: Actor,
    warehouse_table_gone: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="storekeeper.api.errors"):
        r = client.get(f"{API}/warehouses", headers=manager.headers)

    assert r.status_code == 500
    assert r.json() == {"detail": "internal error", "code": "internal_error"}
    for leak in ("inventory_warehouse", "SELECT", "Traceback", "sqlalchemy", 'File "'):
        assert leak.lower() not in r.text.lower()
    _assert_baseline(r.headers)
    assert r.headers["content-security-policy"] == STRICT_CSP
    assert r.headers["cache-control"] == "no-store"
    logged = [rec for rec in caplog.records if rec.getMessage().startswith("unhandled error")]
    assert logged and logged[0].exc_info is not None
    assert "inventory_warehouse" in str(logged[0].exc_info[1])
