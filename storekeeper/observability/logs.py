"""Logging for every Storekeeper process: JSON lines by default, ``LOG_CFG`` to override.

The default writes one JSON object per line to stderr with ``ts``, ``level``, ``logger``,
``msg``, ``pid`` and, when known, ``request_id``, ``user_id`` and ``order_id`` (plus any
``extra=`` fields), so a log shipper needs no parsing rules. ``LOG_CFG=path.json`` replaces it
with any ``logging.config.dictConfig`` document (``deploy/logging.example.json``). Either way the
``RequestContext`` and ``RedactSecrets`` filters below are meant to sit on every handler: a
filter on a handler sees records propagated from every logger, one on a logger does not.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import os
import re
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson
from starlette.types import Scope

LOG_CFG_ENV = "LOG_CFG"

_MASK = "***"
# Each pattern keeps its group 1 (the name or prefix) and masks the secret after it.
_SECRETS = [
    # Bearer tokens, wherever they were formatted into a message.
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+"),
    # Authorization headers, whatever the scheme: the whole value up to a quote or comma.
    re.compile(r"(?i)(\bauthorization['\"]?\s*[:=]\s*['\"]?)[^'\",}\n]+"),
    # name=value, name: value, "name": "value" for the usual secret-bearing names; no word
    # boundary in front, so STOREKEEPER_SECRET_KEY= and csrf_token= are caught as well.
    re.compile(
        r"(?i)((?:password|passwd|pwd|secret_key|secret|token|api_key|apikey|otp)"
        r"['\"]?\s*[:=]\s*['\"]?)[^\s&'\",;}]+"
    ),
    # Passwords inside URLs: scheme://user:password@host.
    re.compile(r"(://[^/\s:@]+:)[^/\s@]+(?=@)"),
]
# JWTs (three base64url parts, the first always starting with a JSON object: "eyJ").
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


# Every pattern above needs one of these: most lines (the access log) pass one search only.
_MAYBE_SECRET = re.compile(r"(?i)bearer|authoriz|eyJ|passw|pwd|secret|token|api_?key|otp|://")


def may_hold_secret(text: str) -> bool:
    """Whether ``redact`` could change ``text`` (or a longer text it starts, see the access
    log); False is certain, True only means "look closer"."""
    return _MAYBE_SECRET.search(text) is not None


def redact(text: str) -> str:
    """``text`` with tokens, passwords and other secrets replaced by ``***``."""
    if not _MAYBE_SECRET.search(text):
        return text
    text = _JWT.sub(_MASK, text)
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: m.group(1) + _MASK, text)
    return text


@dataclass(slots=True)
class RequestInfo:
    """What the logs should say about the request being answered.

    Mutable and shared by reference: the middleware creates it, the authentication dependency
    fills in ``user_id`` later, and the middleware's access-log line still sees it.
    """

    request_id: str
    user_id: str | None = None
    scope: Scope = field(default_factory=dict)

    @property
    def order_id(self) -> str | None:
        """The ``{order_id}`` of the matched route, once routing has happened."""
        value = self.scope.get("path_params", {}).get("order_id")
        return str(value) if value is not None else None


current_request: contextvars.ContextVar[RequestInfo | None] = contextvars.ContextVar(
    "storekeeper_request", default=None
)


def set_user(user_id: object) -> None:
    """Record who the current request's caller is, for its log lines."""
    info = current_request.get()
    if info is not None:
        info.user_id = str(user_id)


class RequestContext(logging.Filter):
    """Stamp ``request_id``, ``user_id`` and ``order_id`` on each record (None when unknown).

    Values passed with ``extra=`` win, so a job can log the order it works on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        info = current_request.get()
        if not hasattr(record, "request_id"):
            record.request_id = info.request_id if info else None
        if not hasattr(record, "user_id"):
            record.user_id = info.user_id if info else None
        if not hasattr(record, "order_id"):
            record.order_id = info.order_id if info else None
        return True


class RedactSecrets(logging.Filter):
    """Mask secrets in the message, its arguments and its traceback before any handler writes.

    The message is formatted here (and ``args`` dropped) so that a token passed as an argument
    is masked too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


