"""Who may do what: the one place where authorization is decided.

Function level: each route admits a set of roles (``domain.STAFF`` …, checked by
``api.deps.require``). Object level, decided here: customers see and cancel only their own orders
(others get 404, so order ids cannot be probed), clerks act only on the warehouses assigned to
them, devices only within their bound scope and for their token's purpose (``ensure_purpose``,
called by ``authentication.authenticate`` for every transport).
``tests/e2e/test_authorization_matrix.py`` checks every role against every endpoint.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Literal

from storekeeper.accounts.domain import ORDER_READERS_OF_ALL, STAFF, Principal, Role
from storekeeper.errors import PermissionDenied


class WarehouseNotAssigned(PermissionDenied):
    """A clerk acting on a warehouse they are not assigned to."""

    code = "warehouse_not_assigned"


def may_see_order(principal: Principal, *, customer_id: uuid.UUID) -> bool:
    """Staff see every order; customers only their own."""
    return principal.has_role(ORDER_READERS_OF_ALL) or customer_id == principal.user_id


def ensure_warehouses(principal: Principal, codes: Iterable[str]) -> None:
    """Managers and admins act on every warehouse; a clerk only on their assigned ones."""
    if principal.has_role(STAFF):
        return
    missing = sorted(set(codes) - principal.warehouses)
    if principal.role is not Role.CLERK or missing:
        raise WarehouseNotAssigned(
            f"you are not assigned to warehouse {', '.join(missing) or '(any)'}"
        )


def ensure_scope(principal: Principal, scope: str) -> None:
    """A device acts only within its bound scope; a clerk within their warehouses' scopes."""
    if principal.has_role(STAFF):
        return
    if principal.role is Role.DEVICE and principal.scope == scope:
        return
    if principal.role is Role.CLERK and scope.startswith("warehouse:"):
        ensure_warehouses(principal, [scope.removeprefix("warehouse:")])
        return
    raise PermissionDenied(f"not allowed on scope {scope}", code="scope_not_allowed")


Family = Literal["telemetry", "sync", "read", "other"]
"""What a request does, as far as a device token's purpose cares: send readings (HTTP
``POST /telemetry``, the TCP line protocol, MQTT), sync (``/sync/*``), read (any other ``GET``,
live streams, gRPC reads), or anything else."""

PURPOSES: dict[str, frozenset[Family]] = {
    "sensor": frozenset({"telemetry"}),
    "till": frozenset({"sync", "read"}),
}
"""What a device token of each purpose may do; a token without a purpose (issued before
purposes existed) keeps doing all that its role and scope allow."""


class PurposeNotAllowed(PermissionDenied):
    """A device token used for something its purpose does not cover."""

    code = "purpose_not_allowed"


def ensure_purpose(principal: Principal, family: Family) -> None:
    """A sensor token only sends readings; a till or handheld token only syncs and reads."""
    if principal.role is not Role.DEVICE or principal.purpose is None:
        return
    if family not in PURPOSES.get(principal.purpose, frozenset()):
        raise PurposeNotAllowed(f"a {principal.purpose} token may not do this ({family})")
