"""Events the sync context publishes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class EditLost:
    """An offline product edit lost its merge: replicas are sent the product's winning state."""

    type: ClassVar[str] = "sync.edit_lost"
    aggregate_type: ClassVar[str] = "product"

    sku: str
    mutation_id: str
    fields: tuple[str, ...]

    @property
    def aggregate_id(self) -> str:
        """The SKU."""
        return self.sku


@dataclass(frozen=True, slots=True)
class ExceptionRaised:
    """Offline stock work could not be applied in full; a manager has to look at it."""

    type: ClassVar[str] = "sync.exception_raised"
    aggregate_type: ClassVar[str] = "sync_exception"

    exception_id: int
    kind: str
    sku: str
    warehouse: str
    shortfall: int
    mutation_id: str

    @property
    def aggregate_id(self) -> str:
        """The exception id."""
        return str(self.exception_id)


@dataclass(frozen=True, slots=True)
class ExceptionResolved:
    """A manager settled a sync exception."""

    type: ClassVar[str] = "sync.exception_resolved"
    aggregate_type: ClassVar[str] = "sync_exception"

    exception_id: int
    resolved_by: str
    resolution: str = "accept_loss"

    @property
    def aggregate_id(self) -> str:
        """The exception id."""
        return str(self.exception_id)
