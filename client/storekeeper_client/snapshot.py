"""Reading the server's sync snapshot (``GET /api/v1/sync/snapshot``, docs/sync.md).

The file is UTF-8 text, one value per line: a JSON header line (format, scope, cursor, the
newest product stamp), then three lines per product (sku, version, document), three per stock
row (the same), two per barcode (code, sku), and a JSON trailer line with the three counts
(last, so the server compresses each section while it reads the next). No value can hold a
newline (documents are JSON, whose strings escape it; SKUs and codes are printable). So reading
it is one ``split`` and stepped slices, all in C: no per-row Python work, and the documents are
stored as the server wrote them, never decoded here (a replica decodes a row when it reads it).
That is what makes a snapshot cheap to store (bench W3).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

from storekeeper_client.records import SyncError

FORMAT = "storekeeper-snapshot/1"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A parsed snapshot, column by column, and the cursor it is valid at."""

    cursor: str
    products: tuple[list[str], list[str], list[str]]
    """Skus, versions, documents of the products on sale."""
    stock: tuple[list[str], list[str], list[str]]
    """Skus, versions, documents of the scope's stock rows."""
    barcodes: tuple[list[str], list[str]]
    """Codes and the skus of the products that have them."""
    newest_hlc: str | None

    def rows(self, table: str) -> Iterator[tuple[str, ...]]:
        """The rows of ``product``, ``stock`` or ``barcode``, for ``executemany``."""
        columns = {"product": self.products, "stock": self.stock, "barcode": self.barcodes}
        return zip(*columns[table], strict=True)


def parse(body: bytes) -> Snapshot | None:
    """The snapshot in ``body``; None if it is of a format this client does not know (the
    caller pages through the pull instead). A truncated or malformed body is ``SyncError``."""
    text = body.decode("utf-8")
    lines = text.split("\n")
    try:
        header = json.loads(lines[0])
    except ValueError as exc:
        raise SyncError("the server's snapshot has no header line") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        return None
    # The counts come last, and every line ends in a newline (the last piece is empty): a body
    # cut short anywhere is caught here.
    try:
        if len(lines) < 3 or lines[-1]:
            raise ValueError("no trailer line")
        trailer = json.loads(lines[-2])
        products, stock, codes = (int(trailer[k]) for k in ("products", "stock", "barcodes"))
        cursor = str(header["cursor"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SyncError("the server's snapshot is incomplete or malformed") from exc
    newest = header.get("hlc")
    p = 1 + 3 * products
    s = p + 3 * stock
    end = s + 2 * codes
    if len(lines) != end + 2:
        raise SyncError("the server's snapshot is incomplete (its line count is not its own)")
    return Snapshot(
        cursor=cursor,
        products=(lines[1:p:3], lines[2:p:3], lines[3:p:3]),
        stock=(lines[p:s:3], lines[p + 1 : s : 3], lines[p + 2 : s : 3]),
        barcodes=(lines[s:end:2], lines[s + 1 : end : 2]),
        newest_hlc=newest if isinstance(newest, str) else None,
    )
