"""Two-factor sign-in: TOTP codes (RFC 6238) and single-use recovery codes.

pyotp computes the codes; what it leaves to us is replay protection. A code is accepted for the
current 30-second step or one step either side (clock skew), and only for a step later than the
last one accepted for that user, so an observed code cannot be used again.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import pyotp

ISSUER = "Storekeeper"
STEP_S = 30
SKEW_STEPS = 1
RECOVERY_CODES = 10


def new_secret() -> str:
    """A fresh base32 TOTP secret (160 bits)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, *, email: str) -> str:
    """The ``otpauth://`` URI an authenticator app reads (usually from a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def accepted_step(
    secret: str, code: str, *, last_step: int, now: float | None = None
) -> int | None:
    """The time step ``code`` is valid for, if within the skew and newer than ``last_step``."""
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = int((time.time() if now is None else now) // STEP_S)
    for step in range(current - SKEW_STEPS, current + SKEW_STEPS + 1):
        if step > last_step and secrets.compare_digest(totp.at(step * STEP_S), code):
            return step
    return None


def new_recovery_codes() -> list[str]:
    """Ten random codes like ``k3f9-x2m7-q8zp`` (about 60 bits each)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return [
        "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))
        for _ in range(RECOVERY_CODES)
    ]


def hash_recovery_code(code: str) -> str:
    """SHA-256 of the normalised code: the codes are random, so a fast hash is enough."""
    return hashlib.sha256(code.strip().lower().replace(" ", "").encode()).hexdigest()


def looks_like_recovery_code(code: str) -> bool:
    """Recovery codes have dashes; TOTP codes are six digits."""
    return "-" in code
