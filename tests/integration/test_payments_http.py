"""The ``card`` gateway adapter against the payment simulator running as a real process.

One simulator process per xdist worker (own free port), reset before each test; tests that need
start-up flags start their own. No mocks: faults come from the simulator's switches.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from storekeeper.bootstrap import payment_gateways
from storekeeper.config import Settings
from storekeeper.payments.gateway import (
    AuthorizationStatus,
    GatewayRejected,
    GatewayUnavailable,
    RefundOutcome,
)
from storekeeper.payments.http import HttpGateway
from tests.payment_sim import Sim, free_port, start_sim, stop_sim, storekeeper_script


@pytest.fixture(scope="module")
def sim_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sim]:
    """One simulator for this worker's tests of the module."""
    sim = start_sim(tmp_path_factory.mktemp("sim") / "sim.log", "--seed", "7")
    yield sim
    stop_sim(sim)


@pytest.fixture
def sim(sim_process: Sim) -> Sim:
    """The simulator, clean and without faults."""
    sim_process.reset()
    return sim_process


GatewayFactory = Callable[..., HttpGateway]


@pytest.fixture
def make_gateway(sim: Sim) -> Iterator[GatewayFactory]:
    """Builds adapters against the simulator; small timeouts so that fault tests stay fast."""
    made: list[HttpGateway] = []

    def make(**overrides: Any) -> HttpGateway:
        values: dict[str, Any] = {
            "payment_url": sim.url,
            "payment_timeout_s": 0.3,
            "payment_retries": 2,
            "payment_breaker_failures": 5,
            "payment_breaker_reset_s": 0.5,
            **overrides,
        }
        gateway = HttpGateway(Settings(**values, _env_file=None))
        made.append(gateway)
        return gateway

    yield make
    for gateway in made:
        gateway.close()


def _order() -> str:
    return str(uuid.uuid4())


def _authorize(gateway: HttpGateway, order_id: str, token: str = "tok_ok") -> Any:
    return gateway.authorize(order_id=order_id, amount_cents=1250, currency="EUR", token=token)


# --- the happy paths and declines --------------------------------------------------------------


def test_authorize_returns_the_gateways_reference(sim: Sim, make_gateway: GatewayFactory) -> None:
    answer = _authorize(make_gateway(), _order())

    assert answer.status is AuthorizationStatus.AUTHORIZED
    assert answer.reference.startswith("auth_")
    assert sim.stats()["authorizations"] == {"authorized": 1, "declined": 0}


def test_authorizing_an_order_again_replays_the_first_answer(
    sim: Sim, make_gateway: GatewayFactory
) -> None:
    gateway, order_id = make_gateway(), _order()

    first = _authorize(gateway, order_id)
    again = _authorize(gateway, order_id)

    assert again == first
    stats = sim.stats()
    assert stats["authorizations"]["authorized"] == 1
    assert stats["max_authorizations_per_order"] == 1


def test_decline_token_is_an_answer_not_an_error(sim: Sim, make_gateway: GatewayFactory) -> None:
    answer = _authorize(make_gateway(), _order(), token="tok_decline")

    assert answer.status is AuthorizationStatus.DECLINED
    assert answer.reason == "card_declined"


def test_capture_then_refund_gives_the_money_back(sim: Sim, make_gateway: GatewayFactory) -> None:
    gateway, order_id = make_gateway(), _order()
    _authorize(gateway, order_id)

    gateway.capture(order_id=order_id, amount_cents=1250)
    gateway.capture(order_id=order_id, amount_cents=1250)  # idempotent

    assert gateway.refund(order_id=order_id) is RefundOutcome.REFUNDED
    assert gateway.refund(order_id=order_id) is RefundOutcome.REFUNDED
    stats = sim.stats()
    assert (stats["captures"], stats["refunds"]) == (1, 1)


def test_refund_of_an_authorization_voids_it(sim: Sim, make_gateway: GatewayFactory) -> None:
    gateway, order_id = make_gateway(), _order()
    _authorize(gateway, order_id)

    assert gateway.refund(order_id=order_id) is RefundOutcome.VOIDED
    assert sim.stats()["voids"] == 1


