"""Mounting the console into the app: its pages, its static files, and errors as pages.

The API's error handlers (storekeeper.api.errors) stay the one mapping from an exception to a
status; for a console path they are wrapped so that the same status comes back as an HTML
page in words (or, for a session that ended, a redirect to the sign-in form).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from storekeeper.web import (
    admin,
    auth,
    clerk_app,
    cold_chain,
    dashboard,
    imports,
    live,
    orders,
    products,
    purchase_suggestions,
    reports,
    stock,
    sync_exceptions,
)
from storekeeper.web.session import SESSION_COOKIE, SignInRequired, TwoFactorSetupPending
from storekeeper.web.static_files import STATIC_DIR, STATIC_PREFIX, HashedStaticFiles
from storekeeper.web.templating import render

ROUTERS = (
    auth.router,
    live.router,
    dashboard.router,
    products.router,
    imports.router,
    stock.router,
    orders.router,
    sync_exceptions.router,
    cold_chain.router,
    reports.router,
    purchase_suggestions.router,
    admin.router,
)

NOT_CONSOLE = ("/api/", "/docs", "/openapi.json", "/healthz", "/readyz", "/metrics", "/app/")
"""Paths whose errors stay JSON (or the clerk app's own): everything else is the console."""

_TITLES = {
    400: "That request could not be read",
    401: "Sign in to continue",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "That clashes with the current state",
    413: "Too large",
    422: "Some values are not valid",
    429: "Too many attempts",
    500: "Something went wrong",
    503: "Temporarily unavailable",
}

Handler = Callable[[Request, Any], Response | Awaitable[Response]]


def is_console_path(path: str) -> bool:
    """Whether ``path`` belongs to the console (HTML errors) rather than the API or a tool."""
    return not path.startswith(NOT_CONSOLE)


def install(app: FastAPI) -> None:
    """Add the console's routes and static files to ``app`` (after ``api.errors.install``)."""
    app.mount(STATIC_PREFIX, HashedStaticFiles(directory=STATIC_DIR), name="console-static")
    clerk_app.install(app)  # the clerk's offline app at /app/ (issue 15)
    for router in ROUTERS:
        app.include_router(router)
    for family, handler in list(app.exception_handlers.items()):
        app.exception_handlers[family] = _as_page(handler)


async def _call(original: Handler, request: Request, exc: Exception) -> Response:
    answer = original(request, exc)
    return await answer if inspect.isawaitable(answer) else answer


def _as_page(original: Handler) -> Handler:
    async def handler(request: Request, exc: Exception) -> Response:
        if not is_console_path(request.url.path):
            return await _call(original, request, exc)
        if isinstance(exc, SignInRequired):
            return _redirect(request, f"/login?next={quote(exc.next_url, safe='/')}", forget=True)
        if isinstance(exc, TwoFactorSetupPending):
            return _redirect(request, "/account")
        answer = await _call(original, request, exc)
        return _error_page(request, answer)

    return handler


def _redirect(request: Request, target: str, *, forget: bool = False) -> Response:
    if request.headers.get("HX-Request") == "true":
        # htmx follows a redirect inside the swapped fragment; HX-Redirect moves the whole page.
        response: Response = Response(status_code=204, headers={"HX-Redirect": target})
    else:
        response = RedirectResponse(target, status_code=303)
    if forget:
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _error_page(request: Request, answer: Response) -> Response:
    detail: Any = None
    try:
        body = json.loads(bytes(answer.body))
        detail, code = body.get("detail"), body.get("code")
    except (ValueError, AttributeError):
        code = None
    if isinstance(detail, list):  # validation problems: say each in words
        detail = "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', [])[1:]) or 'value'}: {item.get('msg')}"
            for item in detail
            if isinstance(item, dict)
        )
    status = answer.status_code
    headers = {k: v for k, v in answer.headers.items() if k.lower() in ("retry-after", "allow")}
    return render(
        request,
        "error.html",
        status_code=status,
        headers=headers,
        title=_TITLES.get(status, "Error"),
        detail=detail if isinstance(detail, str) else None,
        code=code,
        status=status,
    )
