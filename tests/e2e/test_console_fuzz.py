"""Property-based fuzzing of the console's pages: no query string or path text makes one fail.

The console has no OpenAPI to drive schemathesis (test_api_fuzz.py), so Hypothesis strategies
build the requests: for every console GET route of the app (tests/console_support.py), signed in
as a manager, random query strings (the route's own parameters and junk keys, repeated keys,
huge and negative numbers, unicode, NUL, stray and invalid percent escapes, long text) and
random path parameter text. The answer must never be a 5xx nor show a traceback: a bad value is
an HTML 4xx page in words.

Both backends get the fixed edge cases of every real query parameter (NUL, huge and negative
numbers, broken escapes, long text, repeated keys: where SQLite and PostgreSQL fail
differently); the random examples run on SQLite only, to keep the file within its time budget.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import quote

import hypothesis
import pytest
from fastapi.testclient import TestClient
from hypothesis import strategies as st

from storekeeper.accounts.domain import Role
from storekeeper.config import Settings
from tests.conftest import Actors
from tests.console_support import (
    ConsoleRoute,
    build_shop,
    console_routes,
    param_values,
    sign_in,
)

EXAMPLES = 20
"""Random requests per route and backend; with the fixed edge cases below the file stays well
under a minute on 2 cores once every page is built (about 40 GET routes)."""

JUNK_KEYS = ("q", "limit", "cursor", "before", "page", "format", "status", "warehouse", "sku")
JUNK_KEYS += ("sort", "order", "next", "from", "to", "", "x", "a[]", "__proto__", "q.0")
ODD_VALUES = (
    "",
    "0",
    "-1",
    "-9223372036854775809",
    "9223372036854775808",
    str(10**40),
    "1e309",
    "NaN",
    "-0",
    "0x10",
    "true",
    "csv",
    "json",
    "open",
    "BER",
    "HAM",
    "SKU-1",
    "'; DROP TABLE catalog_product; --",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "🧊冷蔵Ωé",
    "\u202e\u200b",
    "x" * 5000,
)
RAW_FRAGMENTS = ("%", "%%", "%zz", "%00", "%ff%fe", "%C3", "%2", "&", "==", "%E2%80%AE")
"""Sent as they are, not escaped: broken percent escapes and stray separators."""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Without rate limits: a fuzzer is a burst of requests by design."""
    return settings.model_copy(update={"rate_limits_enabled": False})


def _value() -> st.SearchStrategy[str]:
    escaped = st.one_of(
        st.sampled_from(ODD_VALUES),
        st.integers(min_value=-(10**30), max_value=10**30).map(str),
        st.sampled_from((2**31, 2**63, -(2**63) - 1, 10**30)).map(str),
        st.text(max_size=40),
        st.text(alphabet=st.characters(codec="utf-8"), min_size=200, max_size=3000),
    ).map(lambda text: quote(text, safe=""))
    return st.one_of(escaped, st.sampled_from(RAW_FRAGMENTS))


def _query(route: ConsoleRoute) -> st.SearchStrategy[str]:
    # Half the keys are the route's own: junk alone rarely reaches the view's code.
    junk = st.sampled_from(JUNK_KEYS)
    keys = st.one_of(st.sampled_from(route.query_params), junk) if route.query_params else junk
    pair = st.tuples(keys, _value()).map(lambda kv: f"{quote(kv[0], safe='[]')}={kv[1]}")
    bare = st.sampled_from((*RAW_FRAGMENTS, "flag"))
    return st.lists(st.one_of(pair, pair, bare), max_size=8).map("&".join)


def _path(route: ConsoleRoute, real: dict[str, str]) -> st.SearchStrategy[str]:
    """The route's path, each parameter either an object that exists or random text."""
    if not route.path_params:
        return st.just(route.path)
    texts = st.one_of(
        st.sampled_from(ODD_VALUES[1:]).map(lambda t: quote(t, safe="")),
        st.text(min_size=1, max_size=60).map(lambda t: quote(t, safe="")),
        st.sampled_from(RAW_FRAGMENTS[2:5]),
    )
    params = {name: st.one_of(st.just(quote(real[name], safe="")), texts) for name in real}
    fixed = st.fixed_dictionaries(params)
    return fixed.map(lambda values: _fill(route.path, values))


def _fill(template: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template


@pytest.fixture
def manager_browser(
    client: TestClient, actors: Actors
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    admin, customer = actors.make(Role.ADMIN), actors.make(Role.CUSTOMER)
    clerk = actors.make(Role.CLERK, warehouses=["BER"])
    shop = build_shop(
        client,
        admin=admin.headers,
        customer=customer.headers,
        clerk=clerk.headers,
        clerk_id=clerk.id,
    )
    browser = sign_in(client.app, actors.make(Role.MANAGER))
    yield browser, shop.objects
    browser.close()


def test_no_query_string_or_path_text_makes_a_console_page_fail(
    backend: str, client: TestClient, manager_browser: tuple[TestClient, dict[str, str]]
) -> None:
    browser, objects = manager_browser
    routes = [route for route in console_routes(client.app) if route.method == "GET"]
    assert routes
    failures: list[str] = []
    for route in routes:
        real = param_values(route, objects)

        try:
            for query in _edge_queries(route):
                _check(browser, route, f"{route.url(real)}?{query}")
            if backend == "sqlite":
                _probe(browser, route, real)()
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    assert not failures, "\n".join(failures)


def _probe(browser: TestClient, route: ConsoleRoute, real: dict[str, str]) -> Callable[[], None]:
    """Hypothesis' random requests to ``route``."""

    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(path=_path(route, real), query=_query(route))
    def probe(path: str, query: str) -> None:
        _check(browser, route, f"{path}?{query}" if query else path)

    return probe


EDGE_VALUES = ("%00", "-1", str(10**40), "%ff%fe", "x" * 5000)


def _edge_queries(route: ConsoleRoute) -> Iterator[str]:
    """Each of the route's own query parameters with each edge value, and repeated."""
    for key in route.query_params:
        for value in EDGE_VALUES:
            yield f"{key}={value}"
        yield f"{key}=1&{key}=2&{key}="


def _check(browser: TestClient, route: ConsoleRoute, url: str) -> None:
    answer = browser.get(url)
    assert answer.status_code < 500, f"{route}: {url[:300]} answered {answer.status_code}"
    assert "Traceback" not in answer.text, f"{route}: {url[:300]} shows a traceback"
    if answer.status_code >= 400:  # an error is a page in words, not JSON
        kind = answer.headers.get("content-type", "")
        assert kind.startswith("text/html"), f"{route}: {url[:300]} answered {kind}"
