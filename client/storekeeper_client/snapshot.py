"""Reading the server's sync snapshot (``GET /api/v1/sync/snapshot``, docs/sync.md).

The file is UTF-8 text: a JSON header line (format, cursor, counts, the newest product stamp),
then one line per product (``sku TAB version TAB document``), per stock row (the same), and per
barcode (``code TAB sku``), each ending in a newline. Parsing is string splitting only: the
documents are stored as the server wrote them, never decoded here (a replica decodes a row when
it reads it), which is what makes a snapshot cheap to store (bench W3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from storekeeper_client.records import SyncError

FORMAT = "storekeeper-snapshot/1"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A parsed snapshot: rows ready for ``executemany``, and the cursor they are valid at."""

    cursor: str
    products: list[list[str]]
    """``[sku, version, document]`` per product on sale."""
    stock: list[list[str]]
    """``[sku, version, document]`` per stock row of the scope."""
    barcodes: list[list[str]]
    """``[code, sku]`` per barcode of those products."""
    newest_hlc: str | None


def parse(body: bytes) -> Snapshot | None:
    """The snapshot in ``body``; None if it is of a format this client does not know (the
    caller pages through the pull instead). A truncated or malformed body is ``SyncError``."""
    text = body.decode("utf-8")
    head, _, rest = text.partition("\n")
    try:
        header = json.loads(head)
    except ValueError as exc:
        raise SyncError("the server's snapshot has no header line") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        return None
    try:
        products, stock, codes = (int(header[k]) for k in ("products", "stock", "barcodes"))
        cursor = str(header["cursor"])
        newest = header.get("hlc")
    except (KeyError, TypeError, ValueError) as exc:
        raise SyncError(f"the server's snapshot header is malformed: {head[:200]}") from exc
    lines = rest.split("\n")
    # Every line ends in a newline, so the last piece is empty: a body cut short is caught here.
    if len(lines) != products + stock + codes + 1 or lines[-1]:
        raise SyncError("the server's snapshot is incomplete (its line count is not the header's)")
    end = products + stock
    return Snapshot(
        cursor=cursor,
        products=[line.split("\t", 2) for line in lines[:products]],
        stock=[line.split("\t", 2) for line in lines[products:end]],
        barcodes=[line.split("\t", 1) for line in lines[end : end + codes]],
        newest_hlc=newest if isinstance(newest, str) else None,
    )
