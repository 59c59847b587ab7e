"""Draw the clerk app's PNG icons (storekeeper/web/app/icon-*.png) from the shapes of icon.svg.

Standard library only (no image library in the project): each pixel is orange if it lies within
half a stroke of one of the box's edges, else the dark background. Run after changing icon.svg:
``python scripts/clerk_app_icons.py``.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "storekeeper" / "web" / "app"
BACKGROUND = (0x1B, 0x1F, 0x24)
STROKE = (0xF0, 0xA5, 0x00)
# The box of icon.svg in its 32-unit view box: (x1, y1, x2, y2, stroke width).
EDGES = [
    (8, 12.5, 16, 8, 2.2),
    (16, 8, 24, 12.5, 2.2),
    (24, 12.5, 24, 22, 2.2),
    (24, 22, 16, 26.5, 2.2),
    (16, 26.5, 8, 22, 2.2),
    (8, 22, 8, 12.5, 2.2),
    (8, 12.5, 16, 17, 1.8),
    (16, 17, 24, 12.5, 1.8),
    (16, 17, 16, 26.5, 1.8),
]


def _distance(px: float, py: float, edge: tuple[float, ...]) -> float:
    x1, y1, x2, y2, _ = edge
    dx, dy = x2 - x1, y2 - y1
    t = max(0.0, min(1.0, ((px - x1) * dx + (py - y1) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - (x1 + t * dx), py - (y1 + t * dy))


def _png(size: int) -> bytes:
    rows = bytearray()
    scale = 32 / size
    for y in range(size):
        rows.append(0)  # filter: none
        for x in range(size):
            px, py = (x + 0.5) * scale, (y + 0.5) * scale
            on = any(_distance(px, py, e) <= e[4] / 2 for e in EDGES)
            rows.extend(STROKE if on else BACKGROUND)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


if __name__ == "__main__":
    for size in (192, 512):
        (APP / f"icon-{size}.png").write_bytes(_png(size))
