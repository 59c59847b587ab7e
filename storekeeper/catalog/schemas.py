"""Request and response bodies of the catalog API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from storekeeper.catalog import barcodes
from storekeeper.jsonlimits import FreeJson

Sku = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"),
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Temperature = Annotated[float, Field(ge=-100, le=100)]


Attributes = FreeJson
"""A product's own fields, free-form within the limits of storekeeper.jsonlimits."""


def _barcode(text: str) -> str:
    try:
        return barcodes.normalise(text)
    except barcodes.InvalidBarcode as exc:
        # Its own error type, so a client can tell a bad code from a malformed request.
        raise PydanticCustomError("invalid_barcode", barcodes.describe(text, exc)) from None


def _no_repeats(codes: list[str]) -> list[str]:
    seen: set[str] = set()
    for code in codes:
        if code in seen:
            raise PydanticCustomError(
                "duplicate_barcode",
                f"barcode {code} is listed twice (a UPC-A and its EAN-13 "
                "with a leading 0 are the same code)",
            )
        seen.add(code)
    return sorted(codes)


Barcode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_barcode),
]
"""A barcode as sent (EAN-13, UPC-A, EAN-8 or Code 128), checked and in its stored form."""
Barcodes = Annotated[
    list[Barcode],
    Field(
        max_length=barcodes.MAX_PER_PRODUCT,
        description="EAN-13, UPC-A (12 digits), EAN-8 or Code 128 (1-48 printable ASCII "
        "characters); check digits are verified; a UPC-A also given as its 13-digit EAN-13 "
        "with a leading 0 is stored as the UPC-A. A set: each code once, answered in code order.",
    ),
    AfterValidator(_no_repeats),
]


def _check_range(low: float | None, high: float | None) -> None:
    if low is not None and high is not None and low > high:
        raise ValueError("min_temp_c must not exceed max_temp_c")


class ProductCreate(BaseModel):
    """A new product."""

    # strict: a value must have the JSON type the schema declares (no `false` for 0, no "5"
    # for 5), as the published OpenAPI promises.
    model_config = ConfigDict(extra="forbid", strict=True)

    sku: Sku
    name: str = Field(min_length=1, max_length=200)
    price_cents: int = Field(ge=0, le=10**12)
    currency: Currency = "EUR"
    attributes: Attributes = Field(default_factory=dict)
    min_temp_c: Temperature | None = None
    max_temp_c: Temperature | None = None
    barcodes: Barcodes = Field(default_factory=list)

    @model_validator(mode="after")
    def _range_ordered(self) -> ProductCreate:
        _check_range(self.min_temp_c, self.max_temp_c)
        return self


class ProductUpdate(BaseModel):
    """Fields to change; omitted fields stay as they are, ``null`` clears a temperature."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    price_cents: int | None = Field(default=None, ge=0, le=10**12)
    currency: Currency | None = None
    attributes: Attributes | None = None
    min_temp_c: Temperature | None = None
    max_temp_c: Temperature | None = None
    barcodes: Barcodes | None = Field(
        default=None, description="Replaces the whole list; `[]` removes every barcode."
    )

    @model_validator(mode="after")
    def _required_fields_not_null(self) -> ProductUpdate:
        for name in ("name", "price_cents", "currency", "attributes", "barcodes"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ProductRead(BaseModel):
    """A product as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    sku: str
    name: str
    price_cents: int
    currency: str
    attributes: dict[str, Any]
    min_temp_c: float | None
    max_temp_c: float | None
    barcodes: list[str] = Field(description="In their stored form, in code order.")
    version: int
    archived: bool
    created_at: datetime
    updated_at: datetime


class ProductPage(BaseModel):
    """One page of products; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[ProductRead]
    next_cursor: str | None
