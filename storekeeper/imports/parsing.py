"""Reading an import file (CSV or XLSX) into checked rows, and every bad row with its line.

Pure: no database. What depends on the catalog's or a warehouse's state (a SKU that does not
exist yet and has no name, a barcode another product holds, a count below reserved units) is
checked by ``storekeeper.imports.service`` when it compares the rows with what is stored.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from storekeeper.catalog.schemas import ProductUpdate, Sku
from storekeeper.errors import InvalidRequest

PRODUCT_COLUMNS = (
    "sku",
    "name",
    "price_cents",
    "currency",
    "attributes",
    "min_temp_c",
    "max_temp_c",
    "barcodes",
)
"""The product columns, named and typed like the API's product fields, in export order."""
STOCK_COLUMN = "quantity"
COLUMNS = (*PRODUCT_COLUMNS, STOCK_COLUMN)
BARCODE_SEPARATOR = "\n"
"""Barcodes of one product are one per line inside their cell (a Code 128 may hold any other
printable sign, spaces and commas included), as the console's CSV export writes them."""
MAX_FIELD = 64 * 1024
"""The longest cell read; longer is a broken or hostile file, refused with its line."""
MAX_PROBLEMS = 10_000
"""Problems kept per file; a file with more is reported with this many and the total."""

_FORMULA_SIGNS = ("=", "+", "-", "@")
_sku = TypeAdapter(Sku)
_EMPTY = "the file is empty: it needs a header line naming the columns (sku,name,price_cents…)"


class UnreadableFile(InvalidRequest):
    """The file is not a CSV (UTF-8) or XLSX table that can be read at all."""

    code = "unreadable_file"


class UnknownColumns(InvalidRequest):
    """The header names columns the import does not know (a typo would drop a field)."""

    code = "unknown_columns"

    def __init__(self, unknown: Sequence[str]) -> None:
        self.unknown = list(unknown)
        super().__init__(
            f"unknown column(s): {', '.join(repr(c) for c in unknown)}; "
            f"the columns are: {', '.join(COLUMNS)}"
        )


@dataclass(frozen=True, slots=True)
class Problem:
    """Why one row cannot be imported: its line in the file (the header is line 1)."""

    line: int
    sku: str
    reason: str


@dataclass(frozen=True, slots=True)
class Row:
    """One good row: the product fields its file gives (checked, in stored form) and the
    quantity, if the file has a quantity column and the cell is not empty."""

    line: int
    sku: str
    fields: dict[str, Any]
    quantity: int | None


@dataclass
class Parsed:
    """A whole file read: its columns, good rows and every problem, in line order."""

    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0

    def add_problem(self, problem: Problem) -> None:
        """Keep ``problem`` (up to MAX_PROBLEMS; all are counted)."""
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


def is_xlsx(content: bytes) -> bool:
    """Whether ``content`` is a ZIP archive, as an XLSX workbook is."""
    return content[:4] == b"PK\x03\x04"


def read_header(content: bytes) -> list[str]:
    """The checked column names of a file (``UnknownColumns``, ``UnreadableFile``)."""
    first = next(_table(content), None)
    if first is None:
        raise UnreadableFile(_EMPTY)
    return _check_header(first[1])


def parse(content: bytes) -> Parsed:
    """Every row of the file checked; a file that cannot be read at all is ``UnreadableFile``."""
    table = _table(content)
    first = next(table, None)
    if first is None:
        raise UnreadableFile(_EMPTY)
    columns = _check_header(first[1])
    parsed = Parsed(columns=columns)
    first_line: dict[str, int] = {}
    for line, cells in table:
        if not any(cell.strip() for cell in cells):
            continue  # a blank line, as spreadsheets leave at the end
        row, problems = parse_row(line, columns, cells)
        if row is not None and row.sku in first_line:
            problems = [f"SKU {row.sku} is on line {first_line[row.sku]} already: give it once"]
        if row is not None:
            first_line.setdefault(row.sku, line)
        if problems:
            sku = row.sku if row is not None else _cell(columns, cells, "sku").strip()
            for reason in problems:
                parsed.add_problem(Problem(line, sku[:64], reason))
        elif row is not None:
            parsed.rows.append(row)
    return parsed


def parse_row(
    line: int, columns: Sequence[str], cells: Sequence[str]
) -> tuple[Row | None, list[str]]:
    """One data row: the row, or None and every reason it is bad."""
    if len(cells) > len(columns):
        extra = cells[len(columns) :]
        if any(cell.strip() for cell in extra):
            return None, [f"{len(cells)} cells but the header names {len(columns)} columns"]
    values = {name: _unescape(_cell(columns, cells, name)) for name in columns}
    problems: list[str] = []
    try:
        sku = _sku.validate_python(values["sku"])
    except ValidationError:
        sku = values["sku"].strip()
        problems.append(
            "sku: give one (letters, digits, '.', '_' and '-', starting with a letter or digit, "
            "at most 64)"
            if not sku
            else f"sku {sku[:64]!r}: letters, digits, '.', '_' and '-' only, starting with a "
            "letter or digit, at most 64"
        )
    data: dict[str, Any] = {}
    for name in PRODUCT_COLUMNS[1:]:
        if name in values:
            try:
                data[name] = _typed(name, values[name])
            except ValueError as exc:
                problems.append(f"{name}: {exc}")
    quantity: int | None = None
    if STOCK_COLUMN in values and values[STOCK_COLUMN].strip():
        try:
            quantity = _whole(values[STOCK_COLUMN])
            if quantity < 0:
                problems.append(f"quantity: {quantity} is negative: give 0 or more")
        except ValueError as exc:
            problems.append(f"quantity: {exc}")
    fields: dict[str, Any] = {}
    if data:
        try:
            checked = ProductUpdate.model_validate(data)
            fields = checked.model_dump(include=set(data))
        except ValidationError as exc:
            problems.extend(_reasons(exc))
    low, high = data.get("min_temp_c"), data.get("max_temp_c")
    if low is not None and high is not None and low > high:
        problems.append("min_temp_c must not exceed max_temp_c")
    if problems:
        return (Row(line, sku, {}, None) if sku and _sku_ok(sku) else None), problems
    return Row(line, sku, fields, quantity), []