def test_refund_of_an_unseen_order_declines_its_late_authorization(
    sim: Sim, make_gateway: GatewayFactory
) -> None:
    gateway, order_id = make_gateway(), _order()

    assert gateway.refund(order_id=order_id) is RefundOutcome.VOIDED
    late = _authorize(gateway, order_id)

    assert late.status is AuthorizationStatus.DECLINED
    assert late.reason == "voided"
    assert sim.stats()["authorizations"] == {"authorized": 0, "declined": 1}


def test_capture_of_an_unknown_order_is_rejected_without_tripping_the_breaker(
    sim: Sim, make_gateway: GatewayFactory
) -> None:
    gateway = make_gateway(payment_breaker_failures=1)

    with pytest.raises(GatewayRejected, match="404"):
        gateway.capture(order_id=_order(), amount_cents=1250)

    assert gateway.breaker_state == "closed"
    assert sim.stats()["requests"] == 1  # a 4xx is not retried


# --- faults ------------------------------------------------------------------------------------


def test_failing_gateway_is_retried_then_reported_unavailable(
    sim: Sim, make_gateway: GatewayFactory
) -> None:
    sim.configure(failure_rate=1.0)
    gateway = make_gateway(payment_retries=2)

    with pytest.raises(GatewayUnavailable) as raised:
        _authorize(gateway, _order())

    assert raised.value.reason == "gateway answered 503"
    stats = sim.stats()
    assert stats["requests"] == 3
    assert stats["authorizations"] == {"authorized": 0, "declined": 0}


def test_outage_opens_the_breaker_which_recovers_through_half_open(
    sim: Sim, make_gateway: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="storekeeper.payments.http")
    gateway = make_gateway(
        payment_retries=0, payment_breaker_failures=3, payment_breaker_reset_s=0.5
    )
    sim.outage(on=True)

    for _ in range(3):
        with pytest.raises(GatewayUnavailable, match="503"):
            _authorize(gateway, _order())
    assert gateway.breaker_state == "open"

    with pytest.raises(GatewayUnavailable) as fast:
        _authorize(gateway, _order())
    assert fast.value.reason == "circuit open"
    assert sim.stats()["requests"] == 3  # turned away without touching the network

    sim.outage(on=False)
    time.sleep(0.6)  # past payment_breaker_reset_s
    assert _authorize(gateway, _order()).status is AuthorizationStatus.AUTHORIZED
    assert gateway.breaker_state == "closed"
    transitions = [r.getMessage() for r in caplog.records if "circuit" in r.getMessage()]
    assert transitions == [
        "payment gateway card circuit closed -> open",
        "payment gateway card circuit open -> half-open",
        "payment gateway card circuit half-open -> closed",
    ]


def test_slow_gateway_times_out_and_the_retry_never_charges_twice(
    sim: Sim, make_gateway: GatewayFactory
) -> None:
    gateway, order_id = make_gateway(payment_retries=0), _order()
    sim.configure(latency_ms=800)

    with pytest.raises(GatewayUnavailable) as raised:
        _authorize(gateway, order_id)
    assert raised.value.reason == "timeout"

    # The simulator still carries out the request the client gave up on; asking again under
    # the same key gets that one authorization, whichever of the two got there first.
    sim.configure(latency_ms=0)
    retried = _authorize(gateway, order_id)
    sim.wait_idle()
    assert retried.status is AuthorizationStatus.AUTHORIZED
    assert _authorize(gateway, order_id) == retried
    stats = sim.stats()
    assert stats["authorizations"]["authorized"] == 1
    assert stats["max_authorizations_per_order"] == 1


def test_flaky_gateway_with_retries_charges_each_order_once(
    sim: Sim, make_gateway: GatewayFactory
) -> None:
    sim.configure(failure_rate=0.5, jitter_ms=20)
    gateway = make_gateway(payment_retries=4, payment_breaker_failures=100)
    orders = [_order() for _ in range(24)]

    def pay(order_id: str) -> bool:
        try:
            return _authorize(gateway, order_id).status is AuthorizationStatus.AUTHORIZED
        except GatewayUnavailable:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        paid = list(pool.map(pay, orders))

    # Each call has five tries at even odds: 97% succeed, so 18 of 24 is a very safe floor.
    assert sum(paid) >= 18
    stats = sim.stats()
    assert stats["injected_failures"] > 0
    assert stats["authorizations"]["authorized"] == sum(paid)
    assert stats["max_authorizations_per_order"] == 1


