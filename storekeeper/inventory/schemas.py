"""Request and response bodies of the inventory API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from storekeeper.catalog.schemas import Sku

WarehouseCode = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,31}$")
]
Quantity = Annotated[int, Field(gt=0, le=1_000_000_000)]
Ref = Annotated[str, StringConstraints(max_length=128)]


class WarehouseCreate(BaseModel):
    """A new warehouse."""

    # strict: a value must have the JSON type the schema declares (no `false` for 0, no "5"
    # for 5), as the published OpenAPI promises.
    model_config = ConfigDict(extra="forbid", strict=True)

    code: WarehouseCode
    name: str = Field(min_length=1, max_length=200)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class WarehouseRead(BaseModel):
    """A warehouse as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    code: str
    name: str
    lat: float
    lon: float
    created_at: datetime


class MovementCreate(BaseModel):
    """A change of on-hand stock: positive receives, negative takes away."""

    model_config = ConfigDict(extra="forbid", strict=True)

    sku: Sku
    warehouse: WarehouseCode
    delta: int = Field(ge=-1_000_000_000, le=1_000_000_000)
    reason: Literal["receipt", "damage", "correction", "sale"]
    ref: Ref | None = None
    unit_cost_cents: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000_000_000,
        description="what one unit cost, on a receipt (a positive delta) only: it feeds the "
        "moving average cost of the valuation report (docs/reports.md)",
    )


class CountCreate(BaseModel):
    """A physical count: on-hand becomes ``counted``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    sku: Sku
    warehouse: WarehouseCode
    counted: int = Field(ge=0, le=1_000_000_000)
    ref: Ref | None = None


class CountLineCreate(BaseModel):
    """One line of a count: the units of ``sku`` found."""

    model_config = ConfigDict(extra="forbid", strict=True)

    sku: Sku
    counted: int = Field(
        description="units found, 0 to 10⁹; a count out of range is one of the `invalid_lines`"
    )


class CountBatchCreate(BaseModel):
    """A whole count (stocktake) of one warehouse: every line is recorded, or none."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "warehouse": "BER",
                    "ref": "stocktake-2026-03",
                    "lines": [{"sku": "DEMO-0001", "counted": 20}],
                }
            ]
        },
    )

    warehouse: WarehouseCode
    ref: Ref | None = None
    lines: list[CountLineCreate] = Field(min_length=1, max_length=500)


class CountedLevelRead(BaseModel):
    """Stock of a counted SKU in the counted warehouse, after the count."""

    sku: str
    on_hand: int
    reserved: int
    available: int


class CountBatchRead(BaseModel):
    """What a whole count left: the level of every line's SKU, in line order."""

    warehouse: str
    ref: str | None
    lines: list[CountedLevelRead]


class TransferCreate(BaseModel):
    """Move units from one warehouse to another."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        populate_by_name=True,
        json_schema_extra={
            "examples": [{"sku": "DEMO-0001", "from": "MUC", "to": "HAM", "qty": 2}]
        },
    )

    sku: Sku
    from_: WarehouseCode = Field(alias="from")
    to: WarehouseCode
    qty: Quantity


class LevelRead(BaseModel):
    """Stock of a SKU in one warehouse."""

    warehouse: str
    on_hand: int
    reserved: int
    available: int


class TransferRead(BaseModel):
    """Both sides of a transfer after it happened."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    sku: str
    from_: LevelRead = Field(alias="from")
    to: LevelRead


class StockRead(BaseModel):
    """Stock of a SKU: totals and per warehouse."""

    sku: str
    on_hand: int
    reserved: int
    available: int
    warehouses: list[LevelRead]


ReservationRef = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")]


class LineCreate(BaseModel):
    """Units of a SKU wanted (an order's line, a reservation's line)."""

    # strict: a value must have the JSON type the schema declares (no `false` for 0, no "5"
    # for 5), as the published OpenAPI promises.
    model_config = ConfigDict(extra="forbid", strict=True)

    sku: Sku
    qty: int = Field(gt=0, le=100_000)


class Location(BaseModel):
    """Where the goods go, for choosing the nearest warehouses."""

    model_config = ConfigDict(extra="forbid", strict=True)

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


MAX_RESERVATION_TTL_S = 7 * 24 * 3600
"""A week: a reservation asked to expire later than that is a hold, not a reservation."""


class ReservationCreate(BaseModel):
    """Set stock aside under ``ref`` (an order, a cart, another service's id)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"ref": "cart-1842", "lines": [{"sku": "DEMO-0001", "qty": 2}]}]
        },
    )

    ref: ReservationRef
    lines: list[LineCreate] = Field(min_length=1, max_length=100)
    ship_to: Location | None = None
    ttl_s: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RESERVATION_TTL_S,
        description="released by itself this many seconds later if still held; unset: held "
        "until released or fulfilled",
    )


class AllocationRead(BaseModel):
    """``qty`` units of ``sku`` held at ``warehouse``."""

    sku: str
    warehouse: str
    qty: int


class ReservationRead(BaseModel):
    """What is held under a reference; ``replayed`` when an earlier identical call made it."""

    ref: str
    allocations: list[AllocationRead]
    replayed: bool = False


class StaleRefsRead(BaseModel):
    """Orders' reservation references held for longer than asked (ordering's orphan sweep)."""

    refs: list[str]


class SettledRead(BaseModel):
    """Units a release gave back, or a fulfilment shipped (0 when already settled)."""

    ref: str
    units: int


class FulfilRequest(BaseModel):
    """Who shipped, when another Storekeeper service fulfils on a person's behalf."""

    model_config = ConfigDict(extra="forbid", strict=True)

    actor_id: uuid.UUID | None = Field(default=None, strict=False)  # a JSON string
