"""Rendering console pages: one Jinja2 environment, the page policy, the templates' helpers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from storekeeper.accounts.domain import ADMINS, STAFF, Principal, Role
from storekeeper.accounts.keys import Keyring
from storekeeper.web.session import CSRF_FIELD, CSRF_HEADER, csrf_token
from storekeeper.web.static_files import static_url

TEMPLATES_DIR = Path(__file__).parent / "templates"

PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
"""The console's Content-Security-Policy: this server's own files only, no inline script or
style (htmx's indicator styles are off, see base.html), no eval."""


def money(cents: int | None, currency: str = "EUR") -> str:
    """``1234`` → ``12.34 EUR``: money is kept in minor units and shown with two decimals."""
    if cents is None:
        return "—"
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole:,}.{part:02d} {currency}"


def when(value: datetime | str | None) -> str:
    """A timestamp as ``2026-12-03 16:04 UTC`` (the console shows UTC everywhere)."""
    if value is None:
        return "—"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _build() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES_DIR)
    env = templates.env
    env.globals["static"] = static_url
    env.globals["CSRF_FIELD"] = CSRF_FIELD
    env.globals["CSRF_HEADER"] = CSRF_HEADER
    env.filters["money"] = money
    env.filters["when"] = when
    return templates


_templates: Jinja2Templates | None = None


def templates() -> Jinja2Templates:
    """The console's template set (built on first use, not at import)."""
    global _templates
    if _templates is None:
        _templates = _build()
    return _templates


def nav_for(principal: Principal | None) -> list[tuple[str, str]]:
    """The menu a role sees: (path, label)."""
    if principal is None:
        return []
    items = [
        ("/", "Dashboard"),
        ("/products", "Products"),
        ("/stock", "Stock"),
        ("/orders", "Orders"),
        ("/sync-exceptions", "Sync exceptions"),
        ("/cold-chain", "Cold chain"),
    ]
    if principal.has_role(STAFF):
        items.append(("/reports", "Reports"))
        items.append(("/purchase-suggestions", "Purchase suggestions"))
        items.insert(2, ("/import", "Import"))
    if principal.has_role(ADMINS):
        items.append(("/admin/users", "Admin"))
    items.append(("/account", "Account"))
    return items


def render(
    request: Request,
    name: str,
    principal: Principal | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render template ``name`` with the page furniture (menu, CSRF token, role flags)."""
    key: Keyring = request.app.state.dependencies["signing_key"]
    response = templates().TemplateResponse(
        request,
        name,
        {
            "principal": principal,
            "csrf": csrf_token(key, principal) if principal else "",
            "nav": nav_for(principal),
            "is_staff": bool(principal and principal.has_role(STAFF)),
            "is_admin": bool(principal and principal.has_role(ADMINS)),
            "is_clerk": bool(principal and principal.role is Role.CLERK),
            "current_path": request.url.path,
            "htmx": request.headers.get("HX-Request") == "true",
            **context,
        },
        status_code=status_code,
        headers=dict(headers or {}),
    )
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response
