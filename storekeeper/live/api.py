"""Live updates over HTTP: ``GET /events`` (Server-Sent Events) and ``WS /live`` (WebSocket).

Both authenticate like every route, subscribe to this process's hub (``live.hub``) and send the
events the caller may see; docs/live.md is the client's guide.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import OAuth2PasswordBearer

from storekeeper.accounts.authentication import Authenticator
from storekeeper.api.deps import AuthenticatorDep
from storekeeper.api.errors import error_body, responses, status_for
from storekeeper.errors import DomainError
from storekeeper.live import domain, service
from storekeeper.live.feed import Delivery
from storekeeper.live.hub import Hub, Subscription, Unavailable
from storekeeper.live.positions import MAX_LENGTH

router = APIRouter(tags=["live"])
_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)
_AUTH_TIMEOUT_S = 10.0
_RETRY_BUSY_MS = 5000
_SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
# WebSocket close codes: 4000 + the HTTP status where one fits (docs/live.md).
_CLOSE_CODES = {"revoked": 4401, "overflow": 1013, "shutdown": 1012}

TypesQuery = Annotated[
    str | None,
    Query(
        max_length=200,
        description="Comma-separated event types to receive; all by default: "
        + ", ".join(domain.PUBLIC_TYPES),
    ),
]
ResumeQuery = Annotated[
    str | None,
    Query(
        max_length=MAX_LENGTH,
        description="Resume after this event id (for clients that cannot send `Last-Event-ID`).",
    ),
]


def _hub(app: Any) -> Hub:
    hub: Hub = app.state.live_hub
    return hub


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "An endless stream of events (docs/live.md).",
        },
        **responses(401, 403, 422),
    },
)
async def events(
    request: Request,
    authenticator: AuthenticatorDep,
    token: Annotated[str | None, Depends(_bearer)],
    types: TypesQuery = None,
    last_event_id: ResumeQuery = None,
    last_event_id_header: Annotated[
        str | None, Header(alias="Last-Event-ID", max_length=MAX_LENGTH)
    ] = None,
) -> Response:
    """Server-Sent Events: `stock.changed`, `order.status_changed`, `alert.raised`,
    `alert.cleared` as the caller may see them; each event's `id` resumes after it."""
    caller = await service.authenticate(authenticator, token)
    return await sse_stream(
        request, caller, domain.parse_types(types), last_event_id_header or last_event_id
    )


async def sse_stream(
    request: Request, caller: service.Caller, wanted: frozenset[str], resume: str | None
) -> Response:
    """The Server-Sent Events answer for a verified ``caller`` (the API's bearer stream and the
    console's cookie stream alike)."""
    hub = _hub(request.app)
    try:
        sub, backlog = await hub.subscribe(caller.principal, wanted, transport="sse", resume=resume)
    except Unavailable as exc:
        # Not a 503: EventSource gives up for good on any status but 200, whereas a stream that
        # ends at once is retried after ``retry`` ms, which is what a busy server wants.
        body = f"retry: {_RETRY_BUSY_MS}\n\n: closed unavailable: {exc}\n\n".encode()
        return Response(body, media_type="text/event-stream", headers=_SSE_HEADERS)
    return StreamingResponse(
        _sse(hub, sub, backlog, caller),
        media_type="text/event-stream",
        headers=_SSE_HEADERS,
    )


async def _sse(
    hub: Hub, sub: Subscription, backlog: list[Delivery], caller: service.Caller
) -> AsyncIterator[bytes]:
    try:
        yield b"retry: 2000\n\n"  # EventSource reconnects after 2 s, sending Last-Event-ID
        async for item in hub.stream(sub, backlog, caller.recheck):
            yield b": ping\n\n" if item is None else _frame(item)
        yield f": closed {sub.closed}\n\n".encode()
    finally:
        hub.unsubscribe(sub)


def _frame(delivery: Delivery) -> bytes:
    data = orjson.dumps(delivery.event.body())
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (
        delivery.id.encode(),
        delivery.event.type.encode(),
        data,
    )


