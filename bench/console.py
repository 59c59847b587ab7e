"""console: server time and bytes of console pages, next to the JSON API for the same data.

Data: 100k products (``bench.seed``), a stock row of each in BER, HAM and MUC, and 1M ledger
movements explaining their on-hand, loaded straight through the driver (one ``executemany``
transaction on SQLite, ``COPY`` on PostgreSQL); then, through the API, a few orders, offline
sales beyond stock (sync exceptions) and a cold-chain alert, so the dashboard has each kind of
thing to show.

Cases, each page against its ceiling, the JSON API for the same data, in the same run on the same
server, alternating slices (A B B A) of sequential requests on one keep-alive connection:

- products: ``GET /products`` against ``GET /api/v1/products?limit=50``
- search: ``GET /products?q=seewind`` against ``GET /api/v1/products?q=seewind&limit=50``
- dashboard: ``GET /`` (with the fragments it loads on "load" through htmx) against
  ``DASHBOARD_API``, the API calls that give the same figures (one of each per page view)

Figures: server milliseconds per page view, from the app's own request histogram
(``storekeeper_http_request_duration_seconds`` on ``/metrics``, read before and after each
slice), client p50, and bytes per view on the wire (status line, headers, body). The ratio is
page / API server time; the goal is at most 1.5.
"""

from __future__ import annotations

import random
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
from prometheus_client.parser import text_string_to_metric_families

from bench import infra, report, schedule, seed
from bench.infra import BenchDatabase, Server
from bench.measure import percentile
from bench.options import Options, environment
from bench.w3 import serve_app
from storekeeper.accounts import users as accounts_users
from storekeeper.accounts.domain import Role

PRODUCTS = 100_000
MOVEMENTS = 1_000_000
WAREHOUSES = ("BER", "HAM", "MUC")
RECEIVED = 1000
"""Units of each stock row's first movement (a receipt); the later ones sell one unit each."""
SEARCH = "seewind"
"""A brand (bench.seed): about one product in six matches, so a page fills quickly."""
DASHBOARD_API = (
    "/api/v1/orders?limit=10",
    "/api/v1/sync/exceptions?status=open&limit=10",
    "/api/v1/alerts?status=open",
    "/api/v1/warehouses",
)
"""What a client of the API asks for to show the dashboard's figures (recent orders, open sync
exceptions, open cold-chain alerts, warehouses). Keep it in step with the dashboard."""
GOAL = 1.5
"""Page server time / API server time at most this."""
CASE_SHARE = 0.2
"""Each side of each case is measured for this share of ``--duration`` (2 s at the default)."""
_EMAIL = "bench-console-manager@example.com"
_PASSWORD = "bench-console-password"
_LATENCY = "storekeeper_http_request_duration_seconds"
_NOT_MEASURED = ("/metrics", "/healthz")
_LOAD_FRAGMENT = re.compile(r"<[^>]*\bhx-get=\"([^\"]+)\"[^>]*>")


@dataclass(frozen=True, slots=True)
class Case:
    """A page and the API calls that give the same data."""

    name: str
    page: str
    api: tuple[str, ...]


CASES = (
    Case("products", "/products", ("/api/v1/products?limit=50",)),
    Case("search", f"/products?q={SEARCH}", (f"/api/v1/products?q={SEARCH}&limit=50",)),
    Case("dashboard", "/", DASHBOARD_API),
)


