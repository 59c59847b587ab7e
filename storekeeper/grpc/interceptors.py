"""One place that turns what a handler raised into a gRPC status, and counts every call.

The gRPC twin of ``api/errors.py``: each family of ``storekeeper.errors`` maps to one status
code, the detail becomes the status message and the stable machine-readable code travels in the
``storekeeper-code`` trailing metadata. Anything else is logged and answered ``INTERNAL`` with
no traceback text, so a client never sees ``UNKNOWN``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import grpc
from sqlalchemy.exc import OperationalError

from storekeeper.errors import (
    Conflict,
    DomainError,
    InvalidRequest,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
)
from storekeeper.inventory.reservations import RefInUse
from storekeeper.observability import metrics

log = logging.getLogger(__name__)

CODE_METADATA_KEY = "storekeeper-code"


class Overloaded(DomainError):
    """The server has no room for this call now (``RESOURCE_EXHAUSTED``); retry later."""

    code = "overloaded"


# Most specific first: the first family an error belongs to decides its status.
_STATUS: tuple[tuple[type[DomainError], grpc.StatusCode], ...] = (
    (RefInUse, grpc.StatusCode.ALREADY_EXISTS),
    (NotAuthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (Conflict, grpc.StatusCode.FAILED_PRECONDITION),
    (Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED),
)


def status_of(error: DomainError) -> grpc.StatusCode:
    """The gRPC status code of a domain error's family."""
    for family, code in _STATUS:
        if isinstance(error, family):
            return code
    return grpc.StatusCode.FAILED_PRECONDITION


def _outcome(error: Exception) -> tuple[grpc.StatusCode, str, str]:
    """Status code, message and machine-readable code for what a handler raised."""
    if isinstance(error, DomainError):
        return status_of(error), error.detail, error.code
    if isinstance(error, OperationalError):
        log.warning("database unavailable: %s", error.orig)
        return grpc.StatusCode.UNAVAILABLE, "the database is unavailable; retry", "unavailable"
    log.error("unexpected error in a gRPC handler", exc_info=error)
    return grpc.StatusCode.INTERNAL, "internal error", "internal_error"


def _fail(context: grpc.ServicerContext, method: str, error: Exception) -> NoReturn:
    code, detail, machine_code = _outcome(error)
    metrics.GRPC_CALLS.labels(method=method, code=code.name).inc()
    context.set_trailing_metadata(((CODE_METADATA_KEY, machine_code),))
    context.abort(code, detail)


class ErrorInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Maps exceptions to status codes and counts calls in ``GRPC_CALLS``."""

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        """Wrap the handler of a known method; unknown methods stay ``UNIMPLEMENTED``."""
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method.rsplit("/", 1)[-1]
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                _unary(handler.unary_unary, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                _stream(handler.unary_stream, method),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler  # this service has no client-streaming methods


def _unary(
    behavior: Callable[[Any, grpc.ServicerContext], Any], method: str
) -> Callable[[Any, grpc.ServicerContext], Any]:
    def handle(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            response = behavior(request, context)
        except Exception as error:
            _fail(context, method, error)
        metrics.GRPC_CALLS.labels(method=method, code="OK").inc()
        return response

    return handle


def _stream(
    behavior: Callable[[Any, grpc.ServicerContext], Iterator[Any]], method: str
) -> Callable[[Any, grpc.ServicerContext], Iterator[Any]]:
    def handle(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            yield from behavior(request, context)
        except Exception as error:
            _fail(context, method, error)
        # A stream ends when the client hangs up (the usual end of a watch) or the server stops.
        code = "OK" if context.is_active() else "CANCELLED"
        metrics.GRPC_CALLS.labels(method=method, code=code).inc()

    return handle
