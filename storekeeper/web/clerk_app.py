"""The clerk's offline app (issue 15): an installable PWA served as static files at ``/app/``.

Everything the app does happens in the browser against the JSON API (``/api/v1/auth/*``,
``/api/v1/sync/*``); the server only hands out its files, with a policy of their own
(``APP_POLICY``) and ``Cache-Control: no-cache``, so the service worker and the browser always
revalidate and a new release is picked up on the next online start. ``sw.js`` is served with
the shell's content hash in place of ``__SHELL_HASH__``: its cache is named after the files it
holds, so a changed file is a new cache and the old one is dropped. Manual: docs/clerk-app.md.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

APP_DIR = Path(__file__).parent / "app"
APP_PREFIX = "/app"
APP_POLICY = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; worker-src 'self'; manifest-src 'self'; form-action 'none'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
"""The app's Content-Security-Policy: its own files and this server's API, nothing inline;
``'wasm-unsafe-eval'`` lets the barcode polyfill compile its WebAssembly (camera scanning in a
browser without ``BarcodeDetector``), it allows no JavaScript eval."""
SHELL = (
    "index.html",
    "app.css",
    "app.js",
    "store.js",
    "replica.js",
    "hlc.js",
    "scan.js",
    "exceptions.js",
    "manifest.webmanifest",
    "icon.svg",
    "icon-192.png",
    "icon-512.png",
    "vendor/idb-8.0.4/index.js",
)
"""The files the service worker caches (written into sw.js in place of ``"__SHELL_FILES__"``)."""
_HASH_MARK = b"__SHELL_HASH__"
_FILES_MARK = b'"__SHELL_FILES__"'

mimetypes.add_type("application/manifest+json", ".webmanifest")
router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def shell_hash() -> str:
    """The first 12 hex digits of the SHA-256 of the shell files and sw.js, read once."""
    digest = hashlib.sha256()
    for name in (*SHELL, "sw.js"):
        digest.update(name.encode() + b"\0" + (APP_DIR / name).read_bytes())
    return digest.hexdigest()[:12]


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": APP_POLICY, "Cache-Control": "no-cache"}


@router.get("/app/sw.js")
def service_worker() -> Response:
    """The service worker, its cache named after the shell's content hash."""
    files = ", ".join(json.dumps(name) for name in SHELL).encode()
    body = (
        (APP_DIR / "sw.js")
        .read_bytes()
        .replace(_HASH_MARK, shell_hash().encode())
        .replace(_FILES_MARK, files)
    )
    return Response(
        body,
        media_type="text/javascript",
        headers={**_headers(), "Service-Worker-Allowed": f"{APP_PREFIX}/"},
    )


class AppFiles(StaticFiles):
    """The app's files (``/app/`` is index.html), each with the app's policy and ``no-cache``."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_headers())
        return response


def install(app: FastAPI) -> None:
    """Serve the app at ``/app/`` (the service worker route first, then the files; ``/app``
    is redirected to ``/app/`` by the router's trailing-slash rule)."""
    app.include_router(router)
    app.mount(APP_PREFIX, AppFiles(directory=APP_DIR, html=True), name="clerk-app")
