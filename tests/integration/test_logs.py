"""Log configuration: secrets masked on every path into a log, and the shipped LOG_CFG example."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storekeeper.observability import logs

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
