"""W7 sync-initial-browser: the clerk PWA's first sync of 100k products + their stock.

The server (``storekeeper serve``) holds N products (``--w7-products``, default 100k) and one
stock row of each in BER, bulk-inserted as W3's, and a clerk of BER. Headless Chromium (Debian's
``/usr/bin/chromium``, Playwright) opens a page of the server's origin, imports the app's own
``/app/replica.js`` inside ``page.evaluate``, signs the clerk in through the app's own API calls
(``Replica.signIn``: ``POST /auth/token``, ``GET /me``), chooses BER (``useWarehouse``) and runs
the app's pull loop (``Replica.pull``) into the real IndexedDB store. Timed from the first pull
request to the last page stored; rows = products + stock rows, counted in the app's store
afterwards (``Store.products``, ``Store.stockRows``).

Floor in the same run, in turns with the app (A B B A, means): the same pages (same page size,
same token) fetched by the page with ``fetch`` and JSON-parsed, following the cursor, not
stored. App time - floor time is what storing costs beyond what overlaps the downloads. Then
the app alone, once: the same pages downloaded first (not timed), then JSON-parsed and stored
by the app's ``Store.applyPage`` into a fresh store, timed: how fast the app would be with a
server that answered at once.

Next to them, measured on the same server in the same run: W3's figure, a fresh Python
``storekeeper_client.Replica`` pulling the same data (a device token bound to BER), and
PowerSync's published figures as constants.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, sync_playwright

from bench import infra, report, schedule, w3
from bench.infra import BenchDatabase, Server
from bench.options import Options, environment
from storekeeper.accounts import users as accounts_users
from storekeeper.accounts.domain import Role

PRODUCTS = 100_000
GOAL_ROWS_PER_S = 50_000
"""The app's initial sync at least this fast."""
POWERSYNC_DESKTOP_ROWS_PER_S = 27_600
POWERSYNC_OPS_PER_S = (2_000, 20_000)
POWERSYNC_SOURCE = (
    "27.6k rows/s: PowerSync blog 'How fast is PowerSync? Performance benchmarks for Flutter' "
    "(powersync.com/blog/how-fast-is-powersync-performance-benchmarks-for-flutter; initial sync, "
    "Linux desktop, Ryzen 9 7900X, local server; Android 7.1k rows/s). 2k-20k ops/s per client: "
    "PowerSync docs 'Performance and limits' (docs.powersync.com/resources/performance-and-limits, "
    "synced rows service -> client). For comparison only: other hardware, other data"
)
CHROMIUM = "/usr/bin/chromium"
_EMAIL = "bench-w7-clerk@example.com"
_PASSWORD = "Lagerbestand-im-Browser-7"
_BLANK = "/app/__bench_w7__"
"""A blank page of the app's origin and path (answered by Playwright, never by the server):
the app's modules are imported from the server, but app.js (its own timers) does not run."""

_APP_PULL = """
async ([email, password, warehouse]) => {
  const { Replica } = await import("/app/replica.js");
  const replica = await Replica.open();
  await replica.signIn(email, password, "");
  await replica.useWarehouse(warehouse);
  const summary = { pushed: 0, pulled: 0, resynced: false, verdicts: [] };
  let pages = 0;
  const started = performance.now();
  await replica.pull(summary, () => { pages += 1; });
  const ms = performance.now() - started;
  const held = {
    product: (await replica.store.products()).length,
    stock: (await replica.store.stockRows()).length,
  };
  replica.store.db.close();
  return { ms, rows: summary.pulled, pages, held };
}
"""

_FLOOR_PULL = """
async ([email, password, warehouse]) => {
  const { API, PAGE_SIZE } = await import("/app/replica.js");
  const form = new URLSearchParams({ username: email, password });
  const tokens = await (await fetch(`${API}/auth/token`, { method: "POST", body: form })).json();
  const headers = { Authorization: `Bearer ${tokens.access_token}` };
  const scope = `warehouse:${warehouse}`;
  let since = null, rows = 0, pages = 0, bytes = 0;
  const started = performance.now();
  for (;;) {
    const params = new URLSearchParams({ scope, limit: String(PAGE_SIZE) });
    if (since) params.set("since", since);
    const response = await fetch(`${API}/sync/pull?${params}`, { headers, cache: "no-store" });
    if (!response.ok) throw new Error(`pull: ${response.status}`);
    const text = await response.text();
    bytes += text.length;
    const page = JSON.parse(text);
    rows += page.changes.length;
    pages += 1;
    since = page.cursor;
    if (!page.has_more) break;
  }
  return { ms: performance.now() - started, rows, pages, bytes, page_size: PAGE_SIZE };
}
"""

