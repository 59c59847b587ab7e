"""How ordering reaches inventory: in the order's own transaction, or over HTTP.

In one process (embedded mode, and ``serve`` behind a load balancer) an order's reservation,
release and fulfilment commit in the order's transaction: nothing to compensate.

With ``serve --only`` inventory runs in another process, named by ``STOREKEEPER_INVENTORY_URL``,
and the order flow becomes a small saga over its reservation API (``/stock/reservations``):

- placing reserves over HTTP, idempotent by the order's reference, while the order's
  transaction is open; if that transaction rolls back, the reservation is released at once;
- cancelling and shipping queue a release or fulfilment job in the order's transaction, so it
  happens if and only if the order change commits, retried until inventory answers.

A process killed between a remote reservation and its order's commit leaves a reservation with
no order (``order:<id>`` with an unknown id): ``sweep_orphan_reservations`` releases it once it
is older than ``STOREKEEPER_RESERVATION_GRACE_S`` (``orphans``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import httpx
from sqlalchemy.orm import Session

from storekeeper.accounts.keys import Keyring
from storekeeper.accounts.security import issue_service_token
from storekeeper.db import Database, on_rollback
from storekeeper.errors import Conflict, DomainError, InvalidRequest, NotFound, Unavailable
from storekeeper.inventory import reservations as inventory_reservations
from storekeeper.inventory.domain import Allocation, Point
from storekeeper.tasks import queue
from storekeeper.tasks.queue import PermanentJobError

log = logging.getLogger(__name__)

RELEASE_STOCK = "ordering.release_stock"
FULFIL_STOCK = "ordering.fulfil_stock"


class InventoryPort(Protocol):
    """What ordering needs from inventory."""

    def reserve(
        self, session: Session, *, ref: str, lines: Mapping[str, int], ship_to: Point | None
    ) -> list[Allocation]:
        """Set stock aside for ``ref`` (all lines or raise), bound to ``session``'s fate."""

    def release(self, session: Session, *, ref: str) -> None:
        """Give back what ``ref`` holds, once ``session`` commits."""

    def fulfil(self, session: Session, *, ref: str, actor_id: str | None) -> None:
        """Turn what ``ref`` holds into sales, once ``session`` commits."""

    def release_now(self, ref: str) -> None:
        """Give back what ``ref`` holds, now (a job)."""

    def fulfil_now(self, ref: str, actor_id: str | None) -> None:
        """Turn what ``ref`` holds into sales, now (a job)."""

    def stale_refs(self, *, older_than_s: float) -> list[str]:
        """Orders' references holding stock for longer than ``older_than_s``, oldest first."""

    def close(self) -> None:
        """Release connections."""


