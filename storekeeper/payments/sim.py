"""A payment gateway simulator speaking the JSON contract of ``HttpGateway``, with fault injection.

``storekeeper payment-sim`` serves it, for development and for the fault tests in place of a
real card processor. Its state lives in memory and is gone when it stops.

The contract. Every ``/v1`` call needs an ``Idempotency-Key`` header; errors are
``{"error": message}``::

    POST /v1/authorizations  {order_id, amount_cents (int > 0), currency ("EUR"), token}
      201 {id, order_id, status: "authorized" | "declined", reason, amount_cents, currency}
          declined: token "tok_decline" -> reason "card_declined"; the decline rate ->
          "simulated_decline"; an order voided before (see refunds) -> "voided".
    POST /v1/captures        {order_id, amount_cents}
      200 {id, order_id, status: "captured", amount_cents}; capturing again answers the same.
      404 no authorization for the order; 409 it was declined, voided or refunded, or the
          amount is not the authorized one.
    POST /v1/refunds         {order_id}
      200 {order_id, status: "refunded" | "voided" | "nothing"}: captured -> refunded,
          authorized -> voided, declined -> nothing; an order never seen -> voided, and the
          void is recorded so that a late authorization of that order is declined.

    Idempotency: a key seen before with the same path and body answers its first 2xx answer
    again and changes nothing; with another path or body it answers 409. Error answers are not
    stored. No key: 400. A body that is not JSON of the right shape: 422.

Faults apply to ``/v1`` only: with ``outage`` on every call answers 503 at once. Otherwise the
call waits ``latency_ms`` plus up to ``jitter_ms``, then with probability ``failure_rate``
answers 503 ``{"error": "injected failure"}`` without doing anything. The wait comes before the
work, so a client that gave up waiting may still have its request carried out: the case that
idempotency keys are for.

Admin, without auth (it is a simulator): ``GET /healthz``; ``GET /_sim/stats``; ``GET`` and
``PATCH /_sim/config`` (any of latency_ms, jitter_ms, failure_rate, decline_rate, outage);
``POST /_sim/outage {"on": bool}``; ``POST /_sim/reset`` forgets every payment and restores the
start-up config.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import uvicorn
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

DECLINE_TOKEN = "tok_decline"


class SimConfig(BaseModel):
    """How the simulator behaves; all but ``seed`` can be changed while it runs."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_ms: int = Field(default=0, ge=0, le=60_000)
    jitter_ms: int = Field(default=0, ge=0, le=60_000)
    failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    decline_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    outage: bool = False
    seed: int | None = None


class _ConfigPatch(BaseModel):
    # Ranges are checked by SimConfig once merged, so they are written down once.
    model_config = ConfigDict(extra="forbid")

    latency_ms: int | None = None
    jitter_ms: int | None = None
    failure_rate: float | None = None
    decline_rate: float | None = None
    outage: bool | None = None


class _Outage(BaseModel):
    on: bool


_OrderId = Annotated[str, Field(min_length=1, max_length=200)]
_Cents = Annotated[StrictInt, Field(gt=0)]


class _AuthorizeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: _OrderId
    amount_cents: _Cents
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    token: str = Field(min_length=1)


class _CaptureBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: _OrderId
    amount_cents: _Cents


class _RefundBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order_id: _OrderId


_Answer = tuple[int, dict[str, Any]]
_Body = TypeVar("_Body", bound=BaseModel)


@dataclass
class _Authorization:
    id: str
    order_id: str
    status: str  # authorized, declined, captured, voided, refunded
    reason: str
    amount_cents: int
    currency: str


@dataclass(frozen=True)
class _Faults:
    outage: bool
    delay_s: float
    fail: bool