_CLIENT_ONLY = """
async ([email, password, warehouse]) => {
  const { Replica, PAGE_SIZE } = await import("/app/replica.js");
  const replica = await Replica.open();
  await replica.signIn(email, password, "");
  await replica.useWarehouse(warehouse);
  const scope = `warehouse:${warehouse}`;
  const texts = [];
  for (let since = null; ;) {
    const params = new URLSearchParams({ scope, limit: String(PAGE_SIZE) });
    if (since) params.set("since", since);
    const text = await (await replica.respond("GET", `/sync/pull?${params}`)).text();
    texts.push(text);
    const page = JSON.parse(text);
    if (!page.has_more) break;
    since = page.cursor;
  }
  let parse = 0, store = 0, rows = 0;
  for (const text of texts) {
    const started = performance.now();
    const page = JSON.parse(text);
    const parsed = performance.now();
    await replica.store.applyPage(page.changes, page.cursor);
    parse += parsed - started;
    store += performance.now() - parsed;
    rows += page.changes.length;
  }
  replica.store.db.close();
  return { ms: parse + store, parse_ms: parse, store_ms: store, rows, pages: texts.length };
}
"""


@dataclass(frozen=True, slots=True)
class Run:
    """One full pull in the browser."""

    seconds: float
    rows: int
    pages: int

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "rows": self.rows,
            "rows_per_s": round(self.rows_per_s, 1),
            "pages": self.pages,
        }


def _mean(runs: list[Run]) -> Run:
    return Run(sum(r.seconds for r in runs) / len(runs), runs[0].rows, runs[0].pages)


def _seed(db: BenchDatabase, products: int) -> tuple[str, dict[str, int]]:
    admin, expected = w3.seed_pull_data(db, products)
    with infra.container_for(db) as container, container.db.transaction() as session:
        accounts_users.create_user(
            session, email=_EMAIL, password=_PASSWORD, role=Role.CLERK, warehouses=[w3.WAREHOUSE]
        )
    return admin, expected


def _fresh_page(browser: Any, server: Server) -> tuple[Any, Page]:
    """A fresh context (an empty IndexedDB) on a blank page of the app's origin."""
    context = browser.new_context(service_workers="block")
    context.set_default_timeout(600_000)
    page = context.new_page()
    page.route(
        f"{server.url}{_BLANK}",
        lambda route: route.fulfill(
            status=200, content_type="text/html", body="<!doctype html><title>W7</title>"
        ),
    )
    page.goto(f"{server.url}{_BLANK}")
    return context, page


def _browser_runs(
    server: Server, expected: dict[str, int]
) -> tuple[list[Run], list[Run], list[str], dict[str, Any]]:
    app_runs: list[Run] = []
    floor_runs: list[Run] = []
    problems: list[str] = []
    info: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        info["chromium"] = browser.version
        try:
            for side in ("app", "floor", "floor", "app"):
                context, page = _fresh_page(browser, server)
                try:
                    script = _APP_PULL if side == "app" else _FLOOR_PULL
                    done = page.evaluate(script, [_EMAIL, _PASSWORD, w3.WAREHOUSE])
                finally:
                    context.close()
                run = Run(done["ms"] / 1000, int(done["rows"]), int(done["pages"]))
                if side == "app":
                    app_runs.append(run)
                    if done["held"] != expected:
                        problems.append(f"the app holds {done['held']}, the server has {expected}")
                else:
                    floor_runs.append(run)
                    info["page_size"] = done["page_size"]
                    info["bytes"] = done["bytes"]
                print(
                    f"    {side:<6} {run.seconds:7.2f} s  {run.rows_per_s:9.0f} rows/s", flush=True
                )
            # The app's own share: the same pages downloaded first (not timed), then parsed and
            # stored by the app's Store as the pull does.
            context, page = _fresh_page(browser, server)
            try:
                done = page.evaluate(_CLIENT_ONLY, [_EMAIL, _PASSWORD, w3.WAREHOUSE])
            finally:
                context.close()
            info["client"] = {
                "parse_s": round(done["parse_ms"] / 1000, 3),
                "store_s": round(done["store_ms"] / 1000, 3),
                "rows_per_s": round(done["rows"] / (done["ms"] / 1000), 1) if done["ms"] else 0,
            }
        finally:
            browser.close()
    return app_runs, floor_runs, problems, info