class LocalInventory:
    """Inventory in this process: every call joins the caller's transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def reserve(
        self, session: Session, *, ref: str, lines: Mapping[str, int], ship_to: Point | None
    ) -> list[Allocation]:
        return inventory_reservations.reserve(session, ref=ref, lines=lines, ship_to=ship_to)

    def release(self, session: Session, *, ref: str) -> None:
        inventory_reservations.release(session, ref=ref)

    def fulfil(self, session: Session, *, ref: str, actor_id: str | None) -> None:
        inventory_reservations.fulfil(session, ref=ref, actor_id=actor_id)

    def release_now(self, ref: str) -> None:
        with self._db.transaction() as session:
            inventory_reservations.release(session, ref=ref)

    def fulfil_now(self, ref: str, actor_id: str | None) -> None:
        with self._db.transaction() as session:
            inventory_reservations.fulfil(session, ref=ref, actor_id=actor_id)

    def stale_refs(self, *, older_than_s: float) -> list[str]:
        # A reservation commits in its order's transaction here: none can be orphaned.
        return []

    def close(self) -> None:
        pass


class RemoteInventory:
    """Inventory in another process, reached over its HTTP reservation API."""

    def __init__(self, base_url: str, *, signing_key: Keyring, timeout_s: float = 5.0) -> None:
        self._signing_key = signing_key
        self._http = httpx.Client(base_url=base_url.rstrip("/") + "/api/v1", timeout=timeout_s)

    def reserve(
        self, session: Session, *, ref: str, lines: Mapping[str, int], ship_to: Point | None
    ) -> list[Allocation]:
        body: dict[str, Any] = {
            "ref": ref,
            "lines": [{"sku": sku, "qty": qty} for sku, qty in sorted(lines.items())],
        }
        if ship_to is not None:
            body["ship_to"] = {"lat": ship_to.lat, "lon": ship_to.lon}
        answer = self._call("POST", "/stock/reservations", json=body)
        # Registered only once inventory holds the stock: a failed call reserved nothing.
        on_rollback(session, lambda: self._undo_reservation(ref))
        return [Allocation(a["sku"], a["warehouse"], a["qty"]) for a in answer["allocations"]]

    def release(self, session: Session, *, ref: str) -> None:
        queue.enqueue(session, RELEASE_STOCK, {"ref": ref}, key=f"release:{ref}", max_attempts=30)

    def fulfil(self, session: Session, *, ref: str, actor_id: str | None) -> None:
        args = {"ref": ref, "actor_id": actor_id}
        queue.enqueue(session, FULFIL_STOCK, args, key=f"fulfil:{ref}", max_attempts=30)

    def release_now(self, ref: str) -> None:
        self._settle(ref, "release", {})

    def fulfil_now(self, ref: str, actor_id: str | None) -> None:
        self._settle(ref, "fulfil", {"actor_id": actor_id})

    def stale_refs(self, *, older_than_s: float) -> list[str]:
        answer = self._call(
            "GET", "/stock/reservations/stale", params={"older_than_s": older_than_s}
        )
        return [str(ref) for ref in answer["refs"]]

    def close(self) -> None:
        self._http.close()

    def _undo_reservation(self, ref: str) -> None:
        try:
            self.release_now(ref)
        except Exception:  # the order is gone either way; say so loudly
            log.exception("could not release %s after its order rolled back", ref)

    def _settle(self, ref: str, action: str, body: dict[str, Any]) -> None:
        # NotFound: nothing was reserved (the order's reservation failed), nothing to settle.
        with contextlib.suppress(NotFound):
            self._call("POST", f"/stock/reservations/{ref}/{action}", json=body)

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {issue_service_token(key=self._signing_key)}"}
        try:
            response = self._http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise Unavailable(
                f"inventory does not answer: {exc}", code="inventory_unavailable"
            ) from exc
        if response.status_code in (200, 201):
            answer: dict[str, Any] = response.json()
            return answer
        try:
            error = response.json()
            detail, code = str(error["detail"]), str(error["code"])
        except (ValueError, KeyError, TypeError):
            detail, code = response.text[:200], "inventory_error"
        # Inventory's own answer, passed on with its code (insufficient_stock, unknown_sku...).
        family = _FAMILIES.get(response.status_code)
        if family is not None:
            raise family(detail, code=code)
        raise Unavailable(
            f"inventory answered {response.status_code}: {detail}", code="inventory_unavailable"
        )


_FAMILIES: dict[int, type[DomainError]] = {404: NotFound, 409: Conflict, 422: InvalidRequest}


def release_stock(args: dict[str, Any], *, inventory: InventoryPort) -> None:
    """Give back what a cancelled order's reference holds (a job queued with the cancel)."""
    _settle_job(lambda: inventory.release_now(str(args["ref"])))


def fulfil_stock(args: dict[str, Any], *, inventory: InventoryPort) -> None:
    """Turn what a shipped order's reference holds into sales (a job queued with the ship)."""
    actor = args.get("actor_id")
    _settle_job(lambda: inventory.fulfil_now(str(args["ref"]), actor and str(actor)))


def _settle_job(call: Callable[[], None]) -> None:
    try:
        call()
    except (Conflict, InvalidRequest) as exc:  # retrying cannot change inventory's answer
        raise PermanentJobError(str(exc)) from exc