@router.websocket("/live")
async def live(
    websocket: WebSocket,
    token: str | None = None,
    types: str | None = None,
    last_event_id: str | None = None,
) -> None:
    """WebSocket: the same events as `GET /events`, one JSON message each, with its `id`."""
    authenticator: Authenticator = websocket.app.state.dependencies["authenticator"]
    hub = _hub(websocket.app)
    caller: service.Caller | None = None
    try:
        wanted = domain.parse_types(types)
        if token is not None:
            caller = await service.authenticate(authenticator, token)
    except DomainError as exc:
        await _deny(websocket, status_for(exc), error_body(exc.detail, exc.code))
        return
    if caller is None:  # browsers cannot set headers: the token comes as the first message
        await websocket.accept()
        try:
            caller = await asyncio.wait_for(
                _first_message(websocket, authenticator), _AUTH_TIMEOUT_S
            )
        except DomainError as exc:
            await _refuse(websocket, 4000 + status_for(exc), error_body(exc.detail, exc.code))
            return
        except TimeoutError:
            body = error_body("send the token first", "not_authenticated")
            await _refuse(websocket, 4401, body)
            return
        except WebSocketDisconnect:
            return
    try:
        sub, backlog = await hub.subscribe(
            caller.principal, wanted, transport="ws", resume=last_event_id or None
        )
    except Unavailable as exc:
        if websocket.client_state.name == "CONNECTED":
            await _refuse(websocket, 1013, error_body(str(exc), "live_unavailable"))
        else:
            await _deny(websocket, 503, error_body(str(exc), "live_unavailable"))
        return
    except DomainError as exc:  # this account's share of streams is taken (403)
        if websocket.client_state.name == "CONNECTED":
            await _refuse(websocket, 4000 + status_for(exc), error_body(exc.detail, exc.code))
        else:
            await _deny(websocket, status_for(exc), error_body(exc.detail, exc.code))
        return
    await _pump(websocket, hub, sub, backlog, caller)


async def _first_message(websocket: WebSocket, authenticator: Authenticator) -> service.Caller:
    """``{"token": "..."}`` or the bare token, as the first message after the handshake."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    text = message.get("text") or (message.get("bytes") or b"").decode("utf-8", "replace")
    token: str | None = text.strip()
    with contextlib.suppress(orjson.JSONDecodeError):
        parsed = orjson.loads(text)
        token = parsed.get("token") if isinstance(parsed, dict) else None
    return await service.authenticate(authenticator, token if isinstance(token, str) else None)


async def _pump(
    websocket: WebSocket,
    hub: Hub,
    sub: Subscription,
    backlog: list[Delivery],
    caller: service.Caller,
) -> None:
    """Send events until the subscription closes; a second task notices the client leaving."""
    if websocket.client_state.name != "CONNECTED":
        await websocket.accept()
    receiver = asyncio.create_task(_drain(websocket, sub))
    try:
        async for item in hub.stream(sub, backlog, caller.recheck):
            if item is None:
                await websocket.send_text('{"type":"ping"}')
            else:
                body = {"id": item.id, **item.event.body()}
                await websocket.send_text(orjson.dumps(body).decode())
        code = _CLOSE_CODES.get(sub.closed or "")
        if code is not None:
            await websocket.close(code=code, reason=sub.closed or "")
    except WebSocketDisconnect:
        pass
    finally:
        receiver.cancel()
        hub.unsubscribe(sub)


async def _drain(websocket: WebSocket, sub: Subscription) -> None:
    """Read (and ignore) what the client sends, to learn when it has gone."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    sub.close("gone")


async def _deny(websocket: WebSocket, status: int, body: dict[str, Any]) -> None:
    """Refuse the handshake with an HTTP answer where the server supports it."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse(body, status_code=status))
    else:
        await websocket.close(code=4000 + status, reason=body["code"])


async def _refuse(websocket: WebSocket, code: int, body: dict[str, Any]) -> None:
    """Tell an accepted client why, then close."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await websocket.send_text(orjson.dumps({"type": "error", **body}).decode())
        await websocket.close(code=code, reason=body["code"])