class _Ledger:
    """Everything the simulator remembers; one lock makes each request's effect atomic."""

    def __init__(self, config: SimConfig) -> None:
        self._lock = threading.Lock()
        self._initial = config
        self._in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Forget every payment and go back to the start-up config."""
        with self._lock:
            self.config = self._initial
            self._rng = random.Random(self._initial.seed)  # noqa: S311 - a simulator, not crypto
            self._by_order: dict[str, list[_Authorization]] = {}
            self._voided_unseen: set[str] = set()
            self._answers: dict[str, tuple[str, _Answer]] = {}
            self._counts: Counter[str] = Counter()
            self._max_in_flight = self._in_flight

    def configure(self, **changes: Any) -> SimConfig:
        """Apply ``changes``; pydantic's ValidationError if the result is out of range."""
        with self._lock:
            self.config = SimConfig.model_validate({**self.config.model_dump(), **changes})
            return self.config

    def begin(self) -> _Faults:
        """Count a ``/v1`` request and draw the faults it meets."""
        with self._lock:
            self._counts["requests"] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            config = self.config
            delay_ms = config.latency_ms + self._rng.uniform(0, config.jitter_ms)
            faults = _Faults(
                outage=config.outage,
                delay_s=delay_ms / 1000,
                fail=self._rng.random() < config.failure_rate,
            )
            if faults.outage or faults.fail:
                self._counts["injected_failures"] += 1
            return faults

    def end(self) -> None:
        """A ``/v1`` request has been answered."""
        with self._lock:
            self._in_flight -= 1

    def once(self, key: str, request: str, operation: Callable[[], _Answer]) -> _Answer:
        """Carry out ``operation`` once per key: replay its first success, refuse a reused key."""
        with self._lock:
            seen = self._answers.get(key)
            if seen is not None:
                first_request, answer = seen
                if first_request != request:
                    return _error(409, "Idempotency-Key was used for another request")
                return answer
            answer = operation()
            if answer[0] < 300:
                self._answers[key] = (request, answer)
            return answer

    # The three operations run under the lock, called through once().

    def authorize(self, body: _AuthorizeBody) -> _Answer:
        reason = ""
        if body.order_id in self._voided_unseen:
            reason = "voided"
        elif body.token == DECLINE_TOKEN:
            reason = "card_declined"
        elif self._rng.random() < self.config.decline_rate:
            reason = "simulated_decline"
        status = "declined" if reason else "authorized"
        auths = self._by_order.setdefault(body.order_id, [])
        auth = _Authorization(
            id=f"auth_{self._rng.getrandbits(64):016x}",
            order_id=body.order_id,
            status=status,
            reason=reason,
            amount_cents=body.amount_cents,
            currency=body.currency,
        )
        auths.append(auth)
        self._counts[status] += 1
        return 201, {
            "id": auth.id,
            "order_id": auth.order_id,
            "status": status,
            "reason": reason,
            "amount_cents": auth.amount_cents,
            "currency": auth.currency,
        }

    def capture(self, body: _CaptureBody) -> _Answer:
        auth = self._live(body.order_id)
        if auth is None:
            return _error(404, f"no authorization for order {body.order_id}")
        if auth.status not in ("authorized", "captured"):
            return _error(409, f"authorization is {auth.status}")
        if auth.amount_cents != body.amount_cents:
            return _error(409, f"authorized amount is {auth.amount_cents}")
        if auth.status == "authorized":
            auth.status = "captured"
            self._counts["captures"] += 1
        answer = {"id": auth.id, "order_id": auth.order_id, "status": "captured"}
        return 200, {**answer, "amount_cents": auth.amount_cents}

    def refund(self, body: _RefundBody) -> _Answer:
        auth = self._live(body.order_id)
        if auth is None:
            if body.order_id not in self._voided_unseen:
                self._voided_unseen.add(body.order_id)
                self._counts["voids"] += 1
            outcome = "voided"
        elif auth.status == "captured":
            auth.status = outcome = "refunded"
            self._counts["refunds"] += 1
        elif auth.status == "authorized":
            auth.status = outcome = "voided"
            self._counts["voids"] += 1
        elif auth.status in ("refunded", "voided"):
            outcome = auth.status
        else:
            outcome = "nothing"
        return 200, {"order_id": body.order_id, "status": outcome}

    def _live(self, order_id: str) -> _Authorization | None:
        """The order's authorization that money hangs on: the last one not declined."""
        auths = self._by_order.get(order_id, [])
        for auth in reversed(auths):
            if auth.status != "declined":
                return auth
        return auths[-1] if auths else None

    def stats(self) -> dict[str, Any]:
        """Counters for the fault tests; ``max_authorizations_per_order`` > 1 is a double charge."""
        with self._lock:
            counts = self._counts
            return {
                "requests": counts["requests"],
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "injected_failures": counts["injected_failures"],
                "authorizations": {
                    "authorized": counts["authorized"],
                    "declined": counts["declined"],
                },
                "captures": counts["captures"],
                "refunds": counts["refunds"],
                "voids": counts["voids"],
                "max_authorizations_per_order": max(map(len, self._by_order.values()), default=0),
                # Orders whose money the gateway holds (authorized or captured, not given back).
                "held_orders": sorted(
                    order_id
                    for order_id in self._by_order
                    if (live := self._live(order_id)) and live.status in ("authorized", "captured")
                ),
            }


