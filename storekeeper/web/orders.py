"""Console pages: orders."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from storekeeper.accounts.domain import STOCK_HANDLERS, Principal
from storekeeper.web.session import allowed
from storekeeper.web.templating import render

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(allowed(STOCK_HANDLERS))]


@router.get("/orders")
def index(request: Request, principal: Viewer) -> Response:
    """Orders."""
    return render(request, "orders/index.html", principal, title="Orders")
