"""Console pages: sync exceptions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from storekeeper.accounts.domain import STOCK_HANDLERS, Principal
from storekeeper.web.session import allowed
from storekeeper.web.templating import render

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(allowed(STOCK_HANDLERS))]


@router.get("/sync-exceptions")
def index(request: Request, principal: Viewer) -> Response:
    """Sync exceptions."""
    return render(request, "sync_exceptions/index.html", principal, title="Sync exceptions")
