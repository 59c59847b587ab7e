"""The push use case: a replica's mutations, each applied under the merge rules.

Each pushed mutation is its own unit of work, so one that fails or is refused does not hold up
the others. Its verdict is stored under its id in the same transaction as its effect
(``sync_mutation``), which is what makes a replay a no-op: a retried push finds the verdict and
answers ``duplicate``. A refused mutation changed nothing; its verdict is stored on its own.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import Table, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storekeeper.accounts import policy
from storekeeper.accounts.domain import STAFF, Principal
from storekeeper.catalog import service as catalog_service
from storekeeper.db import Database, utcnow
from storekeeper.errors import DomainError
from storekeeper.events import outbox
from storekeeper.inventory import ledger as inventory_ledger
from storekeeper.observability import metrics
from storekeeper.observability.counting import count_on_commit
from storekeeper.sync import domain
from storekeeper.sync.domain import Status
from storekeeper.sync.events import EditLost, ExceptionRaised
from storekeeper.sync.hlc import SERVER_NODE, Hlc
from storekeeper.sync.models import PushedMutation, SyncException
from storekeeper.sync.schemas import (
    DATA_SCHEMAS,
    AdjustData,
    CountData,
    MutationIn,
    ProductUpdateData,
    ReceiveData,
    SellData,
)

MAX_CLOCK_AHEAD_MS = 24 * 3600 * 1000
"""How far ahead of the server's clock an edit's stamp may be: a replica whose clock is set
years ahead would otherwise win every edit of a field until the server's clock catches up."""

_mutations = cast(Table, PushedMutation.__table__)
_LOOKUP = select(
    _mutations.c.replica_id, _mutations.c.digest, _mutations.c.status, _mutations.c.detail
).where(_mutations.c.id == bindparam("id"))


@dataclass(frozen=True, slots=True)
class Verdict:
    """What became of one mutation: a status and a detail with ``code`` and ``message``."""

    status: Status
    detail: dict[str, Any]

    def answer(self, mutation_id: uuid.UUID) -> dict[str, Any]:
        """The result entry of the push response."""
        return {"id": mutation_id, "status": self.status.value, "detail": self.detail}


