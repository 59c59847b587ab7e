"""Events the accounts context publishes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True, slots=True)
class AccountRegistered:
    """Someone signed up as a customer (not sent for accounts an admin creates)."""

    type: ClassVar[str] = "account.registered"
    aggregate_type: ClassVar[str] = "account"

    user_id: str
    email: str

    @property
    def aggregate_id(self) -> str:
        """The user id."""
        return self.user_id
