"""Who is calling: a token's session and account checked on every request, for every transport."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from storekeeper.accounts import security
from storekeeper.accounts.domain import Principal, Role
from storekeeper.accounts.models import DEVICE, LOGIN, AuthSession, User
from storekeeper.db import as_aware, utcnow
from storekeeper.errors import NotAuthenticated, PermissionDenied


class TwoFactorSetupRequired(PermissionDenied):
    """The account's role must use two-factor sign-in and has not set it up yet."""

    code = "two_factor_setup_required"


@dataclass(frozen=True, slots=True)
class PendingTwoFactor(Principal):
    """A caller who must set up two-factor sign-in before doing anything else."""


def principal_for(
    connection: Connection, claims: security.TokenClaims, *, two_factor_roles: Collection[str]
) -> Principal:
    """The caller a verified token names, if its session and account are still good; else 401.

    One indexed read per request: the price of revocation that works at once. A caller whose
    role is in ``two_factor_roles`` without two-factor sign-in on comes back as
    ``PendingTwoFactor``.
    """
    row = connection.execute(
        select(
            User.role,
            User.is_active,
            User.warehouses,
            AuthSession.user_id,
            AuthSession.kind,
            AuthSession.scope,
            User.totp_enabled,
            AuthSession.expires_at,
            AuthSession.revoked_at,
        )
        .join(User, User.id == AuthSession.user_id)
        .where(AuthSession.id == claims.session_id)
    ).first()
    expected_kind = DEVICE if claims.token_type == "device" else LOGIN
    if (
        row is None
        or row.user_id != claims.user_id
        or row.kind != expected_kind
        or row.revoked_at is not None
        or (as_aware(row.expires_at) or utcnow()) <= utcnow()
        or not row.is_active
    ):
        raise NotAuthenticated("token revoked or session ended", code="invalid_token")
    principal = Principal(
        user_id=claims.user_id,
        role=Role(row.role),
        session_id=claims.session_id,
        warehouses=frozenset(row.warehouses or ()),
        scope=row.scope,
    )
    if row.role in two_factor_roles and not row.totp_enabled:
        return _needs_two_factor(principal)
    return principal


def _needs_two_factor(principal: Principal) -> Principal:
    return PendingTwoFactor(
        user_id=principal.user_id,
        role=principal.role,
        session_id=principal.session_id,
        warehouses=principal.warehouses,
        scope=principal.scope,
    )


def ensure_two_factor_done(principal: Principal) -> None:
    """Refuse callers whose role requires two-factor sign-in until they have set it up."""
    if isinstance(principal, PendingTwoFactor):
        raise TwoFactorSetupRequired(
            "your role must use two-factor sign-in: set it up at /auth/2fa/setup first"
        )
