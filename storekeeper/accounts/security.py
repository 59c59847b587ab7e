"""Password hashing (argon2id) and JWT access/refresh tokens, signed by the ``Keyring``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from storekeeper.db import utcnow
from storekeeper.errors import NotAuthenticated

if TYPE_CHECKING:
    from storekeeper.accounts.keys import Keyring

# OWASP's argon2id baseline: m=19 MiB, t=2, p=1 (Password Storage Cheat Sheet).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verified against when the e-mail is unknown, so a miss costs what a hit costs.
_DUMMY_HASH = _hasher.hash("storekeeper-timing-equaliser")

ISSUER = "storekeeper"
AUDIENCE = "storekeeper-api"
ALGORITHM = "HS256"
TokenType = Literal["access", "refresh", "device", "service"]
SERVICE_ACCOUNT = uuid.UUID(int=0)
"""The subject of service tokens: no account, another Storekeeper process."""


def hash_password(password: str) -> str:
    """An argon2id hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    """Whether ``password`` matches; with no hash it still spends the time of a check."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with weaker parameters than today's."""
    return _hasher.check_needs_rehash(password_hash)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """What a verified token says. The role is not in it: it is read from the account on each
    request, so a role change or a disabled account takes effect at once."""

    user_id: uuid.UUID
    session_id: uuid.UUID
    token_type: TokenType
    jti: str


def new_jti() -> str:
    """A fresh token id."""
    return uuid.uuid4().hex


def issue_token(
    *,
    key: Keyring,
    user_id: uuid.UUID,
    session_id: uuid.UUID,
    token_type: TokenType,
    ttl: timedelta,
    jti: str | None = None,
) -> str:
    """A JWT for ``user_id`` within sign-in session (or device) ``session_id``, signed by the
    keyring's newest key and naming it (``kid``)."""
    now = utcnow()
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(user_id),
        "sid": str(session_id),
        "typ": token_type,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        "jti": jti or new_jti(),
    }
    kid, secret = key.signer()
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})


def key_id_of(token: str) -> str | None:
    """The id of the key that signed ``token`` (one this process just issued)."""
    kid = jwt.get_unverified_header(token).get("kid")
    return kid if isinstance(kid, str) else None


def decode_token(token: str, *, key: Keyring, expected_types: tuple[TokenType, ...]) -> TokenClaims:
    """Verify signature, algorithm, issuer, audience, expiry and type, or raise NotAuthenticated.

    Only HS256 is accepted (``alg: none`` and public-key confusion are refused by PyJWT's
    allowlist); every registered claim must be present. The header's ``kid`` picks the key; a
    retired or unknown key fails like a bad signature.
    """
    try:
        secret = key.secret(key_id_of(token))
        if secret is None:
            raise ValueError("unknown or retired signing key")
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["exp", "iat", "sub", "jti", "iss", "aud", "sid"]},
        )
        user_id = uuid.UUID(claims["sub"])
        session_id = uuid.UUID(claims["sid"])
        jti = str(claims["jti"])
    except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
        raise NotAuthenticated("invalid or expired token", code="invalid_token") from exc
    token_type = claims.get("typ")
    if token_type not in expected_types:
        raise NotAuthenticated(
            f"this endpoint needs a {' or '.join(expected_types)} token", code="invalid_token"
        )
    return TokenClaims(user_id=user_id, session_id=session_id, token_type=token_type, jti=jti)


def issue_service_token(*, key: Keyring, ttl: timedelta = timedelta(minutes=5)) -> str:
    """A short-lived token one Storekeeper process sends another (``serve --only``).

    Only a holder of the signing key can mint one, and every process of a deployment holds
    it; endpoints accept service tokens only where they opt in (``ServiceOrStaff``).
    """
    return issue_token(
        key=key,
        user_id=SERVICE_ACCOUNT,
        session_id=SERVICE_ACCOUNT,
        token_type="service",  # noqa: S106 - a token type, not a password
        ttl=ttl,
    )
