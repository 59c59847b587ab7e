"""Request and response bodies of the sync API, and the data each mutation type carries.

The push envelope is checked when the request is parsed (a malformed envelope is a 422 for the
whole batch); a mutation's ``data`` is checked per mutation by the service, so one bad mutation
is ``rejected`` on its own and does not hold up the others in a replica's queue.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from storekeeper.catalog.schemas import Attributes, Sku, Temperature
from storekeeper.inventory.schemas import Quantity, WarehouseCode
from storekeeper.jsonlimits import MAX_BYTES, MAX_DEPTH, limits
from storekeeper.sync.domain import range_ordered
from storekeeper.sync.hlc import NODE_PATTERN

ReplicaId = Annotated[str, StringConstraints(pattern=rf"^{NODE_PATTERN}$")]
MAX_MUTATIONS = 1000
"""Mutations per push; a replica with more sends several batches."""

# --- pull ------------------------------------------------------------------------------------


class Change(BaseModel):
    """One entity as it is now on the server, or its removal from the replica's copy."""

    entity: Literal["product", "stock"]
    key: str = Field(description="The SKU, for both entities.")
    op: Literal["upsert", "delete"]
    data: dict[str, Any] | None = Field(
        description="product: sku, name, price_cents, currency, attributes, min_temp_c, "
        "max_temp_c, barcodes, hlc; stock: sku, warehouse, on_hand, reserved, available; null "
        "for delete."
    )
    version: int = Field(description="Grows with every change of the entity on the server.")


class PullPage(BaseModel):
    """Changes in server commit order; pass ``cursor`` as ``since`` to go on."""

    changes: list[Change]
    cursor: str
    has_more: bool = Field(description="Pull again at once: the next page is ready.")


# --- push ------------------------------------------------------------------------------------


class MutationIn(BaseModel):
    """One change a replica made, queued while offline."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: Annotated[uuid.UUID, Field(strict=False)]
    type: str = Field(
        min_length=1,
        max_length=64,
        description="stock.receive, stock.adjust, stock.count, stock.sell or product.update; "
        "another type is rejected on its own.",
    )
    # Bounded here, so a document too deep to answer about never reaches the service; what the
    # type needs (storable values included) is checked per mutation.
    data: Annotated[
        dict[str, Any],
        limits(max_depth=MAX_DEPTH + 2, max_bytes=4 * MAX_BYTES, storable=False),
    ] = Field(description="What the type needs: see docs/sync.md.")
    hlc: str = Field(
        min_length=1,
        max_length=128,
        description='Hybrid logical clock stamp "<wall ms>-<counter>-<node>" of the change.',
    )


class PushRequest(BaseModel):
    """A batch of a replica's queued mutations, oldest first."""

    model_config = ConfigDict(extra="forbid", strict=True)

    replica_id: ReplicaId
    mutations: list[MutationIn] = Field(max_length=MAX_MUTATIONS)


class MutationResult(BaseModel):
    """The verdict on one mutation; ``detail`` always has ``code`` and ``message``."""

    id: uuid.UUID
    status: Literal["applied", "duplicate", "conflict", "rejected"]
    detail: dict[str, Any]


class PushResult(BaseModel):
    """One result per pushed mutation, in the order pushed."""

    results: list[MutationResult]


# --- mutation data, checked per mutation ----------------------------------------------------


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    warehouse: WarehouseCode
    sku: Sku


class ReceiveData(_Data):
    """``stock.receive``: goods arrived."""

    qty: Quantity


class AdjustData(_Data):
    """``stock.adjust``: a write-off or correction."""

    delta: int = Field(ge=-1_000_000_000, le=1_000_000_000)
    reason: Literal["damage", "correction"]

    @model_validator(mode="after")
    def _not_zero(self) -> AdjustData:
        if self.delta == 0:
            raise ValueError("delta must not be zero")
        return self


class CountData(_Data):
    """``stock.count``: a physical count against the on-hand the replica last saw."""

    counted: int = Field(ge=0, le=1_000_000_000)
    seen_on_hand: int = Field(ge=0, le=1_000_000_000)