def _error(status: int, message: str) -> _Answer:
    return status, {"error": message}


def _json(answer: _Answer) -> JSONResponse:
    return JSONResponse(answer[1], status_code=answer[0])


def _invalid(exc: ValidationError) -> JSONResponse:
    details = exc.errors(include_url=False, include_context=False, include_input=False)
    return JSONResponse({"error": "invalid body", "details": details}, status_code=422)


def _v1_endpoint(
    ledger: _Ledger, model: type[_Body], operation: Callable[[_Body], _Answer]
) -> Callable[[Request], Awaitable[JSONResponse]]:
    """A ``/v1`` endpoint: faults first, then the key, the body, and the operation, once."""

    async def endpoint(request: Request) -> JSONResponse:
        faults = ledger.begin()
        try:
            if faults.outage:
                return _json(_error(503, "outage"))
            # Read before waiting: once the client hangs up the body can no longer be read, and
            # a request whose client gave up must still be carried out.
            raw = await request.body()
            await asyncio.sleep(faults.delay_s)
            if faults.fail:
                return _json(_error(503, "injected failure"))
            key = request.headers.get("Idempotency-Key", "")
            if not key:
                return _json(_error(400, "the Idempotency-Key header is required"))
            try:
                body = model.model_validate_json(raw)
            except ValidationError as exc:
                return _invalid(exc)
            fingerprint = f"{request.url.path} {body.model_dump_json()}"
            return _json(ledger.once(key, fingerprint, lambda: operation(body)))
        except ClientDisconnect:
            return _json(_error(400, "client disconnected"))
        finally:
            ledger.end()

    return endpoint


def create_sim_app(config: SimConfig) -> Starlette:
    """The simulator as an ASGI app, starting from ``config``."""
    ledger = _Ledger(config)

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def stats(request: Request) -> JSONResponse:
        return JSONResponse(ledger.stats())

    async def get_config(request: Request) -> JSONResponse:
        return JSONResponse(ledger.config.model_dump())

    async def patch_config(request: Request) -> JSONResponse:
        try:
            patch = _ConfigPatch.model_validate_json(await request.body())
            config = ledger.configure(**patch.model_dump(exclude_unset=True))
        except ValidationError as exc:
            return _invalid(exc)
        return JSONResponse(config.model_dump())

    async def outage(request: Request) -> JSONResponse:
        try:
            switch = _Outage.model_validate_json(await request.body())
        except ValidationError as exc:
            return _invalid(exc)
        return JSONResponse(ledger.configure(outage=switch.on).model_dump())

    async def reset(request: Request) -> JSONResponse:
        ledger.reset()
        return JSONResponse(ledger.config.model_dump())

    return Starlette(
        routes=[
            Route(
                "/v1/authorizations",
                _v1_endpoint(ledger, _AuthorizeBody, ledger.authorize),
                methods=["POST"],
            ),
            Route(
                "/v1/captures", _v1_endpoint(ledger, _CaptureBody, ledger.capture), methods=["POST"]
            ),
            Route(
                "/v1/refunds", _v1_endpoint(ledger, _RefundBody, ledger.refund), methods=["POST"]
            ),
            Route("/healthz", healthz),
            Route("/_sim/stats", stats),
            Route("/_sim/config", get_config, methods=["GET"]),
            Route("/_sim/config", patch_config, methods=["PATCH"]),
            Route("/_sim/outage", outage, methods=["POST"]),
            Route("/_sim/reset", reset, methods=["POST"]),
        ]
    )


def serve_sim(host: str, port: int, config: SimConfig) -> None:
    """Serve the simulator until interrupted."""
    # A short graceful shutdown: slow injected latency must not hold up a stop.
    uvicorn.run(
        create_sim_app(config),
        host=host,
        port=port,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
