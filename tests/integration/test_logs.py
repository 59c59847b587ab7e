"""Log configuration: secrets masked on every path into a log, the shipped LOG_CFG example, and
the access line written directly being the line the logging machinery would have written."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from storekeeper.observability import logs
from storekeeper.observability.middleware import RequestObservability

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "logging.example.json"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f"Authorization: Bearer {JWT}", JWT),
        ("headers={'authorization': 'Basic dXNlcjpwYXNz'}", "dXNlcjpwYXNz"),
        ("GET /api/v1/products?limit=5&token=s3cr3t-value&x=1", "s3cr3t-value"),
        ('{"password": "hunter2-long", "email": "a@b.c"}', "hunter2-long"),
        ("refresh_token=abc.def-ghi", "abc.def-ghi"),
        (f"calling with {JWT} inside", JWT),
        ("postgresql://storekeeper:pg-pass-77@db:5432/sk", "pg-pass-77"),
        ("STOREKEEPER_SECRET_KEY=0123456789abcdef", "0123456789abcdef"),
    ],
)
def test_redact_masks_tokens_passwords_and_url_credentials(line: str, secret: str) -> None:
    masked = logs.redact(line)
    assert secret not in masked
    assert "***" in masked


def test_redact_leaves_ordinary_text_alone() -> None:
    line = "GET /api/v1/orders/{order_id} 200 3.1ms sku=BREAD qty=2"
    assert logs.redact(line) == line


def test_the_filters_mask_arguments_and_tracebacks_and_add_request_context() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.RequestContext())
    handler.addFilter(logs.RedactSecrets())
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("storekeeper.test_logs")
    logger.addHandler(handler)
    logger.propagate = False
    token = logs.current_request.set(logs.RequestInfo(request_id="req-1"))
    try:
        logs.set_user("user-9")
        logger.warning("login with %s", f"password={JWT}", extra={"order_id": "o-1"})
        try:
            raise ValueError(f"token={JWT}")
        except ValueError:
            logger.exception("failed")
    finally:
        logs.current_request.reset(token)
        logger.removeHandler(handler)
        logger.propagate = True
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert JWT not in stream.getvalue()
    assert first["msg"] == "login with password=***"
    assert (first["request_id"], first["user_id"], first["order_id"]) == ("req-1", "user-9", "o-1")
    assert first["level"] == "WARNING" and first["logger"] == "storekeeper.test_logs"
    assert "ValueError: token=***" in second["exc"]


def test_the_log_cfg_example_writes_an_info_file_and_an_error_file(tmp_path: Path) -> None:
    script = (
        "import logging\n"
        "from storekeeper.observability import logs\n"
        "logs.configure()\n"
        "log = logging.getLogger('storekeeper.example')\n"
        "log.info('hello token=t0ps3cret')\n"
        "log.error('it broke')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,  # the example writes to data/logs/ under the working directory
        env={"LOG_CFG": str(EXAMPLE), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    info = (tmp_path / "data/logs/storekeeper.log").read_text().splitlines()
    errors = (tmp_path / "data/logs/storekeeper-error.log").read_text().splitlines()
    assert [json.loads(line)["msg"] for line in info] == ["hello token=***", "it broke"]
    assert [json.loads(line)["level"] for line in errors] == ["ERROR"]
    assert "it broke" in done.stderr and "t0ps3cret" not in done.stderr  # the console handler


def test_a_broken_log_cfg_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "logging.json"
    broken.write_text("{not json")
    monkeypatch.setenv("LOG_CFG", str(broken))
    with pytest.raises(ValueError, match="LOG_CFG"):
        logs.logging_config()


def _record(level: int, message: str) -> logging.LogRecord:
    return logging.makeLogRecord(
        {"msg": message, "levelno": level, "levelname": logging.getLevelName(level)}
    )


def test_the_background_stream_writes_in_batches_errors_at_once_and_the_rest_at_close() -> None:
    stream = io.StringIO()
    handler = logs.BackgroundStream(stream, interval_s=3600)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.handle(_record(logging.INFO, "one"))
    assert stream.getvalue() == ""  # waits for its batch
    handler.handle(_record(logging.ERROR, "two"))
    deadline = time.monotonic() + 10
    while "two" not in stream.getvalue():  # an error wakes the writer
        assert time.monotonic() < deadline, "the error was never written"
        time.sleep(0.01)
    handler.handle(_record(logging.INFO, "three"))
    handler.close()
    assert stream.getvalue().splitlines() == ["INFO one", "ERROR two", "INFO three"]


def test_the_timestamp_is_what_datetime_writes_rounding_included() -> None:
    rng = random.Random(3)
    moments = [time.time() + rng.uniform(-1e8, 1e8) for _ in range(20_000)]
    # Just below, at and just above millisecond and second boundaries (half-even microseconds).
    moments += [1_764_800_000 + k / 1000 + d for k in range(0, 1001, 7) for d in (0, 5e-7, -5e-7)]
    moments += [1_700_000_000.9999996, 1_700_000_000.0004995]
    for moment in moments:
        expected = datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
        assert logs.timestamp(moment) == expected, moment


# --- the access line ------------------------------------------------------------------------


def _access_app() -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/orders/{order_id}")
    def order(order_id: str) -> dict[str, str]:
        logs.set_user("user-7")
        return {"id": order_id}

    @app.get("/api/v1/reset/password={code}")
    def reset(code: str) -> dict[str, str]:
        return {}

    return RequestObservability(app)  # type: ignore[return-value]


@contextlib.contextmanager
def _access_handler(
    *extra_filters: logging.Filter,
) -> Iterator[tuple[io.StringIO, logs.BackgroundStream]]:
    """storekeeper.access writing only to a BackgroundStream as the default config sets it up."""
    stream = io.StringIO()
    handler = logs.BackgroundStream(stream, interval_s=3600)
    handler.setFormatter(logs.JsonFormatter())
    for log_filter in (logs.RequestContext(), logs.RedactSecrets(), *extra_filters):
        handler.addFilter(log_filter)
    logger = logging.getLogger("storekeeper.access")
    saved = logger.propagate, logger.level, logger.disabled  # another test's dictConfig may
    logger.addHandler(handler)  # have disabled it: this process's earlier tests are unknown
    logger.propagate, logger.disabled = False, False
    logger.setLevel(logging.INFO)  # setLevel, not .level: it clears isEnabledFor's cache
    try:
        yield stream, handler
    finally:
        logger.removeHandler(handler)
        logger.propagate, _, logger.disabled = saved
        logger.setLevel(saved[1])
        handler.close()


def _access_lines(path: str, *extra_filters: logging.Filter) -> list[dict[str, Any]]:
    with _access_handler(*extra_filters) as (stream, handler), TestClient(_access_app()) as http:
        assert http.get(path, headers={"X-Request-ID": "req-42"}).status_code == 200
        handler.close()  # writes what is queued
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    assert len(lines) == 1, stream.getvalue()
    return lines


def test_the_access_line_is_written_directly_as_the_record_would_have_been() -> None:
    direct = _access_lines("/api/v1/orders/o-9")
    # Any other filter (or handler) and the line takes the usual way: LogRecord, filters, format.
    usual = _access_lines("/api/v1/orders/o-9", logging.Filter())
    for line in (*direct, *usual):
        assert line.pop("ts") and line.pop("duration_ms") >= 0
        line["msg"] = line["msg"].rsplit(" ", 1)[0]  # the duration again
    assert direct == usual
    assert list(direct[0]) == list(usual[0])  # the same fields in the same order
    assert direct[0] == {
        "level": "INFO",
        "logger": "storekeeper.access",
        "msg": "GET /api/v1/orders/{order_id} 200",
        "pid": os.getpid(),
        "method": "GET",
        "route": "/api/v1/orders/{order_id}",
        "status": 200,
        "request_id": "req-42",
        "user_id": "user-7",
        "order_id": "o-9",
    }


def test_an_access_line_that_could_hold_a_secret_is_redacted() -> None:
    (line,) = _access_lines("/api/v1/reset/password=abc123")
    # The usual way, through RedactSecrets (the route template itself is what it masks here).
    assert line["msg"].startswith("GET /api/v1/reset/password=***")
    assert "{code}" not in line["msg"] and line["route"] == "/api/v1/reset/password={code}"


def test_the_direct_way_needs_the_default_handler_alone() -> None:
    logger = logging.getLogger("storekeeper.access")
    with _access_handler() as (_, handler):
        assert logs.direct_stream(logger) is handler
        other = logging.NullHandler()  # another handler (caplog's, a file's) sees records only
        for holder in (logger, logging.getLogger("storekeeper")):
            holder.addHandler(other)
            logger.propagate = True  # up to "storekeeper" (and, in this test, the root's)
            try:
                assert logs.direct_stream(logger) is None
            finally:
                holder.removeHandler(other)
                logger.propagate = False
        handler.setFormatter(logging.Formatter())
        assert logs.direct_stream(logger) is None
