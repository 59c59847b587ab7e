"""Console pages: admin."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from storekeeper.accounts.domain import ADMINS, Principal
from storekeeper.web.session import allowed
from storekeeper.web.templating import render

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(allowed(ADMINS))]


@router.get("/admin/users")
def index(request: Request, principal: Viewer) -> Response:
    """Admin."""
    return render(request, "admin/index.html", principal, title="Admin")
