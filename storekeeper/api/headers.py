"""Security headers on every response, and CORS for the configured origins only."""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.datastructures import MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The API answers JSON only: it needs nothing from a browser, and nobody may frame it.
API_POLICY = "default-src 'none'; frame-ancestors 'none'"
_API_POLICY_RAW = API_POLICY.encode("latin-1")

# The documentation page (storekeeper.api.app._docs: FastAPI's get_swagger_ui_html and
# get_swagger_ui_oauth2_redirect_html with the vendored Swagger UI), with exactly the sources its
# HTML loads: this server's own files, no other host. Its inline bootstrap scripts are allowed by
# hash, computed from the page itself ({scripts}); Swagger UI sets inline styles from its bundle,
# hence 'unsafe-inline' for styles only, and draws its icons as data: SVGs.
_PAGE_BASE = "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_SWAGGER_POLICY = (
    "default-src 'none'; script-src 'self' {scripts}; style-src 'self' 'unsafe-inline'; "
    f"img-src 'self' data:; connect-src 'self'; {_PAGE_BASE}"
)
DOCS_PAGES = {
    "/docs": _SWAGGER_POLICY,
    "/docs/oauth2-redirect": _SWAGGER_POLICY,
}
DOCS_ASSETS_PREFIX = "/docs/static/"
# Public and the same for everyone: browsers and proxies may cache these.
CACHEABLE = frozenset({*DOCS_PAGES, "/openapi.json"})

HSTS = "max-age=31536000; includeSubDomains"
CORS_METHODS = ("GET", "POST", "PATCH", "DELETE")
CORS_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")

_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)


def baseline(*, hsts: bool) -> dict[str, str]:
    """The headers every response carries, whatever produced it."""
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",
    }
    if hsts:
        headers["Strict-Transport-Security"] = HSTS
    return headers


def for_api(*, hsts: bool) -> dict[str, str]:
    """The headers of a JSON API response: the baseline, the strict policy, never cached."""
    return {
        **baseline(hsts=hsts),
        "Content-Security-Policy": API_POLICY,
        "Cache-Control": "no-store",
    }


def _script_hashes(html: bytes) -> str:
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script).digest()).decode()}'"
        for script in _INLINE_SCRIPT.findall(html)
    )


class SecurityHeaders:
    """Add the security headers (see docs/security.md) to every HTTP response.

    JSON gets the strict policy and ``Cache-Control: no-store`` (unless the route chose its own
    caching); a documentation page gets a policy allowing its assets and its own inline scripts,
    so its body is buffered (a few KiB) to hash them. ``Strict-Transport-Security`` only when
    ``hsts`` (production, behind TLS). A 500 never passes through here: Starlette sends it from
    outside every middleware, so storekeeper.api.errors adds ``for_api`` itself.
    """

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts
        # What every JSON answer gets, as raw ASGI headers: see _add_api_headers.
        self._baseline = [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in baseline(hsts=hsts).items()
        ]
        self._baseline_names = frozenset(name for name, _ in self._baseline)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        page_policy = DOCS_PAGES.get(path)
        held: Message | None = None
        body = bytearray()

        async def send_with_headers(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                if page_policy is not None:
                    message.setdefault("headers", [])
                    headers = MutableHeaders(scope=message)
                    if headers.get("content-type", "").startswith("text/html"):
                        headers.update(baseline(hsts=self.hsts))
                        held = message  # sent with the body, once the scripts are hashed
                        return
                cacheable = path in CACHEABLE or path.startswith(DOCS_ASSETS_PREFIX)
                self._add_api_headers(message, cacheable=cacheable)
            elif message["type"] == "http.response.body" and held is not None:
                body.extend(message.get("body", b""))
                if message.get("more_body", False):
                    return
                assert page_policy is not None
                policy = page_policy.format(scripts=_script_hashes(bytes(body)))
                MutableHeaders(scope=held)["Content-Security-Policy"] = policy
                await send(held)
                held = None
                message = {"type": "http.response.body", "body": bytes(body)}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _add_api_headers(self, message: Message, *, cacheable: bool) -> None:
        """What ``MutableHeaders`` would do for any answer but a documentation page, on the
        raw list: every answer passes here (W1: the header object's scans of the list for
        each name were as costly as the rest of the answer's headers)."""
        raw: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
        message["headers"] = raw
        present = {name for name, _ in raw}  # ASGI header names are lower case
        if present.isdisjoint(self._baseline_names):
            raw.extend(self._baseline)
        else:  # replacing a header the app set: rare, and MutableHeaders knows how
            MutableHeaders(raw=raw).update(baseline(hsts=self.hsts))
        # A console page sets its own policy (storekeeper.web.templating.PAGE_POLICY).
        if b"content-security-policy" not in present:
            raw.append((b"content-security-policy", _API_POLICY_RAW))
        if not cacheable and b"cache-control" not in present:
            raw.append((b"cache-control", b"no-store"))


class Cors:
    """Starlette's CORS middleware for exactly ``origins``; no CORS headers at all if empty.

    No credentials mode: clients send the bearer token in ``Authorization``, which needs only to
    be an allowed header, never cookies.
    """

    def __init__(self, app: ASGIApp, *, origins: list[str]) -> None:
        self.app: ASGIApp = app
        if origins:
            self.app = CORSMiddleware(
                app,
                allow_origins=origins,
                allow_methods=CORS_METHODS,
                allow_headers=CORS_HEADERS,
                allow_credentials=False,
                max_age=600,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