def test_one_shared_gateway_does_not_serialize_calls_across_threads(
    sim: Sim, make_gateway: GatewayFactory
) -> None:
    sim.configure(latency_ms=200)
    gateway = make_gateway(payment_timeout_s=5.0)

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda order_id: _authorize(gateway, order_id), [_order()] * 4))

    assert all(a.status is AuthorizationStatus.AUTHORIZED for a in answers)
    assert sim.stats()["max_in_flight"] >= 2


def test_unreachable_gateway_is_unavailable(make_gateway: GatewayFactory) -> None:
    gateway = make_gateway(payment_url=f"http://127.0.0.1:{free_port()}", payment_retries=1)

    with pytest.raises(GatewayUnavailable, match="connection error"):
        _authorize(gateway, _order())


# --- the simulator's contract ------------------------------------------------------------------

_BODY = {"order_id": "o-1", "amount_cents": 100, "currency": "EUR", "token": "tok_ok"}


def test_sim_requires_an_idempotency_key(sim: Sim) -> None:
    response = httpx.post(f"{sim.url}/v1/authorizations", json=_BODY)

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]


@pytest.mark.parametrize(
    "body",
    [
        {**_BODY, "amount_cents": 0},
        {**_BODY, "amount_cents": "100"},
        {**_BODY, "currency": "euro"},
        {"order_id": "o-1"},
        {**_BODY, "surprise": True},
    ],
)
def test_sim_refuses_a_malformed_body(sim: Sim, body: dict[str, object]) -> None:
    response = httpx.post(
        f"{sim.url}/v1/authorizations", json=body, headers={"Idempotency-Key": "k"}
    )

    assert response.status_code == 422
    assert sim.stats()["authorizations"] == {"authorized": 0, "declined": 0}


def test_sim_refuses_a_key_reused_for_another_request(sim: Sim) -> None:
    headers = {"Idempotency-Key": "k"}
    first = httpx.post(f"{sim.url}/v1/authorizations", json=_BODY, headers=headers)
    other = httpx.post(
        f"{sim.url}/v1/authorizations", json={**_BODY, "amount_cents": 999}, headers=headers
    )

    assert first.status_code == 201
    assert other.status_code == 409
    assert sim.stats()["authorizations"]["authorized"] == 1


def test_sim_admin_endpoints_stay_up_during_an_outage(sim: Sim) -> None:
    sim.outage(on=True)

    assert httpx.post(f"{sim.url}/v1/refunds", json={"order_id": "o"}).status_code == 503
    assert httpx.get(f"{sim.url}/healthz").status_code == 200
    assert httpx.get(f"{sim.url}/_sim/config").json()["outage"] is True
    assert httpx.patch(f"{sim.url}/_sim/config", json={"failure_rate": 2}).status_code == 422


# --- the command line and the wiring -----------------------------------------------------------


def test_cli_lists_payment_sim() -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    listing = subprocess.run(
        [storekeeper_script(), "--help"], capture_output=True, text=True, env=env, check=True
    )
    usage = subprocess.run(
        [storekeeper_script(), "payment-sim", "--help"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )

    assert "payment-sim" in listing.stdout
    for flag in ("--latency-ms", "--failure-rate", "--decline-rate", "--seed", "--outage"):
        assert flag in usage.stdout


def test_cli_flags_configure_the_simulator(tmp_path: Path) -> None:
    flags = ["--outage", "--decline-rate", "0.25", "--latency-ms", "5", "--seed", "3"]
    sim = start_sim(tmp_path / "sim.log", *flags)
    try:
        config = httpx.get(f"{sim.url}/_sim/config").json()
        refused = httpx.post(f"{sim.url}/v1/refunds", json={"order_id": "o"})
    finally:
        stop_sim(sim)

    assert config == {
        "latency_ms": 5,
        "jitter_ms": 0,
        "failure_rate": 0.0,
        "decline_rate": 0.25,
        "outage": True,
        "seed": 3,
    }
    assert refused.status_code == 503


def test_card_gateway_is_configured_only_with_a_payment_url() -> None:
    manual_only = Settings(_env_file=None)  # type: ignore[call-arg]
    assert set(payment_gateways(manual_only)) == {"manual"}

    gateways = payment_gateways(
        Settings(payment_url="http://127.0.0.1:9", _env_file=None)  # type: ignore[call-arg]
    )
    card = gateways["card"]
    assert isinstance(card, HttpGateway)
    assert (card.remote, gateways["manual"].remote) == (True, False)
    card.close()
