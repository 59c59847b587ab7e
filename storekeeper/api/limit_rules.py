"""The grammar of rate-limit settings, apart from the middleware so that reading the settings does
not import the web stack."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Per = Literal["account", "address"]

_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_LIMIT = re.compile(r"(\d+)\s*/\s*(\d*)\s*(second|minute|hour|day)s?\s+per\s+(account|address)")


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``count`` requests per ``period_s`` from one account or one client address."""

    count: int
    period_s: int
    per: Per

    @property
    def interval_us(self) -> int:
        """One request is earned back every ``period / count``."""
        return self.period_s * 1_000_000 // self.count

    @property
    def burst_us(self) -> int:
        """How far ahead the bucket may run: ``count`` requests at once from a full bucket."""
        return self.interval_us * self.count


def parse_limits(text: str) -> tuple[Limit, ...]:
    """``"5/minute per account, 20/10 seconds per address"`` as limits; an empty text, none."""
    if not text.strip():
        return ()
    limits: list[Limit] = []
    for part in (p.strip() for p in text.lower().split(",")):
        match = _LIMIT.fullmatch(part)
        if match is None:
            raise ValueError(
                f"{part!r} is not a rate limit; write COUNT/[N ]second|minute|hour|day per "
                "account|address, e.g. '5/minute per account, 20/10 seconds per address'"
            )
        count, number, unit, per = match.groups()
        period_s = int(number or 1) * _UNITS[unit]
        if int(count) < 1 or period_s < 1:
            raise ValueError(f"{part!r}: the count and the period must be at least 1")
        limits.append(Limit(int(count), period_s, "account" if per == "account" else "address"))
    return tuple(limits)
