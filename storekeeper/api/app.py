"""The application factory: one FastAPI app mounting every context's router under /api/v1."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles

import storekeeper
from storekeeper.accounts.api import router as accounts_router
from storekeeper.api import errors
from storekeeper.api.headers import Cors, SecurityHeaders
from storekeeper.api.limits import BodySizeLimit
from storekeeper.api.ratelimit import RateLimit
from storekeeper.bootstrap import Container, background, bootstrap, sensor_listeners
from storekeeper.catalog.api import ProductReadRoute
from storekeeper.catalog.api import router as catalog_router
from storekeeper.catalog.events import ProductChanged
from storekeeper.catalog.viewcache import ProductViewCache
from storekeeper.config import Context, Settings
from storekeeper.imports.api import router as imports_router
from storekeeper.inventory.api import router as inventory_router
from storekeeper.live.api import router as live_router
from storekeeper.live.hub import Hub, Watcher
from storekeeper.observability import api as observability_api
from storekeeper.observability.middleware import RequestObservability
from storekeeper.ordering.api import router as ordering_router
from storekeeper.reporting.api import router as reporting_router
from storekeeper.sync.api import router as sync_router
from storekeeper.telemetry.api import router as telemetry_router
from storekeeper.web import routes as web_routes

API_PREFIX = "/api/v1"
SWAGGER_UI_VERSION = "5.35.0"
"""The swagger-ui-dist release vendored in storekeeper/api/static/swagger-ui (docs/api.md)."""
DOCS_ASSETS = "/docs/static"
# Imports and exports of products and stock are served with the catalog, their routes first
# (``/products/export`` before ``/products/{sku}``).
_catalog_routes = APIRouter()
_catalog_routes.include_router(imports_router)
_catalog_routes.include_router(catalog_router)
CONTEXT_ROUTERS: dict[Context, APIRouter] = {
    "accounts": accounts_router,
    "catalog": _catalog_routes,
    "inventory": inventory_router,
    "ordering": ordering_router,
    "reporting": reporting_router,
    "sync": sync_router,
    "telemetry": telemetry_router,
}


@functools.cache
def _fixed_names(contexts: tuple[Context, ...], under: str) -> frozenset[str]:
    """The last segments of GET routes ``under/<name>`` with no parameter (``export``), of the
    routers of ``contexts``.

    Once per process: FastAPI builds every route's dependency analysis to list them (about
    100 ms), and the routers never change after import."""
    probe = FastAPI()
    for context in contexts:
        probe.include_router(CONTEXT_ROUTERS[context], prefix=API_PREFIX)
    names = set()
    for route in iter_route_contexts(probe.routes):
        path, methods = route.path_format or "", route.methods or set()
        rest = path.removeprefix(under)
        fixed = rest and "/" not in rest and "{" not in rest
        if path.startswith(under) and "GET" in methods and fixed:
            names.add(rest)
    return frozenset(names)


def _ops_router(container: Container) -> APIRouter:
    """``/healthz``, and ``/readyz`` and ``/metrics`` from storekeeper.observability.api."""
    router = APIRouter(tags=["ops"])

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    # /readyz and /metrics: storekeeper.observability.api.
    router.include_router(observability_api.router(db=container.db, settings=container.settings))
    return router


def _docs(app: FastAPI) -> None:
    """``/docs``: Swagger UI from the package's own files, so it works with no Internet access."""
    assets = Path(__file__).parent / "static" / "swagger-ui"
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API docs",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js?v={SWAGGER_UI_VERSION}",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css?v={SWAGGER_UI_VERSION}",
            swagger_favicon_url=f"{DOCS_ASSETS}/favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()


