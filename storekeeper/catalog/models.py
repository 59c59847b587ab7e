"""Tables of the catalog context."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storekeeper.db import Base, utcnow


class Product(Base):
    """A sellable item, identified by its SKU; archived products stay for history."""

    __tablename__ = "catalog_product"
    __table_args__ = (
        CheckConstraint("price_cents >= 0", name="price_not_negative"),
        CheckConstraint(
            "min_temp_c IS NULL OR max_temp_c IS NULL OR min_temp_c <= max_temp_c",
            name="temp_range_ordered",
        ),
    )

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    min_temp_c: Mapped[float | None]
    max_temp_c: Mapped[float | None]
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    archived_at: Mapped[datetime | None] = mapped_column(default=None)
    # Last-writer-wins for offline edits (storekeeper.sync): the hybrid logical clock stamp of
    # the last write of each field, and the newest of them.
    field_hlcs: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default=text("'{}'"))
    hlc: Mapped[str | None] = mapped_column(String(96), default=None)

    # Loaded with the product (one IN query per batch of products), so a product read in a
    # session shows its barcodes after the session is gone.
    barcode_rows: Mapped[list[ProductBarcode]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", back_populates="product"
    )

    @property
    def archived(self) -> bool:
        """Whether the product was withdrawn from sale."""
        return self.archived_at is not None

    @property
    def barcodes(self) -> list[str]:
        """The product's barcodes in their stored form, in code order (a set: order is not
        kept)."""
        return sorted(row.code for row in self.barcode_rows)


class ProductBarcode(Base):
    """One barcode of a product (storekeeper.catalog.barcodes), in its stored form; a code
    belongs to one product for good (an archived product keeps its codes)."""

    __tablename__ = "catalog_barcode"

    code: Mapped[str] = mapped_column(String(48), primary_key=True)
    sku: Mapped[str] = mapped_column(ForeignKey("catalog_product.sku"), index=True)
    product: Mapped[Product] = relationship(back_populates="barcode_rows")
