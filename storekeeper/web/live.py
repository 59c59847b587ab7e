"""The console's live stream: the API's Server-Sent Events, authenticated by the session cookie.

Pages subscribe with htmx's SSE extension (``sse-connect="/live/events"``) and refresh a part
of themselves on an event (``hx-trigger="sse:stock.changed"``); the events carry what the
signed-in person may see, exactly as ``GET /api/v1/events`` would send them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import Response

from storekeeper.live import domain, service
from storekeeper.live.api import sse_stream
from storekeeper.live.positions import MAX_LENGTH
from storekeeper.web.session import SESSION_COOKIE, ConsoleUser

router = APIRouter(include_in_schema=False)


@router.get("/live/events")
async def events(
    request: Request,
    _: ConsoleUser,
    types: Annotated[str | None, Query(max_length=200)] = None,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=MAX_LENGTH)
    ] = None,
) -> Response:
    """``stock.changed``, ``order.status_changed``, ``alert.raised``, ``alert.cleared``."""
    authenticator = request.app.state.dependencies["authenticator"]
    caller = await service.authenticate(authenticator, request.cookies.get(SESSION_COOKIE))
    return await sse_stream(request, caller, domain.parse_types(types), last_event_id)
