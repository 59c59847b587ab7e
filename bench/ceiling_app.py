"""W1's ceiling: a bare Starlette app answering ``GET /api/v1/products/{sku}`` from a dict.

It serves the very JSON documents Storekeeper would (written by ``bench.seed``), run by the same
uvicorn with the same flags: the gap to it is what the framework stack and the database cost.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PRODUCTS_FILE_ENV = "BENCH_CEILING_PRODUCTS"


def create_app() -> Starlette:
    """The app factory (``uvicorn --factory bench.ceiling_app:create_app``)."""
    products: dict[str, dict[str, Any]] = json.loads(
        Path(os.environ[PRODUCTS_FILE_ENV]).read_text()
    )

    async def product(request: Request) -> JSONResponse:
        document = products.get(request.path_params["sku"])
        if document is None:
            return JSONResponse({"detail": "no such SKU", "code": "unknown_sku"}, status_code=404)
        return JSONResponse(document)

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/api/v1/products/{sku}", product), Route("/healthz", healthz)])
