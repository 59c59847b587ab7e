"""The MQTT payload and TCP line parsers turn any input into readings or a refusal with a reason.

Both run before any token is checked, so whatever a stranger sends must end as
:class:`Unparseable`, never as another exception that would restart the subscriber.
"""

from __future__ import annotations

import json
from datetime import UTC

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from storekeeper.telemetry.mqtt import parse_payload
from storekeeper.telemetry.transports import Unparseable, parse_line, parse_timestamp

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**500), max_value=10**500)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)
_field = st.sampled_from(["token", "readings", "ts", "temp_c", "humidity"])
_reading_like = st.dictionaries(_field, _json, max_size=5)


def _parses_or_refuses(sensor: str, payload: bytes) -> None:
    try:
        _, readings = parse_payload(sensor, payload)
    except Unparseable as exc:
        assert exc.reason
        return
    for reading in readings:
        assert reading.ts.tzinfo is not None


@settings(max_examples=300)
@given(st.binary(max_size=512))
def test_mqtt_parser_refuses_arbitrary_bytes_with_a_reason(payload: bytes) -> None:
    _parses_or_refuses("s-1", payload)


@settings(max_examples=300)
@given(_json | _reading_like | st.lists(_reading_like, max_size=3).map(lambda r: {"readings": r}))
def test_mqtt_parser_refuses_arbitrary_json_with_a_reason(document: object) -> None:
    if isinstance(document, dict):
        document.setdefault("token", "t")
    # allow_nan: Python writes NaN and Infinity, which json.loads reads back.
    _parses_or_refuses("s-1", json.dumps(document).encode())


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"token":"t","ts":1,"temp_c":' + b"9" * 400 + b"}", "bad_number"),
        (b'{"token":"t","ts":' + b"9" * 400 + b',"temp_c":1}', "bad_timestamp"),
        (b'{"token":"t","ts":1,"temp_c":' + b"9" * 5000 + b"}", "unparseable"),
        (b'{"token":"t","ts":1,"temp_c":NaN}', "bad_number"),
        (b'{"token":"t","ts":"0001-01-01T00:00:00+14:00","temp_c":1}', "bad_timestamp"),
        (b'{"token":"t","ts":"9999-12-31T23:59:59-14:00","temp_c":1}', "bad_timestamp"),
        (b'{"token":"\xff","ts":1,"temp_c":1}', "unparseable"),
        (b"[" * 5000 + b"]" * 5000, "too_deep"),
        (b'{"token":"t","readings":' + b"[" * 5000 + b"]" * 5000 + b"}", "too_deep"),
    ],
)
def test_mqtt_poison_payloads_are_refused_with_their_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(Unparseable) as refused:
        parse_payload("s-1", payload)
    assert refused.value.reason == reason


@settings(max_examples=500)
@given(st.text(max_size=200))
def test_tcp_line_parser_refuses_arbitrary_text_with_a_reason(line: str) -> None:
    try:
        reading = parse_line(line)
    except Unparseable as exc:
        assert exc.reason
        return
    assert reading.ts.tzinfo is not None


@settings(max_examples=300)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.integers(min_value=-(10**500), max_value=10**500).map(str),
            st.floats().map(str),
            st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
        ),
        min_size=3,
        max_size=4,
    )
)
def test_tcp_line_parser_refuses_number_and_time_shaped_fields(fields: list[str]) -> None:
    try:
        reading = parse_line(",".join(["s-1", *fields[1:]]))
    except Unparseable as exc:
        assert exc.reason
        return
    assert reading.ts.tzinfo == UTC


@pytest.mark.parametrize(
    "line",
    ["s-1,1," + "9" * 400, "s-1," + "9" * 400 + ",1", "s-1,1,nan", "s-1,0001-01-01T00:00+01:00,1"],
)
def test_tcp_poison_lines_are_refused(line: str) -> None:
    with pytest.raises(Unparseable):
        parse_line(line)


def test_timestamps_come_back_in_utc() -> None:
    assert parse_timestamp("2026-01-01T01:00:00+01:00").utcoffset().total_seconds() == 0  # type: ignore[union-attr]
