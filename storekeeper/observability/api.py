"""Ops routes of the observability package: ``/readyz`` and ``/metrics`` (``/healthz`` stays in
the app factory: it must not depend on anything)."""

from __future__ import annotations

import hmac
import os
from typing import Annotated, Any

from fastapi import APIRouter, Header
from fastapi.responses import JSONResponse, Response

from storekeeper.api.errors import error_body
from storekeeper.config import Settings
from storekeeper.db import Database
from storekeeper.errors import NotAuthenticated
from storekeeper.observability import exposition
from storekeeper.observability.health import ReadinessProbe

_NOT_READY: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "A check failed: `detail` names it, `checks` gives every check's state.",
        "content": {"application/json": {}},
    }
}


def router(*, db: Database, settings: Settings) -> APIRouter:
    """``/readyz`` and ``/metrics`` for the process serving ``db``."""
    routes = APIRouter(tags=["ops"])
    probe = ReadinessProbe(db=db, settings=settings)
    registry = exposition.build_registry(db)
    token = settings.metrics_token.get_secret_value()

    @routes.get("/readyz", responses=_NOT_READY)
    def readyz() -> JSONResponse:
        """Ready for traffic: database reachable, schema at this code's revision, broker (when
        configured) reachable; 503 naming the failed checks otherwise."""
        readiness = probe.check()
        if readiness.failed:
            body = error_body(f"not ready: {', '.join(readiness.failed)}", "not_ready")
            return JSONResponse({**body, "checks": readiness.checks}, status_code=503)
        return JSONResponse({"status": "ready", "database": db.dialect, "checks": readiness.checks})

    # Plain text for Prometheus, not part of the JSON API: left out of the OpenAPI document.
    @routes.get("/metrics", include_in_schema=False)
    def metrics(authorization: Annotated[str | None, Header()] = None) -> Response:
        """Prometheus text format; a bearer token is required when one is configured."""
        if token and not hmac.compare_digest(
            (authorization or "").encode(), f"Bearer {token}".encode()
        ):
            raise NotAuthenticated("/metrics needs the configured bearer token")
        return Response(exposition.render(registry), media_type=exposition.CONTENT_TYPE)

    return routes


def on_shutdown() -> None:
    """This process stops serving: drop its live gauges from the shared multiprocess files."""
    exposition.mark_process_dead(os.getpid())