_second: tuple[int, str] = (0, "1970-01-01T00:00:00")  # the last second formatted, and how


def timestamp(created: float) -> str:
    """``created`` (``time.time()``) as ``datetime.fromtimestamp(created, UTC)`` writes it with
    ``isoformat(timespec="milliseconds")``, from a cache of the current second's part.

    Every access line needs one; building a datetime for each cost more than the rest of the
    line's JSON. Rounding is fromtimestamp's: to the microsecond, half to even, then truncated.
    """
    global _second
    second = int(created)
    micros = round((created - second) * 1_000_000)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    cached, text = _second  # one read: other threads may replace it meanwhile
    if cached != second:
        text = datetime.fromtimestamp(second, UTC).isoformat(timespec="seconds")[:-6]
        _second = (second, text)
    return f"{text}.{micros // 1000:03d}+00:00"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, msg, request context, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,  # several workers write to one stream
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD and value is not None:
                line[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc"] = record.exc_text
        # orjson: several times faster than json, and this runs for every access-log line.
        return orjson.dumps(line, default=str).decode()


Fields = dict[str, Any]
"""A line's fields after ``pid``, in order, None values left out (see ``direct_stream``)."""
_Prepared = tuple[float, str, str, Fields]  # created, logger name, message, fields


def _prepared_json(created: float, logger: str, msg: str, fields: Fields) -> str:
    """The line ``JsonFormatter`` writes for an INFO record with these attributes."""
    line: dict[str, Any] = {
        "ts": timestamp(created),
        "level": "INFO",
        "logger": logger,
        "msg": msg,
        "pid": os.getpid() if logging.logProcesses else None,
        **fields,
    }
    return orjson.dumps(line, default=str).decode()


class BackgroundStream(logging.Handler):
    """A stream handler that formats and writes on a thread of its own, in batches.

    The emitting thread (the event loop, for the access log) only runs the filters, which need
    its context, and appends the record to a queue. A write per line on the event loop released
    the GIL at every request and left the loop queueing to get it back from the threads running
    database work (``wrk`` on ``GET /api/v1/products/{sku}``: about 20 % fewer requests per
    second); a batch every ``interval_s`` costs a few GIL hand-overs a second instead. Errors
    wake the writer at once; at exit, ``logging.shutdown`` closes the handler, which writes
    what is queued.
    """

    def __init__(self, stream: IO[str] | None = None, interval_s: float = 0.1) -> None:
        """Write to ``stream`` (standard error by default) every ``interval_s`` seconds."""
        super().__init__()
        self._stream = stream or sys.stderr
        self._interval = interval_s
        # append/popleft are thread-safe
        self._pending: deque[logging.LogRecord | _Prepared] = deque()
        self._wake = threading.Event()
        self._closing = False
        self._writer = threading.Thread(target=self._write_loop, name="log-writer", daemon=True)
        self._writer.start()

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the record (the filters ran already, in the caller's context)."""
        self._pending.append(record)
        if record.levelno >= logging.ERROR:
            self._wake.set()

    def emit_info(self, created: float, logger: str, msg: str, fields: Fields) -> None:
        """Queue an INFO line whose fields the caller built: no LogRecord, lock, filter or
        formatter on the caller's thread. Only for lines this handler would write the same way
        (``direct_stream``): ``msg`` needs no redaction and ``fields`` already hold the request
        context the filters would have added."""
        self._pending.append((created, logger, msg, fields))

    def _write_loop(self) -> None:
        while not self._closing:
            self._wake.wait(self._interval)
            self._wake.clear()
            self._write_pending()
        self._write_pending()

    def _write_pending(self) -> None:
        lines = []
        while self._pending:
            item = self._pending.popleft()
            try:
                if isinstance(item, logging.LogRecord):
                    lines.append(self.format(item) + "\n")
                else:
                    lines.append(_prepared_json(*item) + "\n")
            except Exception:  # one bad record must not stop the writer
                if isinstance(item, logging.LogRecord):
                    self.handleError(item)
                else:
                    self.handleError(logging.makeLogRecord({"msg": item[2], "name": item[1]}))
        if lines:
            self._stream.write("".join(lines))
            self._stream.flush()

    def close(self) -> None:
        """Write what is queued, then stop the writer thread."""
        if not self._closing:  # logging closes handlers at exit, dictConfig when reconfiguring
            self._closing = True
            self._wake.set()
            self._writer.join(timeout=5)
        super().close()


_DIRECT_FILTERS = (RequestContext, RedactSecrets)


def direct_stream(logger: logging.Logger) -> BackgroundStream | None:
    """The handler an INFO record of ``logger`` would reach, when it is the only one and
    writes exactly as the default configuration does; else None.

    Exactly: a ``BackgroundStream`` (not a subclass) with a ``JsonFormatter`` and the two
    filters above, no filter on ``logger``, no other handler anywhere up the hierarchy (pytest's
    ``caplog``, a ``LOG_CFG`` file handler: then records take the usual way). A caller holding
    such a handler may ``emit_info`` the line's fields instead of logging a record: the access
    log does, once per request, where a LogRecord, its lock, filters and formatter cost more
    than the rest of the request's bookkeeping. Checked per call, so a reconfiguration counts
    at once.
    """
    if logger.filters or not logger.isEnabledFor(logging.INFO):
        return None
    found = None
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if found is not None or type(handler) is not BackgroundStream:
                return None
            found = handler
        current = current.parent if current.propagate else None
    if found is None or found.level > logging.INFO or type(found.formatter) is not JsonFormatter:
        return None
    filters = found.filters
    if len(filters) != 2 or {type(f) for f in filters} != set(_DIRECT_FILTERS):
        return None
    return found


def default_config(level: str = "INFO") -> dict[str, Any]:
    """The built-in ``dictConfig``: JSON lines on stderr, secrets masked, uvicorn included."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": f"{__name__}.RequestContext"},
            "redact": {"()": f"{__name__}.RedactSecrets"},
        },
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "console": {
                "()": f"{__name__}.BackgroundStream",
                "stream": "ext://sys.stderr",
                "formatter": "json",
                "filters": ["context", "redact"],
            }
        },
        # uvicorn's own loggers propagate to the root: one format for everything.
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            # Storekeeper writes its own access line (storekeeper.access), by route template.
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
            "alembic.runtime.plugins": {"level": "WARNING"},
        },
        "root": {"level": level, "handlers": ["console"]},
    }


def logging_config() -> dict[str, Any]:
    """The ``dictConfig`` in force: the file named by ``LOG_CFG``, else ``default_config()``.

    Handlers writing files get their directory created, so the example config works as is.
    """
    path = os.environ.get(LOG_CFG_ENV)
    if not path:
        return default_config()
    try:
        config: dict[str, Any] = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{LOG_CFG_ENV}={path}: cannot load a logging config: {exc}") from exc
    for handler in config.get("handlers", {}).values():
        filename = handler.get("filename")
        if filename:
            Path(filename).parent.mkdir(parents=True, exist_ok=True)
    return config


def configure() -> dict[str, Any]:
    """Apply ``logging_config()`` to this process and return it (uvicorn workers reuse it)."""
    config = logging_config()
    logging.config.dictConfig(config)
    return config


def configure_celery() -> None:
    """Apply ``configure()`` and keep Celery's worker from installing its own handlers.

    A receiver on ``setup_logging`` tells Celery that logging is configured already (besides
    ``worker_hijack_root_logger=False`` in the app): its task and worker loggers then propagate
    to our root handlers, in our format, through our redaction.
    """
    from celery.signals import setup_logging

    configure()
    setup_logging.connect(_logging_done, weak=False)


def _logging_done(**_: object) -> None:
    """Celery's ``setup_logging`` receiver: ``configure_celery`` did the work already."""
