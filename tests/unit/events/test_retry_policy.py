"""The backoff of failed event deliveries: doubling from the base, capped, parked after N."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from storekeeper.config import Settings
from storekeeper.events.failures import RetryPolicy


def test_the_wait_doubles_from_the_base_and_stops_at_the_cap() -> None:
    policy = RetryPolicy(max_attempts=5, base_s=5.0, cap_s=60.0)
    assert [policy.delay_s(n) for n in range(1, 7)] == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]


@given(
    base=st.floats(min_value=0.001, max_value=3600),
    attempts=st.integers(min_value=1, max_value=10_000),
)
def test_the_wait_never_shrinks_and_never_passes_the_cap(base: float, attempts: int) -> None:
    policy = RetryPolicy(base_s=base)
    assert 0 < policy.delay_s(attempts) <= policy.cap_s
    assert policy.delay_s(attempts) <= policy.delay_s(attempts + 1)


def test_the_policy_comes_from_the_settings() -> None:
    settings = Settings(event_max_attempts=3, event_retry_base_s=0.5, _env_file=None)  # type: ignore[call-arg]
    assert RetryPolicy.from_settings(settings) == RetryPolicy(max_attempts=3, base_s=0.5)
    assert RetryPolicy.from_settings(Settings(_env_file=None)) == RetryPolicy()  # type: ignore[call-arg]
