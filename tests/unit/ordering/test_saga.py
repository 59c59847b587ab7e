"""The payment saga's decisions and jobs, with a fake gateway bound by bootstrap: no database."""

from __future__ import annotations

from pathlib import Path

import pytest

from storekeeper.ordering import saga, service
from storekeeper.payments.gateway import (
    Authorization,
    AuthorizationStatus,
    GatewayRejected,
    GatewayUnavailable,
)
from storekeeper.tasks.queue import PermanentJobError
from tests.unit.fakes import FakeGateway, offline_container


def _authorize(gateway: FakeGateway, method: str = "card") -> saga.Settlement:
    return saga.authorize(
        {"card": gateway},
        method=method,
        order_id="order-1",
        amount_cents=1250,
        currency="EUR",
        token="tok",
    )


def test_an_authorized_payment_confirms_with_the_gateways_reference() -> None:
    answer = Authorization(AuthorizationStatus.AUTHORIZED, reference="auth-77")
    assert _authorize(FakeGateway(answer=answer)) == saga.Settlement(reference="auth-77")


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            Authorization(AuthorizationStatus.DECLINED, "r", reason="insufficient funds"),
            "payment declined: insufficient funds",
        ),
        (GatewayUnavailable("timeout"), "payment gateway unavailable: timeout"),
        (GatewayRejected("bad token"), "payment gateway refused the request: bad token"),
    ],
)
def test_a_declined_unreachable_or_refusing_gateway_cancels_with_a_reason(
    answer: Authorization | Exception, reason: str
) -> None:
    settlement = _authorize(FakeGateway(answer=answer))
    assert (settlement.reference, settlement.reason) == (None, reason)


def test_an_unconfigured_method_cancels_without_asking_anyone() -> None:
    gateway = FakeGateway()
    settlement = _authorize(gateway, method="crypto")
    assert settlement.reason == "payment method 'crypto' is not configured"
    assert gateway.calls == []


def test_a_pending_answer_is_retried_not_settled() -> None:
    pending = Authorization(AuthorizationStatus.PENDING, reference="auth-9")
    with pytest.raises(saga.StillPending):
        _authorize(FakeGateway(answer=pending))


def test_bootstrap_binds_the_gateway_into_the_refund_and_capture_jobs(tmp_path: Path) -> None:
    gateway = FakeGateway()
    with offline_container(tmp_path, gateway=gateway) as container:
        refund = container.jobs.get(service.REFUND_PAYMENT)
        capture = container.jobs.get(service.CAPTURE_PAYMENT)
        assert refund is not None and capture is not None
        refund({"method": "card", "order_id": "o-1"})
        capture({"method": "card", "order_id": "o-2", "amount_cents": 500})
    assert gateway.calls == [("refund", "o-1"), ("capture", "o-2")]


@pytest.mark.parametrize("job_name", [service.REFUND_PAYMENT, service.CAPTURE_PAYMENT])
def test_gateway_failures_decide_between_retrying_and_giving_up(
    tmp_path: Path, job_name: str
) -> None:
    gateway = FakeGateway()
    args = {"method": "card", "order_id": "o-1", "amount_cents": 500}
    with offline_container(tmp_path, gateway=gateway) as container:
        job = container.jobs.get(job_name)
        assert job is not None
        gateway.failure = GatewayUnavailable("connection refused")
        with pytest.raises(RuntimeError) as retried:
            job(args)
        assert not isinstance(retried.value, PermanentJobError)  # the queue retries it
        gateway.failure = GatewayRejected("unknown order")
        with pytest.raises(PermanentJobError):
            job(args)
        with pytest.raises(PermanentJobError, match="not configured"):
            job({**args, "method": "crypto"})
