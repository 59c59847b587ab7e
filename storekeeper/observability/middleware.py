"""The outermost ASGI middleware: request id, request metrics and the access log line.

Pure ASGI (not ``BaseHTTPMiddleware``) because it sits on every request: no extra task, no
response wrapping, only a ``send`` wrapper that notes the status and adds one header.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterator, Sequence

from fastapi.routing import iter_route_contexts
from prometheus_client.metrics import Counter, Histogram
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storekeeper.observability import logs, metrics
from storekeeper.observability.logs import RequestInfo, current_request

REQUEST_ID_HEADER = b"x-request-id"
UNMATCHED = "<unmatched>"
# A caller's id is echoed into our logs and headers: accept only short, plain ones.
_VALID_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
access_log = logging.getLogger("storekeeper.access")
# Any token is a valid HTTP method: others are labelled OTHER, or clients could add series.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_templates(routes: Sequence[BaseRoute]) -> dict[int, str]:
    """Every route's full template (prefixes included), keyed by the route object's id.

    FastAPI stores the matched route object in the scope, but a route included with a prefix
    keeps its own short path (``/orders/{order_id}``); the full one comes from here.
    """
    return {
        id(context.original_route): context.path_format
        for context in iter_route_contexts(routes)
        if context.path_format
    }


class RequestObservability:
    """Give each HTTP request an id (``X-Request-ID``, in and out), count and time it, log it."""

    def __init__(self, app: ASGIApp) -> None:
        """Wrap ``app``."""
        self.app = app
        # labels() takes a lock and builds a key per call; the children are reused instead.
        self._children: dict[tuple[str, str, str], _Series] = {}
        self._templates: dict[int, str] | None = None  # built at the first request
        self._fresh_ids = _fresh_ids()

    def route_of(self, scope: Scope) -> str:
        """The matched route's template (``/api/v1/orders/{order_id}``), never the raw path,
        which would give every order its own time series."""
        route = scope.get("route")
        if route is None:
            return UNMATCHED
        if self._templates is None:  # every route is registered once requests arrive
            self._templates = route_templates(scope["app"].routes)
        template = self._templates.get(id(route)) or getattr(route, "path_format", None)
        return template if isinstance(template, str) else UNMATCHED

    def _series(self, route: str, method: str, status: int) -> _Series:
        key = (route, method, str(status))
        series = self._children.get(key)
        if series is None:
            series = (
                metrics.HTTP_REQUESTS.labels(*key),
                metrics.HTTP_LATENCY.labels(route, method),
                # The access line's message is "{method} {route} {status} {duration}ms": if
                # its start cannot hold a secret, neither can the line (the duration's digits
                # and "ms" after a space complete no pattern of logs.redact).
                not logs.may_hold_secret(f"{method} {route} {status} "),
            )
            self._children[key] = series
        return series

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one connection event; only HTTP requests are measured."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or next(self._fresh_ids)
        info = RequestInfo(request_id=request_id, scope=scope)
        token = current_request.set(info)
        status = 500  # what the server answers if the app fails before sending a response
        header = (REQUEST_ID_HEADER, request_id.encode())

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route, method = self.route_of(scope), scope["method"]
            method = method if method in _METHODS else "OTHER"
            requests, latency, plain = self._series(route, method, status)
            requests.inc()
            latency.observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                _log_access(method, route, status, elapsed, info, plain)
            current_request.reset(token)


# A route's request counter and latency histogram, and whether its access lines need no
# redaction.
_Series = tuple[Counter, Histogram, bool]


def _log_access(
    method: str, route: str, status: int, elapsed_s: float, info: RequestInfo, plain: bool
) -> None:
    duration_ms = round(elapsed_s * 1000, 1)
    stream = logs.direct_stream(access_log) if plain else None
    if stream is not None:
        # The line the record below would become, in the same order (extras, then the
        # RequestContext filter's fields), built without it.
        fields: logs.Fields = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "request_id": info.request_id,
        }
        if info.user_id is not None:
            fields["user_id"] = info.user_id
        order_id = info.order_id
        if order_id is not None:
            fields["order_id"] = order_id
        message = f"{method} {route} {status:d} {duration_ms:.1f}ms"  # as the record's below
        stream.emit_info(time.time(), access_log.name, message, fields)
        return
    # makeRecord + handle: what Logger.info does minus the search of the stack for the caller,
    # which would only ever find this line.
    record = access_log.makeRecord(
        access_log.name,
        logging.INFO,
        __file__,
        0,
        "%s %s %d %.1fms",
        (method, route, status, duration_ms),
        None,
        extra={"method": method, "route": route, "status": status, "duration_ms": duration_ms},
    )
    access_log.handle(record)


_IDS_PER_READ = 256


def _fresh_ids() -> Iterator[str]:
    """Request ids of 32 random hex digits (``uuid4().hex``'s form, without its fixed version
    digit) from ``uuid4``'s source, ``os.urandom``, read for many ids at once: a system call
    per request showed in W1's profiles, and one is where a loaded machine preempts the loop."""
    while True:
        block = os.urandom(16 * _IDS_PER_READ).hex()
        for start in range(0, len(block), 32):
            yield block[start : start + 32]


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            return value.decode() if _VALID_ID.fullmatch(value) else None
    return None
