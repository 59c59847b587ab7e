"""Request and response bodies of the catalog API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from storekeeper.jsonlimits import FreeJson

Sku = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$"),
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Temperature = Annotated[float, Field(ge=-100, le=100)]


Attributes = FreeJson
"""A product's own fields, free-form within the limits of storekeeper.jsonlimits."""


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

    @model_validator(mode="after")
    def _required_fields_not_null(self) -> ProductUpdate:
        for name in ("name", "price_cents", "currency", "attributes"):
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
    version: int
    archived: bool
    created_at: datetime
    updated_at: datetime


class ProductPage(BaseModel):
    """One page of products; pass ``next_cursor`` back as ``cursor`` for the next."""

    items: list[ProductRead]
    next_cursor: str | None
