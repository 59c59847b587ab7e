"""Outbox rows as feed readers see them: plain data, free of SQL, so pure code may take them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class FeedRow:
    """One outbox row as a feed reader sees it; ``(key, position)`` orders the feed."""

    key: int
    position: int
    type: str
    aggregate_type: str
    aggregate_id: str
    payload: dict[str, Any]
    occurred_at: datetime | None = None
