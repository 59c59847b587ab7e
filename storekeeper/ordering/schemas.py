"""Request and response bodies of the ordering API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from storekeeper.inventory.schemas import LineCreate, Location
from storekeeper.ordering.domain import OrderStatus


class PaymentCreate(BaseModel):
    """How the order is paid: ``manual`` (cash, invoice) or ``card`` (through the gateway)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    method: Annotated[str, Field(pattern=r"^(manual|card)$")] = "manual"
    token: Annotated[str, Field(max_length=512)] = ""


class OrderCreate(BaseModel):
    """A new order."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {"lines": [{"sku": "DEMO-0001", "qty": 3}], "ship_to": {"lat": 53.08, "lon": 8.8}}
            ]
        },
    )

    lines: list[LineCreate] = Field(min_length=1, max_length=100)
    ship_to: Location | None = None
    payment: PaymentCreate = Field(default_factory=PaymentCreate)


class OrderLineRead(BaseModel):
    """A line as allocated: which warehouse serves how many units, at what unit price."""

    model_config = ConfigDict(from_attributes=True)

    sku: str
    qty: int
    warehouse: str
    unit_price_cents: int


class PaymentRead(BaseModel):
    """How the order is being paid."""

    method: str
    reference: str | None


class OrderRead(BaseModel):
    """An order as the API shows it."""

    id: uuid.UUID
    status: OrderStatus
    customer_id: uuid.UUID
    lines: list[OrderLineRead]
    total_cents: int
    currency: str
    ship_to: Location | None
    payment: PaymentRead
    cancel_reason: str | None
    created_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    """One page of orders, newest first; pass ``next_cursor`` back as ``cursor``."""

    items: list[OrderRead]
    next_cursor: str | None


class CancelRequest(BaseModel):
    """Why an order is cancelled."""

    model_config = ConfigDict(extra="forbid", strict=True)

    reason: str = Field(default="cancelled on request", max_length=500)
