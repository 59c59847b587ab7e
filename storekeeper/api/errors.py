"""The one place where errors become HTTP responses: always ``{"detail", "code"}``."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from typing import Any

import psycopg
from fastapi import FastAPI, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from storekeeper.api import headers as security_headers
from storekeeper.errors import (
    Conflict,
    DomainError,
    InvalidRequest,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from storekeeper.jsonlimits import LIMIT_CODES, TOO_DEEP

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[DomainError], int]] = [
    (NotFound, status.HTTP_404_NOT_FOUND),
    (Conflict, status.HTTP_409_CONFLICT),
    (InvalidRequest, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (PermissionDenied, status.HTTP_403_FORBIDDEN),
    (NotAuthenticated, status.HTTP_401_UNAUTHORIZED),
    (Unavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class Problem(BaseModel):
    """One reason a request failed validation."""

    type: str
    loc: list[str | int]
    msg: str


class ErrorBody(BaseModel):
    """Every error answer: ``detail`` for people (for ``validation_error``, the list of
    problems), ``code`` stable for programs."""

    detail: str | list[Problem]
    code: str


_DESCRIPTIONS = {
    401: "No valid bearer token (`not_authenticated`, `invalid_token`).",
    403: "The caller's role may not do this (`forbidden`).",
    404: "A thing named in the request does not exist.",
    409: "The request clashes with the current state.",
    422: "The request is malformed (`validation_error`) or asks for something that cannot be.",
    429: "Too many requests from this account or address (`rate_limited`); see `Retry-After`.",
    503: "A service this request needs does not answer (`inventory_unavailable`, "
    "`database_unavailable`); retry after `Retry-After` seconds.",
}

DATABASE_RETRY_AFTER_S = 5
"""What a 503 ``database_unavailable`` tells the client to wait before trying again."""
OUTAGE_LOG_EVERY_S = 60.0
"""While the database stays unreachable, one log line at most this often (not one a request)."""


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI declaration of the error answers a route gives, each with ``ErrorBody``.

    Declaring 422 also replaces FastAPI's default, which does not have our shape.
    """
    return {code: {"model": ErrorBody, "description": _DESCRIPTIONS[code]} for code in statuses}


def error_body(detail: Any, code: str) -> dict[str, Any]:
    """The shape of every error response."""
    return {"detail": detail, "code": code}


def status_for(exc: DomainError) -> int:
    """The HTTP status of a domain error family."""
    for family, code in _STATUS:
        if isinstance(exc, family):
            return code
    return status.HTTP_400_BAD_REQUEST


class OutageLog:
    """Logs a database outage once when it starts, then at most once per ``every_s``."""

    def __init__(self, every_s: float = OUTAGE_LOG_EVERY_S) -> None:
        self._every_s = every_s
        self._lock = threading.Lock()
        self._last: float | None = None
        self._suppressed = 0

    def report(self, exc: BaseException) -> None:
        """Log ``exc`` if no line was logged in the last ``every_s``; count it otherwise."""
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last < self._every_s:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._last = self._suppressed, 0, now
        cause = getattr(exc, "orig", None) or exc
        detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        log.error(
            "database unavailable, answering 503 (%d more such requests since the last line): %s",
            suppressed,
            detail,
        )


_SQLITE_UNAVAILABLE = ("unable to open database", "disk i/o error", "database is locked")
"""SQLite's OperationalError also means "no such table" (a bug, a 500): these mean unreachable."""


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached (not that a statement was wrong)."""
    if isinstance(exc, PoolTimeout):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError):
        exc = exc.orig if exc.orig is not None else exc
    if isinstance(exc, sqlite3.OperationalError):
        return any(reason in str(exc).lower() for reason in _SQLITE_UNAVAILABLE)
    # psycopg: connection refused or lost, server shutting down, timeouts, lock not available.
    return isinstance(exc, psycopg.OperationalError)


def _undecodable_body(cause: BaseException | None) -> dict[str, Any] | None:
    """The problem with a request body FastAPI could not decode, if that is why it failed."""
    if isinstance(cause, RecursionError):
        msg = "JSON nested too deeply"
        return {"type": TOO_DEEP, "loc": ["body"], "msg": msg}
    if isinstance(cause, UnicodeDecodeError):
        return {"type": "json_invalid", "loc": ["body"], "msg": "JSON is not valid UTF-8"}
    if isinstance(cause, ValueError):  # e.g. an integer of more than 4300 digits
        return {"type": "json_invalid", "loc": ["body"], "msg": "JSON could not be read"}
    return None


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    outage = OutageLog()

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        code = status_for(exc)
        headers = {"WWW-Authenticate": "Bearer"} if code == 401 else None
        return JSONResponse(error_body(exc.detail, exc.code), status_code=code, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {k: v for k, v in error.items() if k in ("type", "loc", "msg")}
            for error in exc.errors()
        ]
        # A free-form JSON limit names itself, so a client can tell it from a typo.
        limit = next((e["type"] for e in errors if e.get("type") in LIMIT_CODES), None)
        return JSONResponse(
            error_body(jsonable_encoder(errors), limit or "validation_error"),
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    @app.exception_handler(DataError)
    async def _data(request: Request, exc: DataError) -> JSONResponse:
        # The database refused a value the schemas let through (PostgreSQL: a NUL character in
        # text): bad input, not a server fault.
        log.warning(
            "database refused a value on %s %s: %s", request.method, request.url.path, exc.orig
        )
        return JSONResponse(
            error_body("a value in the request cannot be stored", "invalid_data"),
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and (problem := _undecodable_body(exc.__cause__)):
            # FastAPI answers 400 to a body its JSON decoder fails on other than by a syntax
            # error; that is malformed JSON like any other, so a 422 as for a syntax error.
            code = problem["type"] if problem["type"] in LIMIT_CODES else "validation_error"
            return JSONResponse(
                error_body([problem], code), status_code=status.HTTP_422_UNPROCESSABLE_CONTENT
            )
        return JSONResponse(
            error_body(exc.detail, _HTTP_CODES.get(exc.status_code, "http_error")),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        # Lost database: every request fails the same way until it is back, so one line per
        # outage (not a traceback a request) and a 503 that says when to retry.
        outage.report(exc)
        production = request.app.state.dependencies["settings"].env == "production"
        return JSONResponse(
            error_body("the database is unavailable; retry later", "database_unavailable"),
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={
                **security_headers.for_api(hsts=production),
                "Retry-After": str(DATABASE_RETRY_AFTER_S),
            },
        )

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        if not is_database_unavailable(exc):
            raise exc  # another database error: the 500 below, with its traceback
        return _database_unavailable(request, exc)

    # Handled here, inside the routing, and not only by the catch-all below: Starlette re-raises
    # whatever reaches the catch-all, and the server would log a traceback a request.
    for family in (DBAPIError, PoolTimeout, psycopg.OperationalError):
        app.add_exception_handler(family, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Never a traceback or SQL in a response; the log has the details. Starlette sends this
        # answer from outside every middleware, so it brings its own security headers.
        if is_database_unavailable(exc):  # raised outside the routes (a middleware)
            return _database_unavailable(request, exc)
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        production = request.app.state.dependencies["settings"].env == "production"
        return JSONResponse(
            error_body("internal error", "internal_error"),
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
            headers=security_headers.for_api(hsts=production),
        )
