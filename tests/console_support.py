"""The console's routes as the app has them, a small shop to fill their path parameters, and a
fingerprint of the database to prove that a refused request changed nothing.

The cross-cutting console checks (tests/e2e/test_console_security.py, test_console_fuzz.py,
tests/browser/test_console_accessibility.py) enumerate pages from ``create_app(...)`` itself, so a
page added later is covered without editing a list. The only hand-kept lists here are the ones
that cannot be derived: which routes are public (the sign-in form) and which value a path
parameter takes (``PARAM_NAMES`` / ``COLLECTIONS``).
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import func, select

from storekeeper.db import Database
from storekeeper.schema import metadata
from storekeeper.web.routes import is_console_path
from tests.conftest import Actor

EXCLUDED_PREFIXES = ("/static", "/live/events")
"""Console paths that are not pages: hashed files, and the SSE stream (tests/e2e/test_live.py)."""

PUBLIC = frozenset({("GET", "/login"), ("POST", "/login")})
"""The only console routes open without a session: the sign-in form (its POST has a
double-submit token of its own instead of the session's CSRF token)."""

_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?}")


@dataclass(frozen=True, slots=True)
class ConsoleRoute:
    """One method of one console route: ``GET /stock/{code}``."""

    method: str
    path: str
    """The template, e.g. ``/stock/{code}``."""
    query_params: tuple[str, ...] = ()
    """The query parameters the view declares (its own and its dependencies')."""
    required_query: tuple[str, ...] = ()
    """Those of them without a default: ``url_for`` fills them in."""

    @property
    def path_params(self) -> tuple[str, ...]:
        """The names of the path's parameters, in order."""
        return tuple(_PARAM.findall(self.path))

    @property
    def is_admin(self) -> bool:
        """Whether the route is under ``/admin``."""
        return self.path == "/admin" or self.path.startswith("/admin/")

    @property
    def is_public(self) -> bool:
        """Whether the route is open without a session (the sign-in form)."""
        return (self.method, self.path) in PUBLIC

    def url(self, values: Mapping[str, str]) -> str:
        """The path with every parameter replaced by ``values[name]`` (escaped)."""
        return _PARAM.sub(lambda m: quote(str(values[m.group(1)]), safe=""), self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def console_routes(app: FastAPI) -> list[ConsoleRoute]:
    """Every (method, route) of the console in ``app``: paths for which
    ``storekeeper.web.routes.is_console_path`` holds, minus static files and the SSE stream."""
    found: dict[tuple[str, str], ConsoleRoute] = {}
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path_format
        if not isinstance(route, APIRoute) or not path or not is_console_path(path):
            continue
        if path.startswith(EXCLUDED_PREFIXES):
            continue
        query = _query_names(route.dependant)
        names = tuple(sorted(query))
        required = tuple(sorted(name for name, needed in query.items() if needed))
        for method in sorted((context.methods or set()) - {"HEAD", "OPTIONS"}):
            found.setdefault((method, path), ConsoleRoute(method, path, names, required))
    return sorted(found.values(), key=lambda r: (r.path, r.method))


def _query_names(dependant: Dependant) -> dict[str, bool]:
    """The query parameters of a view and of its dependencies (a model's fields included),
    each with whether it is required."""
    names: dict[str, bool] = {}
    pending = [dependant]
    while pending:
        current = pending.pop()
        pending.extend(current.dependencies)
        for param in current.query_params:
            model = param.field_info.annotation
            if isinstance(model, type) and issubclass(model, BaseModel):
                for name, info in model.model_fields.items():
                    names[info.alias or name] = info.is_required()
            else:
                names[param.alias] = param.field_info.is_required()
    return names


def find_route(routes: list[ConsoleRoute], method: str, template: str) -> ConsoleRoute | None:
    """The route of ``method`` whose template has the shape of ``template`` (parameter names
    may differ: ``/stock/{code}`` finds ``/stock/{warehouse}``)."""
    shape = _PARAM.sub("{}", template)
    for route in routes:
        if route.method == method and _PARAM.sub("{}", route.path) == shape:
            return route
    return None


# --- values for path parameters ------------------------------------------------------------

PARAM_NAMES: dict[str, str] = {
    "sku": "sku",
    "product": "sku",
    "code": "warehouse",
    "warehouse": "warehouse",
    "warehouse_code": "warehouse",
    "wh": "warehouse",
    "order_id": "order",
    "order": "order",
    "sensor": "sensor",
    "sensor_id": "sensor",
    "alert_id": "alert",
    "alert": "alert",
    "exception_id": "exception",
    "exception": "exception",
    "user_id": "user",
    "user": "user",
    "device_id": "device",
    "device": "device",
    "room": "room",
    "run_id": "import",
}
"""Path parameter name -> which object of the shop it names."""

COLLECTIONS: dict[str, str] = {
    "products": "sku",
    "stock": "warehouse",
    "warehouses": "warehouse",
    "orders": "order",
    "sensors": "sensor",
    "cold-chain": "sensor",
    "alerts": "alert",
    "sync-exceptions": "exception",
    "exceptions": "exception",
    "users": "user",
    "devices": "device",
    "dashboard": "card",
}
"""For a generic name (``{id}``, ``{key}``): the literal segment before it -> the object."""


class UnknownParameter(LookupError):
    """A path parameter this module cannot give a value for: add it to PARAM_NAMES."""


def param_values(route: ConsoleRoute, objects: Mapping[str, str]) -> dict[str, str]:
    """A value for each path parameter of ``route`` from the shop's ``objects``."""
    values: dict[str, str] = {}
    segments = route.path.split("/")
    for index, segment in enumerate(segments):
        match = _PARAM.fullmatch(segment)
        if not match:
            continue
        name = match.group(1)
        kind = PARAM_NAMES.get(name)
        if kind is None and index > 0:
            kind = COLLECTIONS.get(segments[index - 1])
        if kind is None or kind not in objects:
            raise UnknownParameter(
                f"{route}: no value for {{{name}}}; add it to PARAM_NAMES in {__name__}"
            )
        values[name] = objects[kind]
    return values


QUERY_VALUES = {"q": "SKU", "format": "html"}
"""Values for required query parameters that name no object of the shop (else ``"1"``)."""


def url_for(route: ConsoleRoute, objects: Mapping[str, str]) -> str:
    """``route``'s path filled with objects of the shop, and its required query parameters."""
    path = route.url(param_values(route, objects))
    query = {
        name: objects.get(PARAM_NAMES.get(name, ""), QUERY_VALUES.get(name, "1"))
        for name in route.required_query
    }
    return f"{path}?{urlencode(query)}" if query else path


# --- the shop -------------------------------------------------------------------------------


class Http(Protocol):
    """What the shop needs of an HTTP client: a TestClient or an ``httpx.Client``."""

    def get(self, url: str, **kwargs: Any) -> Any: ...

    def post(self, url: str, **kwargs: Any) -> Any: ...


API = "/api/v1"
WAREHOUSES = {"BER": (52.52, 13.405), "HAM": (53.551, 9.993), "MUC": (48.137, 11.575)}


@dataclass
class Shop:
    """A small shop made through the JSON API: objects of every kind a console page can name,
    in BER and in HAM."""

    objects: dict[str, str] = field(default_factory=dict)
    """Kind -> the value naming one object in BER (``sku``, ``warehouse``, ``order``, ...)."""
    elsewhere: dict[str, str] = field(default_factory=dict)
    """The same kinds for objects in HAM, where a clerk of BER may not go."""


def _ok(answer: Any, what: str) -> Any:
    assert 200 <= answer.status_code < 300, f"{what}: {answer.status_code} {answer.text[:300]}"
    return answer.json()


def build_shop(
    http: Http,
    *,
    admin: Mapping[str, str],
    customer: Mapping[str, str],
    clerk: Mapping[str, str],
    clerk_id: uuid.UUID,
) -> Shop:
    """Warehouses BER, HAM, MUC; product ``SKU-1`` stocked in BER and HAM; an order; a sensor
    with an open alert in each of BER and HAM; a sync exception of BER; a device. ``admin``,
    ``customer`` and ``clerk`` (of BER) are bearer headers; the alert needs the app's default
    grace of 300 s (readings 10 minutes apart)."""
    for code, (lat, lon) in WAREHOUSES.items():
        _ok(
            http.post(
                f"{API}/warehouses",
                headers=admin,
                json={"code": code, "name": code, "lat": lat, "lon": lon},
            ),
            f"warehouse {code}",
        )
    for sku in ("SKU-1", "SKU-2"):
        _ok(
            http.post(
                f"{API}/products",
                headers=admin,
                json={"sku": sku, "name": f"Product {sku}", "price_cents": 250},
            ),
            f"product {sku}",
        )
        for code in ("BER", "HAM"):
            _ok(
                http.post(
                    f"{API}/stock/movements",
                    headers=admin,
                    json={"sku": sku, "warehouse": code, "delta": 50, "reason": "receipt"},
                ),
                f"stock of {sku} at {code}",
            )
    orders = {}
    for code in ("BER", "HAM"):
        lat, lon = WAREHOUSES[code]
        order = _ok(
            http.post(
                f"{API}/orders",
                headers={**customer, "Idempotency-Key": str(uuid.uuid4())},
                json={"lines": [{"sku": "SKU-1", "qty": 1}], "ship_to": {"lat": lat, "lon": lon}},
            ),
            f"order from {code}",
        )
        orders[code] = str(order["id"])
    sensors = {}
    start = datetime.now(UTC) - timedelta(minutes=20)
    for code in ("BER", "HAM"):
        sensor = f"{code.lower()}-chiller-1"
        _ok(
            http.post(
                f"{API}/sensors",
                headers=admin,
                json={
                    "id": sensor,
                    "warehouse": code,
                    "room": "chiller",
                    "min_temp_c": 2,
                    "max_temp_c": 8,
                },
            ),
            f"sensor {sensor}",
        )
        readings = [
            {"sensor": sensor, "ts": (start + timedelta(minutes=m)).isoformat(), "temp_c": t}
            for m, t in ((0, 5.0), (1, 11.0), (11, 12.0))
        ]
        _ok(http.post(f"{API}/telemetry", headers=admin, json={"readings": readings}), "readings")
        sensors[code] = sensor
    pushed = _ok(
        http.post(
            f"{API}/sync/push",
            headers=clerk,
            json={
                "replica_id": "console-checks",
                "mutations": [
                    {
                        "id": str(uuid.uuid4()),
                        "type": "stock.sell",
                        "data": {"warehouse": "BER", "sku": "SKU-2", "qty": 500},
                        "hlc": f"{int(time.time() * 1000)}-0-console-checks",
                    }
                ],
            },
        ),
        "offline sale beyond stock",
    )
    assert pushed["results"][0]["status"] != "rejected", pushed
    device = _ok(
        http.post(
            f"{API}/devices", headers=admin, json={"label": "till", "scope": "warehouse:BER"}
        ),
        "device",
    )
    alerts = {
        alert["warehouse"]: str(alert["id"])
        for alert in _ok(http.get(f"{API}/alerts", headers=admin), "alerts")
    }
    assert set(alerts) == {"BER", "HAM"}, f"an open alert in BER and HAM expected: {alerts}"
    (exception,) = _ok(http.get(f"{API}/sync/exceptions", headers=admin), "exceptions")["items"]
    dry_run = _ok(
        http.post(
            f"{API}/products/import",
            headers=admin,
            files={"file": ("new.csv", b"sku,name,price_cents\nNEW-1,New,100\n")},
            data={"dry_run": "true"},
        ),
        "import",
    )
    for _ in range(600):  # the run's job changes its row: done before a page is fingerprinted
        run = _ok(http.get(f"{API}/products/import/{dry_run['id']}", headers=admin), "import")
        if run["status"] == "done":
            break
        time.sleep(0.05)
    shop = Shop()
    shop.objects.update(
        sku="SKU-1",
        warehouse="BER",
        order=orders["BER"],
        sensor=sensors["BER"],
        alert=alerts["BER"],
        exception=str(exception["id"]),
        room="chiller",
        user=str(clerk_id),
        device=str(device["id"]),
        card="stock",
        **{"import": str(dry_run["id"])},
    )
    shop.elsewhere.update(
        shop.objects,
        warehouse="HAM",
        order=orders["HAM"],
        sensor=sensors["HAM"],
        alert=alerts["HAM"],
    )
    return shop


# --- console sessions ----------------------------------------------------------------------


def browser_for(app: FastAPI) -> TestClient:
    """A cookie jar on ``app`` that does not follow redirects and turns errors into answers."""
    # No lifespan of its own: the `client` fixture runs the app's once for all of them.
    return TestClient(app, raise_server_exceptions=False, follow_redirects=False)


def sign_in(app: FastAPI, actor: Actor) -> TestClient:
    """A browser signed in to the console as ``actor`` through the sign-in form."""
    browser = browser_for(app)
    login_csrf = re.search(r'name="login_csrf" value="([^"]+)"', browser.get("/login").text)
    assert login_csrf
    answer = browser.post(
        "/login",
        data={"email": actor.email, "password": actor.password, "login_csrf": login_csrf[1]},
    )
    assert answer.status_code == 303, answer.text
    return browser


def page_csrf(browser: TestClient) -> str:
    """The CSRF token of ``browser``'s session, as its pages carry it."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/account").text)
    assert token, "the account page carries the sign-out form with the CSRF token"
    return token[1]


# --- nothing changed ------------------------------------------------------------------------

BACKGROUND_TABLES = frozenset(
    {
        "jobs",
        "leases",
        "events_inbox",
        "reporting_movement",
        "reporting_level",
        "reporting_period",
        "reporting_snapshot",
        "reporting_sales_month",
    }
)
"""Tables the app's background threads change on their own (job runs, leases, the in-process
consumers' inbox and the reporting consumer's read models): left out of the fingerprint.
``events_outbox`` is counted, not hashed (the relay marks rows published)."""


def fingerprint(db: Database) -> dict[str, str]:
    """A digest of every table's rows: equal before and after means nothing was written."""
    digests: dict[str, str] = {}
    with db.reading() as session:
        for table in metadata.sorted_tables:
            if table.name in BACKGROUND_TABLES:
                continue
            if table.name == "events_outbox":
                count = session.execute(select(func.count()).select_from(table)).scalar_one()
                digests[table.name] = f"{count} rows"
                continue
            rows = sorted(repr(tuple(row)) for row in session.execute(select(table)))
            digests[table.name] = hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]
    return digests


def changed_tables(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """The tables whose fingerprint differs."""
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )
