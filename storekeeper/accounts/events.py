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


@dataclass(frozen=True, slots=True)
class PasswordResetRequested:
    """Someone asked for a password-reset link for an existing, active account.

    ``token`` is the single-use secret the e-mail carries; the database keeps only its hash.
    """

    type: ClassVar[str] = "account.password_reset_requested"
    aggregate_type: ClassVar[str] = "account"

    user_id: str
    email: str
    token: str
    expires_at: str
    valid_minutes: int

    @property
    def aggregate_id(self) -> str:
        """The user id."""
        return self.user_id