class SellData(_Data):
    """``stock.sell``: units sold over the counter."""

    qty: Quantity


class ProductFields(BaseModel):
    """The product fields a replica may edit; at least one."""

    model_config = ConfigDict(extra="forbid", strict=True)

    name: str | None = Field(default=None, min_length=1, max_length=200)
    price_cents: int | None = Field(default=None, ge=0, le=10**12)
    attributes: Attributes | None = None
    min_temp_c: Temperature | None = None
    max_temp_c: Temperature | None = None

    @model_validator(mode="after")
    def _check(self) -> ProductFields:
        if not self.model_fields_set:
            raise ValueError("fields must name at least one field")
        for name in ("name", "price_cents", "attributes"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        if not range_ordered(self.min_temp_c, self.max_temp_c):
            raise ValueError("min_temp_c must not exceed max_temp_c")
        return self


class ProductUpdateData(_Data):
    """``product.update``: field edits, last-writer-wins per field."""

    fields: ProductFields


DATA_SCHEMAS: dict[str, type[_Data]] = {
    "stock.receive": ReceiveData,
    "stock.adjust": AdjustData,
    "stock.count": CountData,
    "stock.sell": SellData,
    "product.update": ProductUpdateData,
}

# --- exceptions ------------------------------------------------------------------------------


class ExceptionRead(BaseModel):
    """Offline stock work that could not be applied in full."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str = Field(description="The mutation type, e.g. stock.sell.")
    status: Literal["open", "resolved"]
    sku: str
    warehouse: str = Field(validation_alias="warehouse_code")
    replica_id: str
    mutation_id: uuid.UUID
    actor_id: uuid.UUID | None
    requested: int = Field(description="Units the replica took off on-hand.")
    applied: int = Field(description="Units the server could take (the available stock).")
    shortfall: int = Field(description="requested - applied: units nobody has accounted for.")
    created_at: datetime
    resolved_at: datetime | None
    resolved_by: uuid.UUID | None
    note: str | None
    resolution: Literal["accept_loss", "correct_count", "attach_receipt"] | None = Field(
        default=None,
        description="How it was resolved; null while open or if resolved before "
        "resolutions existed (a note only).",
    )
    counted: int | None = Field(default=None, description="The count entered (correct_count).")
    receipt_id: int | None = Field(
        default=None, description="The receipt movement attached (attach_receipt)."
    )
    seen_on_hand: int | None = Field(
        default=None,
        description="The on-hand the replica had recorded when it made the change (sent with "
        "counts; null for sales and adjustments, which carry none).",
    )
    server_on_hand: int | None = Field(
        default=None, description="The server's on-hand right after it applied what it could."
    )


class ExceptionPage(BaseModel):
    """One page of exceptions, oldest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[ExceptionRead]
    next_cursor: str | None


class ResolveRequest(BaseModel):
    """How a manager settled an exception."""

    model_config = ConfigDict(extra="forbid", strict=True)

    note: str = Field(min_length=1, max_length=2000)
    resolution: Literal["accept_loss", "correct_count", "attach_receipt"] = Field(
        default="accept_loss",
        description="accept_loss: stock stays as it is; correct_count: on-hand becomes "
        "`counted`; attach_receipt: the units came from receipt movement `receipt_id`, and the "
        "shortfall is taken off now as a sale.",
    )
    counted: int | None = Field(default=None, ge=0, le=1_000_000_000)
    receipt_id: int | None = Field(default=None, ge=1, le=2**63 - 1)

    @model_validator(mode="after")
    def _fits_resolution(self) -> ResolveRequest:
        if (self.counted is not None) != (self.resolution == "correct_count"):
            raise ValueError("counted is required with correct_count, and only with it")
        if (self.receipt_id is not None) != (self.resolution == "attach_receipt"):
            raise ValueError("receipt_id is required with attach_receipt, and only with it")
        return self