def run(backend: str, opts: Options, *, products: int = PRODUCTS) -> tuple[dict[str, Any], bool]:
    """Run W7 on ``backend``; returns the results document and whether the run was clean."""
    report.heading(f"W7 sync-initial in the browser on {backend} ({products} products)")
    if not Path(CHROMIUM).exists():
        print(f"  NOT CLEAN: no Chromium at {CHROMIUM} (apt-get install chromium)", flush=True)
        return {"workload": "W7", "backend": backend, "clean": False}, False
    busy = schedule.background_busy()
    schedule.warn_if_busy(busy)
    with infra.fresh_database(backend, "w7", opts.workdir) as db:
        admin, expected = _seed(db, products)
        with w3.serve_app(db, opts, f"W7-{backend}-app") as server:
            app_runs, floor_runs, problems, info = _browser_runs(server, expected)
            # W3's figure on the same server and data, in the same run.
            token = w3.device_token(server, admin, label="w7-python", scope=w3.SCOPE)
            python, python_held = w3.replica_pull(server, token, opts.workdir / "w7-python.db")
    if python_held != expected:
        problems.append(f"the Python replica holds {python_held}, the server has {expected}")
    app, floor = _mean(app_runs), _mean(floor_runs)
    store_s = app.seconds - floor.seconds
    met = app.rows_per_s >= GOAL_ROWS_PER_S
    report.line(
        "W7 app (Replica.pull+IDB)",
        f"{app.seconds:8.2f} s  {app.rows_per_s:9.0f} rows/s  {app.rows} rows  {app.pages} pages",
    )
    report.line(
        "floor (fetch + JSON.parse)",
        f"{floor.seconds:8.2f} s  {floor.rows_per_s:9.0f} rows/s  "
        f"{info.get('bytes', 0) / 1e6:7.1f} MB  page size {info.get('page_size')}",
    )
    report.line(
        "app - floor (storing)",
        f"{store_s:8.2f} s  ({store_s / app.seconds:.0%} of the app's time)"
        if app.seconds
        else "-",
    )
    client = info.get("client", {})
    report.line(
        "app alone (parse + store)",
        f"{client.get('parse_s', 0) + client.get('store_s', 0):8.2f} s  "
        f"{client.get('rows_per_s', 0):9.0f} rows/s  (parse {client.get('parse_s', 0):.2f} s, "
        f"store {client.get('store_s', 0):.2f} s; pages downloaded first)",
    )
    report.line(
        "goal >= 50k rows/s", f"{'met' if met else 'NOT met'} ({app.rows_per_s:.0f} rows/s)"
    )
    report.line(
        "W3 Python replica",
        f"{python.seconds:8.2f} s  {python.rows_per_s:9.0f} rows/s  (same server, same run)",
    )
    report.line(
        "PowerSync (published)",
        f"27.6k rows/s desktop: app {app.rows_per_s / POWERSYNC_DESKTOP_ROWS_PER_S:.2f}x; "
        "2k-20k ops/s per client",
    )
    report.line("app holds every row", "NO" if problems else "yes")
    for problem in problems:
        print(f"  NOT CLEAN: {problem}", flush=True)
    clean = not problems
    document = {
        "workload": "W7",
        "name": "sync-initial-browser",
        "backend": backend,
        "figures": app.to_json(),
        "ceiling": floor.to_json(),
        "ratio": round(app.seconds / floor.seconds, 3) if floor.seconds else 0.0,
        "ratio_meaning": "app seconds / floor seconds (lower is better)",
        "store_seconds": round(store_s, 3),
        "client_only": client,
        "goal_rows_per_s": GOAL_ROWS_PER_S,
        "goal_met": met,
        "w3_python_replica": python.to_json(),
        "powersync": {
            "desktop_rows_per_s": POWERSYNC_DESKTOP_ROWS_PER_S,
            "ops_per_s_per_client": list(POWERSYNC_OPS_PER_S),
            "source": POWERSYNC_SOURCE,
        },
        "vs_powersync_desktop": round(app.rows_per_s / POWERSYNC_DESKTOP_ROWS_PER_S, 3),
        "expected_rows": expected,
        "runs": {
            "app": [r.to_json() for r in app_runs],
            "floor": [r.to_json() for r in floor_runs],
        },
        "clean": clean,
        "problems": problems,
        "setup": {
            "products": products,
            "warehouse": w3.WAREHOUSE,
            "page_size": info.get("page_size"),
            "bytes": info.get("bytes"),
            "browser": f"headless Chromium {info.get('chromium')} ({CHROMIUM}), Playwright, "
            "a fresh context (empty IndexedDB, service workers blocked) per run",
            "user": "a clerk of BER, signed in by Replica.signIn (POST /auth/token, GET /me)",
            "ceiling": "the same pages fetched by the page with fetch and JSON.parse, "
            "following the cursor, not stored; app and floor in turns A B B A, means reported",
        },
        "environment": environment(busy),
    }
    return document, clean