@dataclass
class Side:
    """What one side (page or API) of a case measured over its slices."""

    paths: tuple[str, ...]
    views: int = 0
    server_s: float = 0.0
    server_requests: int = 0
    requests: int = 0
    client_ms: list[float] = field(default_factory=list)
    bytes_per_view: list[int] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def server_ms(self) -> float:
        """Server milliseconds per view (all of its requests)."""
        return self.server_s * 1000 / self.views if self.views else 0.0

    @property
    def bytes(self) -> int:
        """Bytes on the wire per view (the median view)."""
        return int(percentile([float(b) for b in self.bytes_per_view], 50))

    @property
    def clean(self) -> bool:
        """Every answer 200, and the server counted every request."""
        return set(self.statuses) == {200} and self.server_requests == self.requests

    def to_json(self) -> dict[str, Any]:
        """The figures, rounded for a results file."""
        return {
            "paths": list(self.paths),
            "views": self.views,
            "server_ms_per_view": round(self.server_ms, 3),
            "client_p50_ms": round(percentile(self.client_ms, 50), 3),
            "client_p99_ms": round(percentile(self.client_ms, 99), 3),
            "bytes_per_view": self.bytes,
            "requests": self.requests,
            "server_counted": self.server_requests,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


# --- data ------------------------------------------------------------------------------------


def _ledger(skus: list[str]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Stock rows and the movements explaining them: a receipt per row, then sales of one."""
    pairs = [(sku, code) for sku in skus for code in WAREHOUSES]
    start = datetime.now(UTC) - timedelta(days=180)
    step = timedelta(days=180) / MOVEMENTS
    sold: Counter[int] = Counter()
    movements: list[tuple[Any, ...]] = []
    rng = random.Random(3)
    for i in range(MOVEMENTS):
        first = i < len(pairs)
        index = i if first else rng.randrange(len(pairs))
        if not first:
            sold[index] += 1
        sku, code = pairs[index]
        reason, delta = ("receipt", RECEIVED) if first else ("sale", -1)
        movements.append((sku, code, delta, reason, "bench", start + step * i))
    now = datetime.now(UTC)
    stock = [
        (sku, code, RECEIVED - sold[index], 0, 1, now) for index, (sku, code) in enumerate(pairs)
    ]
    return stock, movements


_STOCK = "inventory_stock (sku, warehouse_code, on_hand, reserved, version, updated_at)"
_MOVEMENT = "inventory_movement (sku, warehouse_code, delta, reason, ref, created_at)"


def _load_ledger(db: BenchDatabase, skus: list[str]) -> None:
    stock, movements = _ledger(skus)
    if db.backend == "sqlite":
        as_text = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a datetime in SQLite
        conn = sqlite3.connect(db.driver_target, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                f"INSERT INTO {_STOCK} VALUES (?, ?, ?, ?, ?, ?)",
                [(*row[:5], row[5].strftime(as_text)) for row in stock],
            )
            conn.executemany(
                f"INSERT INTO {_MOVEMENT} VALUES (?, ?, ?, ?, ?, ?)",
                [(*row[:5], row[5].strftime(as_text)) for row in movements],
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        return
    with psycopg.connect(db.driver_target) as pg:
        with pg.cursor() as cursor:
            for table, rows in ((_STOCK, stock), (_MOVEMENT, movements)):
                with cursor.copy(f"COPY {table} FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
        pg.commit()
        pg.autocommit = True
        pg.execute("ANALYZE")  # as autovacuum would have, on a database that grew to this


def _seed(db: BenchDatabase) -> None:
    started = time.perf_counter()
    with infra.container_for(db) as container:
        skus = seed.seed_products(container.db, count=PRODUCTS)
        seed.seed_warehouses(container.db)
        with container.db.transaction() as session:
            accounts_users.create_user(session, email=_EMAIL, password=_PASSWORD, role=Role.MANAGER)
    _load_ledger(db, skus)
    print(
        f"  seeded {PRODUCTS} products, {PRODUCTS * len(WAREHOUSES)} stock rows and "
        f"{MOVEMENTS} movements in {time.perf_counter() - started:.1f} s",
        flush=True,
    )


def _ok(answer: httpx.Response, what: str) -> Any:
    if not 200 <= answer.status_code < 300:
        raise RuntimeError(f"{what}: {answer.status_code} {answer.text[:300]}")
    return answer.json()


def _dashboard_things(api: httpx.Client) -> None:
    """A few orders, sync exceptions and an open alert, through the API, as a manager."""
    for n in range(20):
        _ok(
            api.post(
                "/api/v1/orders",
                headers={"Idempotency-Key": f"bench-console-{n}"},
                json={"lines": [{"sku": seed.sku(n), "qty": 1}]},
            ),
            "order",
        )
    mutations = [
        {
            "id": f"00000000-0000-4000-8000-{n:012d}",
            "type": "stock.sell",
            "data": {"warehouse": "BER", "sku": seed.sku(100 + n), "qty": 5000},
            "hlc": f"{int(time.time() * 1000)}-{n}-bench-console",
        }
        for n in range(5)
    ]
    _ok(
        api.post("/api/v1/sync/push", json={"replica_id": "bench", "mutations": mutations}),
        "offline sales",
    )
    sensor = {"id": "bench-chiller", "warehouse": "BER", "room": "chiller"}
    _ok(api.post("/api/v1/sensors", json={**sensor, "min_temp_c": 2, "max_temp_c": 8}), "sensor")
    start = datetime.now(UTC) - timedelta(minutes=30)
    readings = [
        {"sensor": "bench-chiller", "ts": (start + timedelta(minutes=m)).isoformat(), "temp_c": t}
        for m, t in ((0, 4.0), (1, 11.0), (20, 12.0))
    ]
    _ok(api.post("/api/v1/telemetry", json={"readings": readings}), "readings")


# --- sessions ----------------------------------------------------------------------------------


def _api_client(server: Server) -> httpx.Client:
    """The manager's bearer token, as an API client gets it (``POST /auth/token``)."""
    pair = _ok(
        httpx.post(
            f"{server.url}/api/v1/auth/token",
            data={"username": _EMAIL, "password": _PASSWORD},
            timeout=30,
        ),
        "token",
    )
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=60)


def _console_client(server: Server) -> httpx.Client:
    """The manager signed in to the console through its form (a session cookie)."""
    browser = httpx.Client(base_url=server.url, timeout=60)
    form = browser.get("/login").text
    found = re.search(r'name="login_csrf" value="([^"]+)"', form)
    if not found:
        raise RuntimeError("the sign-in form has no login_csrf field")
    answer = browser.post(
        "/login",
        data={"email": _EMAIL, "password": _PASSWORD, "login_csrf": found[1]},
        follow_redirects=False,
    )
    if answer.status_code != 303:
        raise RuntimeError(f"console sign-in: {answer.status_code} {answer.text[:300]}")
    return browser


def _with_fragments(browser: httpx.Client, page: str) -> tuple[str, ...]:
    """The page and every fragment it asks htmx for as soon as it loads (``hx-trigger`` with
    ``load``): what a browser fetches from the server to show the page."""
    html = browser.get(page).text
    fragments = [
        match[1]
        for match in _LOAD_FRAGMENT.finditer(html)
        if re.search(r'hx-trigger="[^"]*\bload\b', match[0])
    ]
    return (page, *fragments)


# --- measuring ---------------------------------------------------------------------------------


def _server_time(server: Server) -> tuple[float, int]:
    """Seconds and requests the app has counted so far on every route but the probes."""
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    seconds, count = 0.0, 0
    for family in text_string_to_metric_families(text):
        if family.name != _LATENCY:
            continue
        for sample in family.samples:
            if sample.labels.get("route") in _NOT_MEASURED:
                continue
            if sample.name.endswith("_sum"):
                seconds += sample.value
            elif sample.name.endswith("_count"):
                count += int(sample.value)
    return seconds, count


def _wire_bytes(answer: httpx.Response) -> int:
    head = len(f"HTTP/1.1 {answer.status_code} {answer.reason_phrase}\r\n") + 2
    head += sum(len(name) + len(value) + 4 for name, value in answer.headers.raw)
    return head + answer.num_bytes_downloaded


def _run(server: Server, client: httpx.Client, side: Side, seconds: float) -> None:
    """Views of ``side`` one after another for ``seconds`` (at least one)."""
    before_s, before_n = _server_time(server)
    deadline = time.perf_counter() + seconds
    views = 0
    while views == 0 or time.perf_counter() < deadline:
        started = time.perf_counter()
        size = 0
        for path in side.paths:
            answer = client.get(path)
            side.statuses[answer.status_code] += 1
            size += _wire_bytes(answer)
        side.client_ms.append((time.perf_counter() - started) * 1000)
        side.bytes_per_view.append(size)
        views += 1
    after_s, after_n = _server_time(server)
    side.views += views
    side.requests += views * len(side.paths)
    side.server_s += after_s - before_s
    side.server_requests += after_n - before_n


def _runner(
    server: Server, client: httpx.Client, side: Side, seconds: float
) -> Callable[[int], None]:
    return lambda _round: _run(server, client, side, seconds)


def _measure(server: Server, opts: Options) -> dict[str, tuple[Side, Side]]:
    api, browser = _api_client(server), _console_client(server)
    results: dict[str, tuple[Side, Side]] = {}
    try:
        _dashboard_things(api)
        case_s = max(opts.duration_s * CASE_SHARE, 1.0)
        for case in CASES:
            page, ceiling = Side(_with_fragments(browser, case.page)), Side(case.api)
            warm = (Side(page.paths), Side(ceiling.paths))
            _run(server, browser, warm[0], opts.warmup_s / len(CASES) / 2)
            _run(server, api, warm[1], opts.warmup_s / len(CASES) / 2)
            schedule.alternate(
                [
                    _runner(server, browser, page, case_s / opts.rounds),
                    _runner(server, api, ceiling, case_s / opts.rounds),
                ],
                opts.rounds,
            )
            results[case.name] = (page, ceiling)
    finally:
        api.close()
        browser.close()
    return results


def run(backend: str, opts: Options) -> tuple[dict[str, Any], bool]:
    """Run the console benchmark on ``backend``; the results document and whether it was clean."""
    report.heading(f"console pages on {backend} ({PRODUCTS} products, {MOVEMENTS} movements)")
    busy = schedule.background_busy()
    schedule.warn_if_busy(busy)
    with infra.fresh_database(backend, "console", opts.workdir) as db:
        _seed(db)
        with serve_app(db, opts, f"console-{backend}-app") as server:
            results = _measure(server, opts)
    cases: dict[str, Any] = {}
    problems: list[str] = []
    for name, (page, ceiling) in results.items():
        value = report.ratio(page.server_ms, ceiling.server_ms)
        _print(name, page, ceiling, value)
        for label, side in (("page", page), ("API", ceiling)):
            if not side.clean:
                problems.append(
                    f"{name} {label}: statuses {dict(side.statuses)}, "
                    f"{side.server_requests} of {side.requests} requests counted by the server"
                )
        cases[name] = {
            "figures": page.to_json(),
            "ceiling": ceiling.to_json(),
            "ratio": round(value, 3),
            "bytes_ratio": round(report.ratio(page.bytes, ceiling.bytes), 3),
            "goal_met": value <= GOAL,
        }
    for problem in problems:
        print(f"  NOT CLEAN: {problem}", flush=True)
    worst = max((c["ratio"] for c in cases.values()), default=0.0)
    document = {
        "workload": "console",
        "name": "console-pages",
        "backend": backend,
        "cases": cases,
        "ratio": worst,
        "ratio_meaning": "page server ms / API server ms for the same data, worst case "
        "(lower is better)",
        "goal": GOAL,
        "goal_met": all(c["goal_met"] for c in cases.values()),
        "clean": not problems,
        "problems": problems,
        "setup": {
            "products": PRODUCTS,
            "stock_rows": PRODUCTS * len(WAREHOUSES),
            "movements": MOVEMENTS,
            "search": SEARCH,
            "dashboard_api": list(DASHBOARD_API),
            "seconds_per_side_and_case": max(opts.duration_s * CASE_SHARE, 1.0),
            "rounds": opts.rounds,
            "warmup_s": opts.warmup_s,
            "workers": opts.workers,
            "ceiling": "the JSON API for the same data on the same server (manager's bearer "
            "token), alternating slices A B B A with the page (manager's console session), "
            "sequential requests on one keep-alive connection each; server time from the app's "
            "request histogram on /metrics",
        },
        "environment": environment(busy),
    }
    return document, not problems


def _print(name: str, page: Side, ceiling: Side, value: float) -> None:
    for label, side in ((f"{name}: page", page), (f"{name}: API", ceiling)):
        report.line(
            label,
            f"{side.server_ms:8.2f} server ms/view   p50 {percentile(side.client_ms, 50):7.2f} ms"
            f"   {side.bytes / 1000:8.1f} kB   {side.views} views   {' + '.join(side.paths)}",
        )
    report.line(
        f"{name}: ratio page / API",
        f"{value:.2f} (goal <= {GOAL:.2f}: {'met' if value <= GOAL else 'NOT met'})",
    )