class _Refused(Exception):
    """A mutation is rejected: whatever it did in its transaction is rolled back."""

    def __init__(self, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.verdict = Verdict(Status.REJECTED, {"code": code, "message": message, **extra})


# --- push ------------------------------------------------------------------------------------


def push(
    db: Database, *, principal: Principal, replica_id: str, mutations: Sequence[MutationIn]
) -> list[dict[str, Any]]:
    """Apply a replica's mutations in order, each in its own transaction; one result each."""
    results = [
        _push_one(db, principal, replica_id, mutation).answer(mutation.id) for mutation in mutations
    ]
    for result in results:  # each mutation committed (or not) on its own already
        metrics.SYNC_PUSHED.labels(result["status"]).inc()
    return results


def _push_one(db: Database, principal: Principal, replica_id: str, mutation: MutationIn) -> Verdict:
    digest = _digest(mutation)
    try:
        with db.transaction() as session:
            prior = _lookup(session, mutation.id)
            if prior is not None:
                return _replay(prior, replica_id, digest)
            verdict = _apply(session, principal, replica_id, mutation)
            _remember(session, principal, replica_id, mutation, digest, verdict)
            return verdict
    except _Refused as refused:
        verdict = refused.verdict
    except IntegrityError:
        return _replay_after_race(db, mutation.id, replica_id, digest)
    try:
        with db.transaction() as session:
            prior = _lookup(session, mutation.id)
            if prior is not None:
                return _replay(prior, replica_id, digest)
            _remember(session, principal, replica_id, mutation, digest, verdict)
    except IntegrityError:
        return _replay_after_race(db, mutation.id, replica_id, digest)
    return verdict


def _digest(mutation: MutationIn) -> str:
    canonical = json.dumps(
        [mutation.type, mutation.data, mutation.hlc], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _lookup(session: Session, mutation_id: uuid.UUID) -> Any:
    return session.connection().execute(_LOOKUP, {"id": mutation_id}).one_or_none()


def _replay(prior: Any, replica_id: str, digest: str) -> Verdict:
    if prior.replica_id != replica_id or prior.digest != digest:
        return Verdict(
            Status.REJECTED,
            {
                "code": "mutation_id_reused",
                "message": "this mutation id was pushed before with another replica or content; "
                "give every mutation a new UUID",
            },
        )
    return Verdict(
        Status.DUPLICATE,
        {
            "code": "duplicate",
            "message": "pushed before: nothing was changed again; original holds the first verdict",
            "original": {"status": prior.status, "detail": prior.detail},
        },
    )


def _replay_after_race(
    db: Database, mutation_id: uuid.UUID, replica_id: str, digest: str
) -> Verdict:
    # PostgreSQL: the same mutation pushed twice at once (a retry racing its original). The
    # first to commit stored its verdict; this attempt collided on the primary key and rolled
    # back whole, effect included.
    with db.reading() as session:
        prior = _lookup(session, mutation_id)
    if prior is None:
        raise RuntimeError(f"mutation {mutation_id} collided but has no stored verdict")
    return _replay(prior, replica_id, digest)


def _remember(
    session: Session,
    principal: Principal,
    replica_id: str,
    mutation: MutationIn,
    digest: str,
    verdict: Verdict,
) -> None:
    session.connection().execute(
        insert(_mutations).values(
            id=mutation.id,
            replica_id=replica_id,
            actor_id=principal.user_id,
            type=mutation.type,
            hlc=mutation.hlc,
            digest=digest,
            data=mutation.data if domain.storable(mutation.data) else None,
            status=verdict.status.value,
            detail=verdict.detail,
            received_at=utcnow(),
        )
    )


def _apply(
    session: Session, principal: Principal, replica_id: str, mutation: MutationIn
) -> Verdict:
    schema = DATA_SCHEMAS.get(mutation.type)
    if schema is None:
        raise _Refused(
            "unknown_type",
            f"unknown mutation type {_printable(mutation.type)}; known: {sorted(DATA_SCHEMAS)}",
        )
    try:
        stamp = Hlc.parse(mutation.hlc)
    except ValueError as exc:
        raise _Refused("invalid_hlc", _printable(str(exc))) from exc
    if stamp.node == SERVER_NODE:
        raise _Refused("invalid_hlc", f"node name {SERVER_NODE!r} is the server's own")
    try:
        data = schema.model_validate(mutation.data)
    except ValidationError as exc:
        problems = [
            {"loc": [_printable(str(p)) for p in e["loc"]], "msg": _printable(e["msg"])}
            for e in exc.errors()
        ]
        raise _Refused(
            "invalid_data", f"data of {mutation.type} is not valid", problems=problems
        ) from exc
    try:
        policy.ensure_scope(principal, f"warehouse:{data.warehouse}")
        if isinstance(data, ProductUpdateData):
            return _update_product(session, principal, mutation, data, stamp)
        assert isinstance(data, ReceiveData | AdjustData | CountData | SellData)
        return _change_stock(session, principal, replica_id, mutation, data)
    except DomainError as exc:
        raise _Refused(exc.code, exc.detail) from exc


def _printable(text: str) -> str:
    """``text`` safe to store as JSON on both databases (no NUL, no lone surrogates)."""
    return text.replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode()[:500]


# --- stock -----------------------------------------------------------------------------------


def _change_stock(
    session: Session,
    principal: Principal,
    replica_id: str,
    mutation: MutationIn,
    data: ReceiveData | AdjustData | CountData | SellData,
) -> Verdict:
    if isinstance(data, ReceiveData):
        plan = domain.receive(data.qty)
    elif isinstance(data, AdjustData):
        plan = domain.adjust(data.delta, data.reason)
    elif isinstance(data, CountData):
        plan = domain.count(data.counted, data.seen_on_hand)
    else:
        plan = domain.sell(data.qty)
    outcome = inventory_ledger.record_offline_delta(
        session,
        sku=data.sku,
        warehouse=data.warehouse,
        delta=plan.delta,
        reason=plan.reason,
        replica_id=replica_id,
        mutation_id=mutation.id,
        ref=f"sync:{mutation.id}",
        actor_id=str(principal.user_id),
    )
    level = {
        "on_hand": outcome.level.on_hand,
        "reserved": outcome.level.reserved,
        "available": outcome.level.available,
    }
    if outcome.shortfall == 0:
        return Verdict(
            Status.APPLIED,
            {"code": "applied", "message": f"{plan.reason} of {plan.delta:+d} recorded", **level},
        )
    count_on_commit(session, metrics.SYNC_EXCEPTIONS)
    exception = SyncException(
        kind=mutation.type,
        status="open",
        sku=data.sku,
        warehouse_code=data.warehouse,
        replica_id=replica_id,
        mutation_id=mutation.id,
        actor_id=principal.user_id,
        requested=-plan.delta,
        applied=-outcome.applied,
        shortfall=outcome.shortfall,
        created_at=utcnow(),
    )
    session.add(exception)
    session.flush()
    outbox.record(
        session,
        ExceptionRaised(
            exception_id=exception.id,
            kind=mutation.type,
            sku=data.sku,
            warehouse=data.warehouse,
            shortfall=outcome.shortfall,
            mutation_id=str(mutation.id),
        ),
    )
    return Verdict(
        Status.CONFLICT,
        {
            "code": "short_stock",
            "message": f"only {-outcome.applied} of {-plan.delta} units were available; the "
            f"shortfall of {outcome.shortfall} is exception {exception.id} for a manager",
            "exception_id": exception.id,
            "requested": -plan.delta,
            "applied": -outcome.applied,
            "shortfall": outcome.shortfall,
            **level,
        },
    )


# --- products --------------------------------------------------------------------------------


def _update_product(
    session: Session,
    principal: Principal,
    mutation: MutationIn,
    data: ProductUpdateData,
    stamp: Hlc,
) -> Verdict:
    if not principal.has_role(STAFF):
        raise _Refused("forbidden", "only managers and admins edit products, online or offline")
    if stamp.wall_ms > _now_ms() + MAX_CLOCK_AHEAD_MS:
        raise _Refused(
            "hlc_in_future",
            "the stamp is more than a day ahead of the server's clock: set the device's clock",
        )
    product = catalog_service.get_for_update(session, sku=data.sku)
    edits = data.fields.model_dump(exclude_unset=True)
    if product.archived:
        _announce_lost(session, data.sku, mutation.id, list(edits))
        return Verdict(
            Status.CONFLICT,
            {
                "code": "product_archived",
                "message": f"{data.sku} was archived: the edit is not applied",
                "lost_fields": sorted(edits),
                "applied_fields": [],
            },
        )
    merge = domain.merge_fields(product.field_hlcs or {}, edits, stamp)
    won, lost = dict(merge.won), sorted(merge.lost)
    low = won.get("min_temp_c", product.min_temp_c)
    high = won.get("max_temp_c", product.max_temp_c)
    if not domain.range_ordered(low, high):
        # The edit's bound would cross the other bound, set by a later write: the later write
        # keeps the range.
        for name in ("min_temp_c", "max_temp_c"):
            if name in won:
                del won[name]
                lost.append(name)
    if won:
        product = catalog_service.update(session, sku=data.sku, changes=won, stamp=str(stamp))
    if lost:
        _announce_lost(session, data.sku, mutation.id, lost)
        return Verdict(
            Status.CONFLICT,
            {
                "code": "stale_edit",
                "message": "a later edit of "
                + ", ".join(sorted(lost))
                + " won; the next pull brings it",
                "lost_fields": sorted(lost),
                "applied_fields": sorted(won),
                "version": product.version,
                "hlc": product.hlc,
            },
        )
    return Verdict(
        Status.APPLIED,
        {
            "code": "applied",
            "message": f"{data.sku} updated",
            "applied_fields": sorted(won),
            "version": product.version,
            "hlc": product.hlc,
        },
    )


def _announce_lost(session: Session, sku: str, mutation_id: uuid.UUID, fields: list[str]) -> None:
    # Puts the product in every replica's feed, so the one whose edit lost gets the winner even
    # if it had already shown its own value.
    outbox.record(
        session, EditLost(sku=sku, mutation_id=str(mutation_id), fields=tuple(sorted(fields)))
    )


def _now_ms() -> int:
    return int(utcnow().timestamp() * 1000)
