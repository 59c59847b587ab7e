"""Two-factor sign-in (TOTP): setting up a secret and confirming it, which yields recovery codes."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from storekeeper.accounts import audit, totp
from storekeeper.accounts.domain import Principal, Role
from storekeeper.accounts.models import RecoveryCode
from storekeeper.accounts.users import get_active_or_raise
from storekeeper.errors import Conflict, InvalidRequest, PermissionDenied


def setup_two_factor(session: Session, *, user_id: uuid.UUID) -> tuple[str, str]:
    """A new TOTP secret for the user (replacing an unconfirmed one) and its ``otpauth://`` URI."""
    user = get_active_or_raise(session, user_id=user_id)
    if user.role == Role.DEVICE.value:
        raise PermissionDenied("devices sign in with their token only", code="is_a_device")
    if user.totp_enabled:
        raise Conflict("two-factor sign-in is already on", code="two_factor_enabled")
    user.totp_secret = totp.new_secret()
    return user.totp_secret, totp.provisioning_uri(user.totp_secret, email=user.email)


def enable_two_factor(session: Session, *, principal: Principal, code: str) -> list[str]:
    """Confirm the set-up secret with a current code; returns recovery codes, shown only now."""
    user = get_active_or_raise(session, user_id=principal.user_id)
    if user.role == Role.DEVICE.value:
        raise PermissionDenied("devices sign in with their token only", code="is_a_device")
    if user.totp_enabled:
        raise Conflict("two-factor sign-in is already on", code="two_factor_enabled")
    if not user.totp_secret:
        raise Conflict("call /auth/2fa/setup first", code="two_factor_not_set_up")
    step = totp.accepted_step(user.totp_secret, code, last_step=user.totp_last_step)
    if step is None:
        raise InvalidRequest("invalid one-time code", code="invalid_otp")
    user.totp_enabled, user.totp_last_step = True, step
    codes = totp.new_recovery_codes()
    session.add_all(
        RecoveryCode(user_id=user.id, code_hash=totp.hash_recovery_code(c)) for c in codes
    )
    audit.record(session, "two_factor_enabled", user_id=user.id)
    return codes
