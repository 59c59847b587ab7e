"""The import file parser: any valid row written as CSV reads back as it was; bad rows are
reported with their own line, all of them, whatever multi-line cells come before them."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from storekeeper.api.downloads import spreadsheet_cells as exported_cells
from storekeeper.imports import parsing

_sku = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,20}", fullmatch=True)
_name = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x00"),
    min_size=1,
    max_size=40,
).filter(lambda s: s.strip())
_temp = st.one_of(st.none(), st.floats(-100, 100, allow_nan=False).map(lambda t: round(t, 2)))
_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8
)
_json = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**9), 10**9), _text),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_code128 = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=20)


@st.composite
def products(draw: Any) -> dict[str, Any]:
    low, high = sorted([draw(_temp) or 0.0, draw(_temp) or 0.0])
    has_range = draw(st.booleans())
    return {
        "sku": draw(_sku),
        "name": draw(_name),
        "price_cents": draw(st.integers(0, 10**12)),
        "currency": draw(st.sampled_from(["EUR", "USD", "GBP"])),
        "attributes": draw(st.dictionaries(_text, _json, max_size=3)),
        "min_temp_c": low if has_range else None,
        "max_temp_c": high if has_range else None,
        "barcodes": sorted(set(draw(st.lists(_code128, max_size=3)))),
        "quantity": draw(st.one_of(st.none(), st.integers(0, 10**9))),
    }


def _csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(parsing.COLUMNS)
    for row in rows:
        writer.writerow(  # as the exports write cells: formula signs guarded
            exported_cells(
                [
                    row["sku"],
                    row["name"],
                    row["price_cents"],
                    row["currency"],
                    json.dumps(row["attributes"]) if row["attributes"] else "",
                    "" if row["min_temp_c"] is None else repr(row["min_temp_c"]),
                    "" if row["max_temp_c"] is None else repr(row["max_temp_c"]),
                    parsing.BARCODE_SEPARATOR.join(row["barcodes"]),
                    "" if row["quantity"] is None else row["quantity"],
                ]
            )
        )
    return buffer.getvalue().encode()


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    return [r for r in rows if not (r["sku"] in seen or seen.add(r["sku"]))]


@settings(max_examples=150, deadline=None)
@given(st.lists(products(), min_size=1, max_size=8).map(_unique))
def test_any_valid_row_round_trips(rows: list[dict[str, Any]]) -> None:
    parsed = parsing.parse(_csv(rows))
    assert parsed.problems == []
    assert len(parsed.rows) == len(rows)
    for written, read in zip(rows, parsed.rows, strict=True):
        assert read.sku == written["sku"]
        assert read.quantity == written["quantity"]
        for name in parsing.PRODUCT_COLUMNS[1:]:
            assert read.fields[name] == written[name], name


_breakers = st.sampled_from(
    [
        ("price_cents", "12.5"),
        ("price_cents", "-1"),
        ("currency", "euro"),
        ("attributes", "[1, 2]"),
        ("attributes", "{nope"),
        ("min_temp_c", "cold"),
        ("sku", "has space"),
        ("name", " "),
        ("quantity", "-3"),
        ("quantity", "lots"),
    ]
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(products(), st.one_of(st.none(), _breakers)), min_size=1, max_size=10))
def test_every_bad_row_is_reported_with_its_own_line(
    rows: list[tuple[dict[str, Any], tuple[str, str] | None]],
) -> None:
    # Unique SKUs, so that only the broken cells make a row bad.
    table = [dict(row, sku=f"S{index}-{row['sku']}"[:60]) for index, (row, _) in enumerate(rows)]
    content = _csv(table)
    lines = list(csv.reader(io.StringIO(content.decode(), newline="")))
    starts, line = [], 2
    for row in table:  # the line each row starts on: multi-line cells push the next ones down
        starts.append(line)
        line += sum(str(cell).count("\n") for cell in _csv_cells(row)) + 1
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(lines[0])
    for cells, (_, breaker) in zip(lines[1:], rows, strict=True):
        if breaker is not None:
            cells[parsing.COLUMNS.index(breaker[0])] = breaker[1]
        writer.writerow(cells)
    parsed = parsing.parse(buffer.getvalue().encode())
    bad = {starts[i] for i, (_, breaker) in enumerate(rows) if breaker is not None}
    assert {p.line for p in parsed.problems} == bad
    assert {r.line for r in parsed.rows} == set(starts) - bad
    for problem in parsed.problems:
        breaker = rows[starts.index(problem.line)][1]
        assert breaker is not None and breaker[0] in problem.reason


def _csv_cells(row: dict[str, Any]) -> list[str]:
    return [
        str(c)
        for c in next(csv.reader(io.StringIO(_csv([row]).decode().split("\r\n", 1)[1], newline="")))
    ]


def test_unknown_columns_are_named() -> None:
    try:
        parsing.parse(b"sku,nmae,price,quantity\n")
    except parsing.UnknownColumns as exc:
        assert exc.unknown == ["nmae", "price"]
    else:
        raise AssertionError("unknown columns were accepted")


def test_an_exported_formula_guard_is_removed() -> None:
    parsed = parsing.parse(b"sku,name,price_cents\nA,'=1+1,5\nB,'plain,6\nC,''-x,7\n")
    assert [r.fields["name"] for r in parsed.rows] == ["=1+1", "'plain", "'-x"]
