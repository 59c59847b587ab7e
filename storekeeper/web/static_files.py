"""The console's own static files, addressed by content hash so browsers may keep them a year."""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PREFIX = "/static"
_IMMUTABLE = "public, max-age=31536000, immutable"


@lru_cache(maxsize=256)
def content_hash(path: str) -> str:
    """The first 12 hex digits of the SHA-256 of a file under the static directory."""
    return hashlib.sha256((STATIC_DIR / path).read_bytes()).hexdigest()[:12]


def static_url(path: str) -> str:
    """``/static/PATH?v=HASH``: a new file content is a new URL, so the old one may be cached."""
    return f"{STATIC_PREFIX}/{path}?v={content_hash(path)}"


class HashedStaticFiles(StaticFiles):
    """Starlette's static files, cached for a year when asked for by the current content hash.

    A request without the hash (or with a stale one) is answered ``no-cache``, so a browser
    that kept an old link revalidates instead of keeping an old file.
    """

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        wanted = dict(
            pair.split("=", 1)
            for pair in scope.get("query_string", b"").decode().split("&")
            if "=" in pair
        ).get("v")
        try:
            current = content_hash(path) if response.status_code == 200 else None
        except OSError:
            current = None
        response.headers["Cache-Control"] = (
            _IMMUTABLE if wanted and wanted == current else "no-cache"
        )
        return response