def _sku_ok(sku: str) -> bool:
    try:
        _sku.validate_python(sku)
    except ValidationError:
        return False
    return True


def _reasons(exc: ValidationError) -> list[str]:
    reasons = []
    for error in exc.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"] if not isinstance(part, int))
        message = str(error["msg"]).removeprefix("Value error, ")
        reasons.append(f"{where}: {message}" if where else message)
    return reasons


def _typed(name: str, text: str) -> Any:
    """A cell's text as the API field's type; empty means the field's default."""
    text = text.strip() if name != "name" else text
    if name == "name":
        if not text.strip():
            raise ValueError("give a name")
        return text
    if name == "price_cents":
        if not text:
            raise ValueError("give the price in cents, a whole number such as 1250 for 12.50")
        return _whole(text)
    if name == "currency":
        return text or "EUR"
    if name == "attributes":
        if not text:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON ({exc.msg} at character {exc.pos + 1})") from None
        if not isinstance(value, dict):
            raise ValueError('a JSON object, such as {"origin": "Kenya"}')
        return value
    if name in ("min_temp_c", "max_temp_c"):
        if not text:
            return None
        try:
            number = float(text.replace(",", ".") if text.count(",") == 1 else text)
        except ValueError:
            raise ValueError(f"{text[:40]!r} is not a number of degrees") from None
        if not math.isfinite(number):
            raise ValueError("a finite number of degrees")
        return number
    if name == "barcodes":
        return [code.strip() for code in text.split(BARCODE_SEPARATOR) if code.strip()]
    raise AssertionError(name)  # pragma: no cover - every product column is handled above


def _whole(text: str) -> int:
    text = text.strip()
    if text.endswith(".0"):  # a spreadsheet's way of writing a whole number
        text = text[:-2]
    digits = text.removeprefix("-")
    if not digits.isdigit() or not digits.isascii() or len(digits) > 15:
        raise ValueError(f"{text[:40]!r} is not a whole number")
    return int(text)


def _unescape(text: str) -> str:
    """A cell without the ``'`` an export puts before a leading = + - @ (so that a spreadsheet
    does not run it as a formula; before ``'=`` too): exports re-import as they were."""
    if text[:1] == "'" and text.lstrip("'")[:1] in _FORMULA_SIGNS:
        return text[1:]
    return text


def _cell(columns: Sequence[str], cells: Sequence[str], name: str) -> str:
    index = columns.index(name) if name in columns else -1
    return cells[index] if 0 <= index < len(cells) else ""


def _check_header(cells: Sequence[str]) -> list[str]:
    columns = [cell.strip().lstrip("\ufeff").lower() for cell in cells]
    while columns and not columns[-1]:
        columns.pop()  # spreadsheets keep empty trailing header cells
    if not columns:
        raise UnreadableFile("the first line must name the columns (sku,name,price_cents…)")
    unknown = [c or "(empty)" for c in columns if c not in COLUMNS]
    if unknown:
        raise UnknownColumns(unknown)
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise InvalidRequest(
            f"column(s) named twice: {', '.join(repeated)}", code="repeated_columns"
        )
    if "sku" not in columns:
        raise InvalidRequest("the file needs a sku column", code="missing_columns")
    return columns


def _table(content: bytes) -> Iterator[tuple[int, list[str]]]:
    """(line, cells) of each row of a CSV or XLSX file, the header first."""
    if is_xlsx(content):
        return _xlsx_rows(content)
    return _csv_rows(content)


def _csv_rows(content: bytes) -> Iterator[tuple[int, list[str]]]:
    if b"\x00" in content[:8192]:
        raise UnreadableFile("this is not a CSV text file (nor an XLSX workbook)")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise UnreadableFile(
            f"the file is not UTF-8 text (byte 0x{content[exc.start]:02x} on line {line}); "
            "save it as 'CSV UTF-8'"
        ) from None
    return _csv_lines(text)


def _csv_lines(text: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise UnreadableFile(f"line {start}: not valid CSV ({exc})") from None
        for cell in cells:
            if len(cell) > MAX_FIELD:
                raise UnreadableFile(
                    f"line {start}: a cell of {len(cell):,} characters (at most {MAX_FIELD:,})"
                )
        yield start, cells
        start = reader.line_num + 1


def _xlsx_rows(content: bytes) -> Iterator[tuple[int, list[str]]]:
    # Imported here: only XLSX imports need openpyxl.
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise UnreadableFile(f"not a readable XLSX workbook ({exc})") from None
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            return
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells = [_xlsx_text(value) for value in values]
            for cell in cells:
                if len(cell) > MAX_FIELD:
                    raise UnreadableFile(
                        f"line {number}: a cell of {len(cell):,} characters (at most {MAX_FIELD:,})"
                    )
            yield number, cells
    finally:
        workbook.close()


def _xlsx_text(value: Any) -> str:
    """A workbook cell as the text a CSV would have."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)
