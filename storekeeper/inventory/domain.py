"""Allocation rules: which warehouse serves an order line. Pure functions, no I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from storekeeper.errors import Conflict

EARTH_RADIUS_KM = 6371.0088


class InsufficientStock(Conflict):
    """Not enough available stock of a SKU across all warehouses."""

    code = "insufficient_stock"

    def __init__(self, sku: str, *, requested: int, available: int) -> None:
        super().__init__(
            f"insufficient stock for SKU {sku}: requested {requested}, available {available}"
        )
        self.sku = sku
        self.requested = requested
        self.available = available


@dataclass(frozen=True, slots=True)
class Point:
    """A place on Earth in degrees."""

    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Allocation:
    """``qty`` units of ``sku`` taken from ``warehouse``."""

    sku: str
    warehouse: str
    qty: int


def distance_km(a: Point, b: Point) -> float:
    """Great-circle distance by the haversine formula."""
    lat1, lon1, lat2, lon2 = map(math.radians, (a.lat, a.lon, b.lat, b.lon))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def merge_lines(lines: Sequence[tuple[str, int]]) -> dict[str, int]:
    """Quantities per SKU, in first-seen order, with repeated SKUs added up."""
    merged: dict[str, int] = {}
    for sku, qty in lines:
        merged[sku] = merged.get(sku, 0) + qty
    return merged


def preference(
    available: Mapping[str, int], sites: Mapping[str, Point], ship_to: Point | None
) -> list[str]:
    """Warehouses in the order they should serve: nearest first, else most available first."""
    if ship_to is None:
        return sorted(available, key=lambda code: (-available[code], code))
    return sorted(available, key=lambda code: (distance_km(sites[code], ship_to), code))


def allocate_line(
    sku: str,
    qty: int,
    available: Mapping[str, int],
    sites: Mapping[str, Point],
    ship_to: Point | None,
) -> list[Allocation]:
    """Serve ``qty`` from the most preferred warehouse that has it all; split only if none does."""
    stocked = {code: units for code, units in available.items() if units > 0}
    order = preference(stocked, sites, ship_to)
    for code in order:
        if stocked[code] >= qty:
            return [Allocation(sku, code, qty)]
    total = sum(stocked.values())
    if total < qty:
        raise InsufficientStock(sku, requested=qty, available=total)
    allocations: list[Allocation] = []
    remaining = qty
    for code in order:
        take = min(remaining, stocked[code])
        allocations.append(Allocation(sku, code, take))
        remaining -= take
        if remaining == 0:
            break
    return allocations


def allocate(
    lines: Mapping[str, int],
    available: Mapping[str, Mapping[str, int]],
    sites: Mapping[str, Point],
    ship_to: Point | None,
) -> list[Allocation]:
    """Allocate every line, or raise InsufficientStock for the first that cannot be served."""
    result: list[Allocation] = []
    for sku, qty in lines.items():
        result.extend(allocate_line(sku, qty, available.get(sku, {}), sites, ship_to))
    return result
