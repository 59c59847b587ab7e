"""CSV downloads: the same escaping and headers for the API's exports and the console's.

Every context's CSV export goes through here so that a cell a spreadsheet would run as a
formula (CSV injection) is escaped the one way ``storekeeper.imports.parsing`` undoes.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from fastapi.responses import Response, StreamingResponse


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """A CSV download of a table as its filter shows it."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for row in rows:
        writer.writerow(spreadsheet_cells(row))
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def rows_csv(filename: str, row_type: type[Any], rows: Iterable[Any]) -> Response:
    """:func:`csv_response` of dataclass rows (a report's): one column per field, by name."""
    columns = [field.name for field in dataclasses.fields(row_type)]
    return csv_response(filename, columns, ([getattr(r, c) for c in columns] for r in rows))


def spreadsheet_cells(row: Sequence[Any]) -> list[Any]:
    """The row's cells, none of which a spreadsheet would run as a formula."""
    # A cell starting with = + - @ would be a formula in a spreadsheet (CSV injection). One
    # that starts with ' before such a sign gets another ', so that an import, which takes one
    # ' off (storekeeper.imports.parsing), reads every cell back as it was.
    return [
        "'" + c if isinstance(c, str) and c.lstrip("'")[:1] in FORMULA_SIGNS else c for c in row
    ]


FORMULA_SIGNS = ("=", "+", "-", "@")


def csv_stream(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """As :func:`csv_response`, sent while ``rows`` are read (an export of every page of a
    filter, read page by page, without holding it all in memory)."""

    def chunks() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for count, row in enumerate(rows, start=1):
            writer.writerow(spreadsheet_cells(row))
            if count % 500 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        chunks(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
