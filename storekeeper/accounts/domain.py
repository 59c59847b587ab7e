"""Roles and what each may do: the rules, free of the web framework and the database."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass


class Role(enum.StrEnum):
    """The roles of docs/design.md section 6."""

    ADMIN = "admin"
    MANAGER = "manager"
    CLERK = "clerk"
    CUSTOMER = "customer"
    DEVICE = "device"


STAFF = frozenset({Role.ADMIN, Role.MANAGER})
"""Run the catalog, warehouses and stock of every warehouse."""

STOCK_HANDLERS = frozenset({Role.ADMIN, Role.MANAGER, Role.CLERK})
"""Record movements, counts and transfers; ship orders."""

BUYERS = frozenset({Role.ADMIN, Role.MANAGER, Role.CLERK, Role.CUSTOMER})
"""Place orders (staff place them on a customer's behalf, e.g. over the counter)."""

ORDER_READERS_OF_ALL = frozenset({Role.ADMIN, Role.MANAGER, Role.CLERK})
"""See every order; customers see only their own."""

ADMINS = frozenset({Role.ADMIN})
"""Manage users, roles and devices; read the audit log."""

DEVICES = frozenset({Role.DEVICE})
"""Send telemetry and sync their bound scope."""


def normalise_email(email: str) -> str:
    """The form an e-mail address is stored and looked up in: one account per address, any case."""
    return email.strip().lower()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a verified token whose session is alive, with the account's current role.

    ``warehouses`` are the warehouse codes a clerk is assigned to; ``scope`` is a device token's
    bound scope (``warehouse:CODE``); ``purpose`` a device token's purpose (``sensor``, ``till``,
    or None for a token issued before purposes existed).
    """

    user_id: uuid.UUID
    role: Role
    session_id: uuid.UUID | None = None
    warehouses: frozenset[str] = frozenset()
    scope: str | None = None
    purpose: str | None = None

    def has_role(self, allowed: frozenset[Role]) -> bool:
        """Whether this caller's role is among ``allowed``."""
        return self.role in allowed
