"""Password policy: long enough, not one of the commonest, not the e-mail address.

Without network access to a breach corpus (e.g. Have I Been Pwned), the blocklist is a curated
list of the passwords and stems that top the public breach lists: a candidate is refused when it,
or its stem without trailing digits and symbols ("Password2024!" → "password"), is listed, when
it is one character repeated, or when it contains the e-mail's local part.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from storekeeper.errors import InvalidRequest

MIN_LENGTH = 10
MAX_LENGTH = 256
_TRAILING = re.compile(r"[\d\W_]+$")


class WeakPassword(InvalidRequest):
    """The password is too short, too common or too close to the account's e-mail."""

    code = "weak_password"


@cache
def _blocklist() -> frozenset[str]:
    text = resources.files("storekeeper.accounts").joinpath("common_passwords.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def check(password: str, *, email: str) -> None:
    """Raise WeakPassword with the reason, or return."""
    if len(password) < MIN_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_LENGTH} characters")
    lowered = password.lower()
    stem = _TRAILING.sub("", lowered)
    if lowered in _blocklist() or stem in _blocklist() or len(set(lowered)) == 1:
        raise WeakPassword("this password is among the most common ones; choose another")
    local = email.split("@", 1)[0].lower()
    if len(local) >= 4 and local in lowered:
        raise WeakPassword("a password must not contain the e-mail address")
