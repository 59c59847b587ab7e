"""Who is calling: one check of a token, its session, account and two-factor, for every transport.

HTTP (bearer header, and later a console's cookie carrying the same access token), live
streams, gRPC metadata and the telemetry ``AUTH`` line all call :func:`authenticate`; they
differ only in where the token comes from and how a refusal is said.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from storekeeper.accounts import policy, security
from storekeeper.accounts.domain import Principal, Role
from storekeeper.accounts.keys import Keyring
from storekeeper.accounts.models import DEVICE, LOGIN, AuthSession, User
from storekeeper.db import Database, as_aware, utcnow
from storekeeper.errors import NotAuthenticated, PermissionDenied

CALLER_TOKENS: tuple[security.TokenType, ...] = ("access", "device")
"""What a caller of the API, a live stream or gRPC presents: a person's access token or a
device's token (never a refresh token; service tokens are admitted by the routes that opt in)."""

DEVICE_TOKENS: tuple[security.TokenType, ...] = ("device",)
"""What a sensor presents on the telemetry transports (TCP ``AUTH`` line, MQTT)."""


class TwoFactorSetupRequired(PermissionDenied):
    """The account's role must use two-factor sign-in and has not set it up yet."""

    code = "two_factor_setup_required"


@dataclass(frozen=True, slots=True)
class PendingTwoFactor(Principal):
    """A caller who must set up two-factor sign-in before doing anything else."""


def authenticate(
    conn: Connection,
    token: str | security.TokenClaims | None,
    *,
    key: Keyring,
    allowed_types: Collection[security.TokenType],
    two_factor_roles: Collection[str],
    allow_2fa_setup: bool = False,
    family: policy.Family | None = None,
) -> Principal:
    """The caller ``token`` proves, or :class:`NotAuthenticated` / :class:`PermissionDenied`.

    The token's signature, expiry and type are verified (no I/O), then its session and account
    are read. A caller whose role is in ``two_factor_roles`` and who has not set up two-factor
    sign-in is refused unless ``allow_2fa_setup`` (only the routes that set it up admit them, as
    :class:`PendingTwoFactor`). ``token`` may also be the claims of a token verified earlier
    (:func:`verify_token`): a live stream rechecks with them because it is bound to its session,
    not to the access token's expiry.

    A device token must serve ``family`` by its purpose (``policy.ensure_purpose``): when not
    given, the telemetry transports (which admit only ``DEVICE_TOKENS``) send readings, every
    other caller reads.
    """
    if isinstance(token, security.TokenClaims):
        claims = token
        if claims.token_type not in allowed_types:
            raise NotAuthenticated(_wrong_type(allowed_types), code="invalid_token")
    else:
        claims = verify_token(token, key=key, allowed_types=allowed_types)
    principal = _principal_for(conn, claims, two_factor_roles=two_factor_roles)
    if not allow_2fa_setup and isinstance(principal, PendingTwoFactor):
        raise TwoFactorSetupRequired(
            "your role must use two-factor sign-in: set it up at /auth/2fa/setup first"
        )
    if family is None:
        family = "telemetry" if tuple(allowed_types) == DEVICE_TOKENS else "read"
    policy.ensure_purpose(principal, family)
    return principal


@dataclass(frozen=True, slots=True)
class Authenticator:
    """:func:`authenticate` bound to the database, signing key and two-factor rule.

    The composition root builds one; every transport holds it. The token is verified before
    the database is touched, so a forged or expired token costs no pooled connection.
    """

    db: Database
    key: Keyring
    two_factor_roles: Collection[str]

    async def principal(
        self,
        token: str | security.TokenClaims | None,
        *,
        allowed_types: Collection[security.TokenType] = CALLER_TOKENS,
        allow_2fa_setup: bool = False,
        family: policy.Family | None = None,
    ) -> Principal:
        """The caller ``token`` proves (from async code: the read runs off the event loop)."""
        claims = self.verify(token, allowed_types=allowed_types)
        return await self.db.read(
            lambda conn: self._authenticate(conn, claims, allowed_types, allow_2fa_setup, family)
        )

    def principal_now(
        self,
        token: str | security.TokenClaims | None,
        *,
        allowed_types: Collection[security.TokenType] = CALLER_TOKENS,
        allow_2fa_setup: bool = False,
        family: policy.Family | None = None,
    ) -> Principal:
        """The caller ``token`` proves (from a worker thread, as gRPC's)."""
        claims = self.verify(token, allowed_types=allowed_types)
        with self.db.reading() as session:
            return self._authenticate(
                session.connection(), claims, allowed_types, allow_2fa_setup, family
            )

    def verify(
        self,
        token: str | security.TokenClaims | None,
        *,
        allowed_types: Collection[security.TokenType] = CALLER_TOKENS,
    ) -> security.TokenClaims:
        """The claims of a well-signed, unexpired token of an allowed type (no I/O)."""
        if isinstance(token, security.TokenClaims):
            return token
        return verify_token(token, key=self.key, allowed_types=allowed_types)

    def _authenticate(
        self,
        conn: Connection,
        claims: security.TokenClaims,
        allowed_types: Collection[security.TokenType],
        allow_2fa_setup: bool,
        family: policy.Family | None,
    ) -> Principal:
        return authenticate(
            conn,
            claims,
            key=self.key,
            allowed_types=allowed_types,
            two_factor_roles=self.two_factor_roles,
            allow_2fa_setup=allow_2fa_setup,
            family=family,
        )


def verify_token(
    token: str | None, *, key: Keyring, allowed_types: Collection[security.TokenType]
) -> security.TokenClaims:
    """The claims of ``token`` if it is present, well signed, unexpired and of an allowed type."""
    if not token:
        raise NotAuthenticated("a bearer token is required")
    return security.decode_token(token, key=key, expected_types=tuple(allowed_types))


def _wrong_type(allowed_types: Collection[security.TokenType]) -> str:
    # The wording of ``security.decode_token``'s refusal, so both paths answer alike.
    return f"this endpoint needs a {' or '.join(allowed_types)} token"


def _principal_for(
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
            AuthSession.purpose,
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
        purpose=row.purpose,
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
        purpose=principal.purpose,
    )
