"""The ``card`` payment gateway: the JSON contract of ``payments/sim.py`` over HTTP.

Every call carries an idempotency key derived from the order, so retries can never charge twice;
retries are bounded and jittered, and a circuit breaker stops calling a gateway that is down.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pybreaker
import tenacity

from storekeeper.config import Settings
from storekeeper.observability.breaker import BreakerOpenGauge
from storekeeper.payments.gateway import (
    Authorization,
    AuthorizationStatus,
    GatewayRejected,
    GatewayUnavailable,
    RefundOutcome,
)

logger = logging.getLogger(__name__)


class _ServerError(Exception):
    """A 5xx answer: the gateway is up but failing, so another attempt may succeed."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"gateway answered {status_code}")
        self.status_code = status_code


# What is worth another attempt: the request may not have arrived, or the gateway hiccuped.
# Any other answer (a decline, a 4xx) would only come back the same.
_RETRYABLE = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, _ServerError)


class _LogStateChanges(pybreaker.CircuitBreakerListener):
    """Logs each breaker transition: operators need to see a gateway outage begin and end."""

    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        old = old_state.name if old_state is not None else "-"
        logger.warning("payment gateway %s circuit %s -> %s", cb.name, old, new_state.name)


def _log_retry(state: tenacity.RetryCallState) -> None:
    outcome = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    logger.warning(
        "payment gateway attempt %d failed (%s); retrying in %.2fs",
        state.attempt_number,
        _describe(outcome),
        wait,
    )


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, _ServerError):
        return str(exc)
    if isinstance(exc, httpx.HTTPError):
        return f"connection error: {str(exc) or type(exc).__name__}"
    return repr(exc)


class HttpGateway:
    """A remote card gateway; one instance is shared by every thread of a process.

    ``httpx.Client`` is thread-safe, tenacity state is per call, and the breaker is entered with
    ``calling()`` so that its lock guards only the state changes: ``CircuitBreaker.call`` would
    hold the lock through the HTTP request and let one payment through at a time.
    """

    name = "card"
    remote = True

    def __init__(self, settings: Settings) -> None:
        self._client = httpx.Client(
            base_url=settings.payment_url, timeout=settings.payment_timeout_s
        )
        self._retries = settings.payment_retries
        # throw_new_error_on_trip=False: the call that trips the breaker reports its own cause
        # (timeout, 503); only the calls turned away afterwards say "circuit open".
        self._breaker = pybreaker.CircuitBreaker(
            fail_max=settings.payment_breaker_failures,
            reset_timeout=settings.payment_breaker_reset_s,
            listeners=[_LogStateChanges(), BreakerOpenGauge()],
            name=self.name,
            throw_new_error_on_trip=False,
        )

    @property
    def breaker_state(self) -> str:
        """``closed``, ``open`` or ``half-open``; an open breaker moves on at the next call."""
        return str(self._breaker.current_state)

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def authorize(
        self, *, order_id: str, amount_cents: int, currency: str, token: str
    ) -> Authorization:
        """Ask for ``amount_cents``; the same order always gets the first answer back."""
        body = {
            "order_id": order_id,
            "amount_cents": amount_cents,
            "currency": currency,
            "token": token,
        }
        answer = self._post("/v1/authorizations", key=f"{order_id}:authorize", body=body)
        reference = str(answer.get("id", ""))
        match answer.get("status"):
            case "authorized":
                return Authorization(AuthorizationStatus.AUTHORIZED, reference=reference)
            case "declined":
                reason = str(answer.get("reason") or "declined")
                return Authorization(AuthorizationStatus.DECLINED, reference, reason)
        raise self._rejected(f"authorization answered status {answer.get('status')!r}")

    def capture(self, *, order_id: str, amount_cents: int) -> None:
        """Take the authorized amount; capturing again changes nothing."""
        body = {"order_id": order_id, "amount_cents": amount_cents}
        self._post("/v1/captures", key=f"{order_id}:capture", body=body)

    def refund(self, *, order_id: str) -> RefundOutcome:
        """Refund a capture, void an authorization, or void ahead an order never seen."""
        answer = self._post("/v1/refunds", key=f"{order_id}:refund", body={"order_id": order_id})
        try:
            return RefundOutcome(str(answer.get("status")))
        except ValueError:
            raise self._rejected(f"refund answered status {answer.get('status')!r}") from None

    def _post(self, path: str, *, key: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST through the breaker and the retries; the 2xx JSON answer, or GatewayUnavailable.

        A 4xx comes back out of the breaker as an answer, not a failure: the gateway is
        reachable and working, and it is our request that is wrong, so it must not open the
        circuit for everybody else. It raises ``GatewayRejected`` instead.
        """
        try:
            with self._breaker.calling():
                response = self._post_with_retries(path, key=key, body=body)
        except pybreaker.CircuitBreakerError as exc:
            raise GatewayUnavailable("circuit open") from exc
        except (httpx.HTTPError, _ServerError) as exc:
            raise GatewayUnavailable(_describe(exc)) from exc
        if not response.is_success:
            raise self._rejected(f"{path} answered {response.status_code}: {response.text[:200]}")
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise self._rejected(f"{path} answered a body that is not a JSON object")
        return answer

    def _post_with_retries(self, path: str, *, key: str, body: dict[str, Any]) -> httpx.Response:
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self._retries + 1),
            wait=tenacity.wait_random_exponential(multiplier=0.1, max=1.0),
            retry=tenacity.retry_if_exception_type(_RETRYABLE),
            before_sleep=_log_retry,
            reraise=True,
        )
        return retrying(self._post_once, path, key=key, body=body)

    def _post_once(self, path: str, *, key: str, body: dict[str, Any]) -> httpx.Response:
        response = self._client.post(path, json=body, headers={"Idempotency-Key": key})
        if response.is_server_error:
            raise _ServerError(response.status_code)
        return response

    @staticmethod
    def _rejected(reason: str) -> GatewayRejected:
        logger.error("payment gateway refused a request: %s", reason)
        return GatewayRejected(reason)