def create_app(
    settings: Settings | None = None,
    container: Container | None = None,
    *,
    sensor_transports: bool | None = None,
) -> FastAPI:
    """Build the app; ``uvicorn --factory storekeeper.api.app:create_app`` reads the environment.

    ``sensor_transports`` (the TCP listener and MQTT subscriber of storekeeper.telemetry) defaults
    to on for the served app and off for an app embedded around a given container (tests).
    """
    if sensor_transports is None:
        sensor_transports = container is None
    container = container or bootstrap(settings)
    if container.settings.only and "telemetry" not in container.settings.only:
        sensor_transports = False
    live_hub = Hub(container.db, container.settings)
    # Product views of GET /products/{sku}, dropped as the hub reads their changes in the outbox
    # (storekeeper.catalog.viewcache: the staleness bound).
    product_views = ProductViewCache(
        size=container.settings.catalog_cache_size,
        max_stale_s=container.settings.catalog_cache_max_stale_s,
    )
    live_hub.watch(
        Watcher((ProductChanged.type,), product_views.on_outbox, product_views.on_outbox_lost)
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # As many request threads as pooled connections: a thread beyond that would only wait
        # for a connection, and fewer threads contend less for the GIL (bench W2 on PostgreSQL:
        # higher throughput and half the p99 with a small pool than with anyio's default 40).
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = container.db.pool_size
        async with AsyncExitStack() as stack:
            # Live updates (SSE, WebSocket): stopping it ends the open streams. It hooks the
            # engine's commit event, so it starts before and stops after every thread that
            # commits (SQLAlchemy's listener list must not change while a commit walks it).
            product_views.listen_to_commits()
            stack.callback(product_views.stop_listening)
            await live_hub.start()
            stack.push_async_callback(live_hub.stop)
            # The outbox relay, jobs (embedded mode) and sweepers: storekeeper.tasks.background.
            worker = background(container, run_jobs=True)
            worker.start()
            stack.callback(worker.stop)
            if sensor_transports:
                await stack.enter_async_context(sensor_listeners(container))
            yield
        container.close()
        observability_api.on_shutdown()

    app = FastAPI(
        title="Storekeeper",
        version=storekeeper.__version__,
        description="Inventory and order backend: catalog, multi-warehouse stock that never "
        'oversells, idempotent orders. Errors are `{"detail", "code"}`.',
        lifespan=lifespan,
        # Served by _docs from vendored files instead of FastAPI's CDN links; no ReDoc.
        docs_url=None,
        redoc_url=None,
    )
    app.state.container = container
    # What routes ask for by name through storekeeper.api.deps.provided.
    app.state.dependencies = {**container.dependencies(), "product_views": product_views}
    app.state.live_hub = live_hub
    errors.install(app)
    app.add_middleware(
        RateLimit,
        settings=container.settings,
        signing_key=container.signing_key,
        api_prefix=API_PREFIX,
    )
    uploads = {f"{API_PREFIX}/products/import": container.settings.import_max_bytes}
    app.add_middleware(BodySizeLimit, max_bytes=container.settings.max_body_bytes, larger=uploads)
    app.add_middleware(SecurityHeaders, hsts=container.settings.env == "production")
    app.add_middleware(Cors, origins=container.settings.cors_origins)
    # Outermost: request id, metrics and access log cover every answer, 429 and 413 included.
    app.add_middleware(RequestObservability)
    # `serve --only CONTEXT,...` (STOREKEEPER_ONLY) serves some contexts; the others run in
    # other processes (docs/scaling.md). Live updates and the ops endpoints are served always.
    product_read = None
    if "catalog" in (container.settings.only or CONTEXT_ROUTERS):
        # The hottest read skips FastAPI's routing: first in the list (see the class).
        product_read = ProductReadRoute(
            API_PREFIX,
            db=container.db,
            views=product_views,
            max_age_s=container.settings.catalog_http_max_age_s,
        )
        app.router.routes.insert(0, product_read)
    contexts = tuple(container.settings.only or CONTEXT_ROUTERS)
    for context in contexts:
        app.include_router(CONTEXT_ROUTERS[context], prefix=API_PREFIX)
    app.include_router(live_router, prefix=API_PREFIX)
    if product_read is not None:
        product_read.leave(_fixed_names(contexts, f"{API_PREFIX}/products/"))
    app.include_router(_ops_router(container))
    _docs(app)
    if not container.settings.only:
        # The console at / (storekeeper.web) calls every context's services in this process,
        # so a process serving only some contexts does not serve it.
        web_routes.install(app)
    return app
