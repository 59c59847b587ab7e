"""Mirror a circuit breaker's state into ``storekeeper_payment_breaker_open``."""

from __future__ import annotations

import pybreaker

from storekeeper.observability import metrics


class BreakerOpenGauge(pybreaker.CircuitBreakerListener):
    """Set the gauge to 1 when the breaker opens, 0 when it closes or lets a trial call through.

    pybreaker leaves ``open`` lazily, at the first call after its reset timeout, so the gauge
    reads 1 until traffic tries the gateway again: "the last call found the circuit open".
    """

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        """Record the new state under the breaker's name (the gateway's)."""
        is_open = new_state.name == pybreaker.STATE_OPEN
        metrics.BREAKER_OPEN.labels(str(cb.name)).set(1 if is_open else 0)
