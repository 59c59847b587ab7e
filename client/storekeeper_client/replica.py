"""``Replica``: a device's offline-first copy of one warehouse, synced with the server.

What the user sees is the server copy (changed only by pulls) with the queue of local mutations
applied on top, so reads and writes work with no network. ``sync()`` pushes the queue, then
pulls what changed. The wire contract is docs/sync.md.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from storekeeper_client import hlc, snapshot
from storekeeper_client.credentials import Credentials
from storekeeper_client.records import (
    Mutation,
    Offline,
    Stock,
    SyncError,
    SyncSummary,
    Verdict,
)
from storekeeper_client.store import Row, Store

PUSH_BATCH = 100
"""Mutations per push request (the server takes up to 1000). The server applies each in its own
transaction; bench W4 on PostgreSQL saw 500-mutation requests outlive the 30 s timeout under
contention, so requests are kept short and a retry repeats little."""
EDITABLE_FIELDS = frozenset({"name", "price_cents", "attributes", "min_temp_c", "max_temp_c"})
RESYNC_CODES = frozenset({"invalid_cursor", "resync_required"})
_STOCK_TYPES = ("stock.receive", "stock.adjust", "stock.count", "stock.sell")


class Replica:
    """An offline-first replica of ``scope`` (``warehouse:CODE``) stored in the file ``path``.

    Thread-safe: local reads and writes may run while another thread syncs. Use one ``Replica``
    per file at a time. Close it (or use it as a context manager) when done; it may be closed,
    killed or crash at any point and reopened from the file without losing anything.
    """

    def __init__(
        self,
        path: str | Path,
        server_url: str | None = None,
        token: str | None = None,
        *,
        refresh_token: str | None = None,
        scope: str | None = None,
        replica_id: str | None = None,
        timeout: float = 30.0,
        page_size: int = 1000,
        use_snapshot: bool = True,
    ) -> None:
        self._store = Store(path)
        try:
            self.scope = self._remember("scope", scope, check=_check_scope)
            self.replica_id = self._remember(
                "replica_id", replica_id, check=_check_replica_id, default=str(uuid.uuid4())
            )
            self._credentials = Credentials(
                self._store, path, token=token, refresh_token=refresh_token
            )
        except BaseException:
            self._store.close()
            raise
        self.warehouse = self.scope.removeprefix("warehouse:")
        self.page_size = page_size
        # A copy started from nothing downloads the server's snapshot (docs/sync.md); False,
        # or a server without one (404), pages through the pull from the start instead.
        self.use_snapshot = use_snapshot
        self._http: httpx.Client | None = None
        if server_url is not None:
            self._http = httpx.Client(base_url=server_url.rstrip("/"), timeout=timeout)

    def _remember(
        self,
        key: str,
        given: str | None,
        *,
        check: Callable[[str], None],
        default: str | None = None,
    ) -> str:
        # A replica file belongs to one scope and one replica id for life: the cursor is only
        # valid for its scope, and the server recognises retried mutations by replica and id.
        with self._store.transaction():
            stored = self._store.get_meta(key)
            if stored is not None:
                if given is not None and given != stored:
                    raise ValueError(f"this replica file has {key} {stored!r}, not {given!r}")
                return stored
            value = given if given is not None else default
            if value is None:
                raise ValueError(f"a new replica file needs a {key}")
            check(value)
            self._store.set_meta(key, value)
            return value

    # --- lifecycle -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the network client and the file."""
        if self._http is not None:
            self._http.close()
        self._store.close()

    def __enter__(self) -> Replica:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- reads -----------------------------------------------------------------------------------

    def products(self) -> list[dict[str, Any]]:
        """Every product as the user should see it: pending edits applied, SKU order."""
        with self._store.lock:
            rows = self._store.copy_rows("product")
            queue = self._store.queued()
        return [_edited(row, queue) for row in rows]

    def product(self, sku: str) -> dict[str, Any] | None:
        """One product with pending edits applied, or None if the copy does not hold it."""
        with self._store.lock:
            row = self._store.copy_row("product", sku)
            queue = self._store.queued()
        return None if row is None else _edited(row, queue)

    def product_by_barcode(self, code: str) -> dict[str, Any] | None:
        """The product (pending edits applied) that has the barcode ``code``, as a scanner
        reads it: surrounding whitespace is ignored and a UPC-A is found also by its EAN-13
        with a leading 0. None if no product of the copy has it (archived products are not in
        the copy; a code with a wrong check digit is nobody's). Works offline."""
        key = barcode_lookup_form(code)
        if key is None:
            return None
        with self._store.lock:
            sku = self._store.product_sku_of_barcode(key)
            return None if sku is None else self.product(sku)

    def stock(self, sku: str) -> Stock | None:
        """The SKU's stock in the replica's warehouse, pending changes applied.

        None if the replica knows nothing of the SKU (no product, no stock, nothing pending).
        A pending sale beyond stock shows a negative on-hand: the server will take what is
        available and flag the rest, and the next pull shows what it made of it.
        """
        with self._store.lock:
            row = self._store.copy_row("stock", sku)
            known = row is not None or self._store.copy_row("product", sku) is not None
            pending = [m for m in self._store.queued() if m["type"] in _STOCK_TYPES and _is(m, sku)]
        if not known and not pending:
            return None
        on_hand = int(row["on_hand"]) if row else 0
        reserved = int(row["reserved"]) if row else 0
        delta = sum(_delta(m) for m in pending)
        return Stock(sku, on_hand + delta, reserved, on_hand + delta - reserved, len(pending))

    def knows(self, sku: str) -> bool:
        """Whether the local catalog (the server copy as of the last pull) has ``sku``."""
        with self._store.lock:
            return self._store.copy_row("product", sku) is not None

    def pending(self) -> list[Mutation]:
        """Mutations not yet acknowledged by the server, oldest first."""
        return [_mutation(row) for row in self._store.queued()]

    def results(self) -> list[Verdict]:
        """The server's verdict on every mutation pushed from this file, oldest first."""
        return [_verdict(row) for row in self._store.verdicts()]

    def conflicts(self) -> list[Verdict]:
        """Verdicts the user should see: ``conflict`` (done in part) and ``rejected``."""
        return [v for v in self.results() if v.status in ("conflict", "rejected")]

    # --- writes ----------------------------------------------------------------------------------

    def receive(self, sku: str, qty: int) -> str:
        """Goods arrived: ``qty`` (≥ 1) more on hand. Returns the mutation id."""
        _check_range("qty", qty, 1, 10**9)
        return self._enqueue("stock.receive", sku, {"qty": qty})

    def adjust(self, sku: str, delta: int, reason: str) -> str:
        """A write-off or correction of ``delta`` (not 0); ``reason`` damage or correction."""
        _check_range("delta", delta, -(10**9), 10**9)
        if delta == 0:
            raise ValueError("delta must not be zero")
        if reason not in ("damage", "correction"):
            raise ValueError("reason must be 'damage' or 'correction'")
        return self._enqueue("stock.adjust", sku, {"delta": delta, "reason": reason})

    def count(self, sku: str, counted: int) -> str:
        """A physical count: sends the difference to the on-hand the user is shown right now.

        The server applies ``counted - seen_on_hand`` to its real stock, so sales made elsewhere
        meanwhile are not undone. A negative local on-hand (pending sales beyond stock) is sent
        as 0 seen, the least the server accepts.
        """
        _check_range("counted", counted, 0, 10**9)
        with self._store.transaction():  # what was seen and the mutation, in one step
            shown = self.stock(sku)
            seen = max(0, shown.on_hand) if shown else 0
            return self._enqueue("stock.count", sku, {"counted": counted, "seen_on_hand": seen})

    def sell(self, sku: str, qty: int) -> str:
        """``qty`` (≥ 1) sold over the counter; never refused offline for want of stock."""
        _check_range("qty", qty, 1, 10**9)
        return self._enqueue("stock.sell", sku, {"qty": qty})

    def update_product(self, sku: str, **fields: Any) -> str:
        """Edit product fields (name, price_cents, attributes, min_temp_c, max_temp_c).

        Last writer wins per field by hybrid logical clock; managers and admins only (the
        server rejects others). A losing edit comes back as a ``conflict``.
        """
        if not fields:
            raise ValueError("name at least one field")
        unknown = set(fields) - EDITABLE_FIELDS
        if unknown:
            raise ValueError(f"not editable offline: {', '.join(sorted(unknown))}")
        return self._enqueue("product.update", sku, {"fields": fields})

    def _enqueue(self, kind: str, sku: str, extra: dict[str, Any]) -> str:
        mutation_id = str(uuid.uuid4())
        with self._store.transaction():  # clock tick and queue entry commit together
            now = hlc.now_ms()
            clock = self._store.clock().tick(now)
            self._store.set_clock(clock)
            data = {"warehouse": self.warehouse, "sku": sku, **extra}
            self._store.enqueue(
                {
                    "id": mutation_id,
                    "type": kind,
                    "data": data,
                    "hlc": clock.stamp(self.replica_id),
                },
                created_ms=now,
            )
        return mutation_id

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        bearer = self._credentials.bearer()
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        try:
            return self._client().request(method, url, headers=headers, **kwargs)
        except httpx.TransportError as exc:
            raise Offline(f"server unreachable: {exc}") from exc

    # --- sync ------------------------------------------------------------------------------------

    def sync(self, on_progress: Callable[[int], None] | None = None) -> SyncSummary:
        """Push the queue, then pull until up to date. Raises ``Offline`` / ``SyncError``.

        Whatever was done before an error is kept: acknowledged mutations have left the queue,
        stored pages and their cursor stay. Calling again resumes. ``on_progress`` is called
        with the number of rows pulled so far after each stored page.
        """
        summary = SyncSummary()
        self._push(summary)
        self._pull(summary, on_progress)
        return summary

    def _client(self) -> httpx.Client:
        if self._http is None:
            raise SyncError("this replica was opened without a server_url: it cannot sync")
        return self._http

    def _push(self, summary: SyncSummary) -> None:
        # Only what was queued when the sync began: a writer that never stops must not keep a
        # sync going forever; later mutations go next time.
        up_to = self._store.last_seq()
        while True:
            batch = self._store.queued(up_to=up_to, limit=PUSH_BATCH)
            if not batch:
                return
            body = {
                "replica_id": self.replica_id,
                "mutations": [
                    {"id": m["id"], "type": m["type"], "data": m["data"], "hlc": m["hlc"]}
                    for m in batch
                ],
            }
            answer = self._request("POST", "/api/v1/sync/push", json=body)
            verdicts = [_effective(result) for result in answer["results"]]
            self._store.settle(verdicts)
            types = {m["id"]: (m["type"], m["data"]) for m in batch}
            for v in verdicts:
                kind, data = types.get(v["id"], ("", {}))
                summary.verdicts.append(Verdict(v["id"], kind, data, v["status"], v["detail"]))
                summary.pushed += 1
                summary.conflicts += v["status"] == "conflict"
                summary.rejected += v["status"] == "rejected"
            if set(types) - {v["id"] for v in verdicts}:
                # Should not happen (one result per mutation); stop rather than resend the
                # same batch forever. What was answered is settled; the rest stays queued.
                raise SyncError("the server did not answer every mutation pushed")

    def _pull(self, summary: SyncSummary, on_progress: Callable[[int], None] | None) -> None:
        while True:
            params: dict[str, Any] = {"scope": self.scope, "limit": self.page_size}
            cursor = self._store.get_meta("cursor")
            if cursor is None and self.use_snapshot:
                cursor = self._load_snapshot(summary, on_progress)
            if cursor is not None:
                params["since"] = cursor
            try:
                page = self._request("GET", "/api/v1/sync/pull", params=params)
            except SyncError as exc:
                if exc.code in RESYNC_CODES and not summary.resynced:
                    # The cursor is no good here (another server, a restored backup): start
                    # over from a clean copy. The queue is kept; it is pushed as usual.
                    self._store.clear_copy()
                    summary.resynced = True
                    continue
                raise
            self._store.apply_page(page["changes"], page["cursor"])
            summary.pulled += len(page["changes"])
            if on_progress is not None:
                on_progress(summary.pulled)
            if not page["has_more"]:
                return

    def _load_snapshot(
        self, summary: SyncSummary, on_progress: Callable[[int], None] | None
    ) -> str | None:
        """Start the copy from the server's snapshot; its cursor, or None to page instead.

        The copy is replaced by the snapshot and its cursor in ONE local transaction, so an
        interruption leaves the file as it was (no cursor: the next sync downloads again).
        """
        response = self._fetch("GET", "/api/v1/sync/snapshot", params={"scope": self.scope})
        if response.status_code == 404:
            # A server from before snapshots (or an unknown warehouse, which the pull reports
            # with its own error): page through the pull from the start.
            self.use_snapshot = False
            return None
        _raise_for_status(response, "GET /api/v1/sync/snapshot")
        loaded = snapshot.parse(response.content)
        if loaded is None:  # a format this client does not know: the pull still works
            self.use_snapshot = False
            return None
        try:
            self._store.load_snapshot(loaded)
        except (sqlite3.ProgrammingError, sqlite3.IntegrityError) as exc:
            raise SyncError(f"the server's snapshot is malformed: {exc}") from exc
        rows = len(loaded.products[0]) + len(loaded.stock[0])
        summary.pulled += rows
        summary.snapshot_rows += rows
        if on_progress is not None:
            on_progress(summary.pulled)
        return loaded.cursor

    def _request(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        response = self._fetch(method, url, **kwargs)
        _raise_for_status(response, f"{method} {url}")
        result: dict[str, Any] = response.json()
        return result

    def _fetch(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self._send(method, url, **kwargs)
        if response.status_code == 401 and self._credentials.can_refresh():
            # The access token ran out (or was revoked): renew it once and repeat. A 401 means
            # the request did nothing, and a push repeated is answered by mutation id anyway.
            self._credentials.refresh(self._client())
            response = self._send(method, url, **kwargs)
        return response


def _raise_for_status(response: httpx.Response, what: str) -> None:
    """``SyncError`` with the server's ``code`` for anything but 200."""
    if response.status_code == 200:
        return
    code: str | None = None
    message = response.text[:500]
    try:
        body = response.json()
        code, message = body.get("code"), str(body.get("detail", message))
    except ValueError:
        pass
    raise SyncError(
        f"{what}: {response.status_code} {message}",
        status=response.status_code,
        code=code,
    )


# --- pure helpers --------------------------------------------------------------------------------

_WHITESPACE = " \t\r\n\v\f"


def barcode_lookup_form(code: str) -> str | None:
    """The form in which the server stores ``code``, if it is a valid barcode (else some text
    no product has), or None for a blank one.

    A copy of rules 1 and 3 of ``storekeeper.catalog.barcodes`` (drop surrounding ASCII
    whitespace; a 13-digit code starting with 0 is the UPC-A of its last 12 digits), not an
    import of it: the client runs without the server's packages. Check digits need no copy: a
    code that fails them is stored by no product, so looking it up finds nothing.
    """
    text = code.strip(_WHITESPACE)
    if not text:
        return None
    if len(text) == 13 and text.isascii() and text.isdigit() and text.startswith("0"):
        return text[1:]
    return text


def _check_scope(scope: str) -> None:
    code = scope.removeprefix("warehouse:")
    if not scope.startswith("warehouse:") or not code:
        raise ValueError(f"scope must be 'warehouse:CODE', not {scope!r}")


def _check_replica_id(name: str) -> None:
    if not hlc.valid_node(name):
        raise ValueError(
            f"replica_id {name!r}: 1-64 characters [A-Za-z0-9._:-], starting with a letter "
            "or digit, and not 'server'"
        )


def _check_range(name: str, value: int, low: int, high: int) -> None:
    # bool is an int in Python, and the server is strict: refuse it here, not after a sync.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}, not {value!r}")


def _is(mutation: Row, sku: str) -> bool:
    return bool(mutation["data"].get("sku") == sku)


def _delta(mutation: Row) -> int:
    """What a pending stock mutation does to on-hand, as the server would apply it in full."""
    data = mutation["data"]
    kind = mutation["type"]
    if kind == "stock.receive":
        return int(data["qty"])
    if kind == "stock.sell":
        return -int(data["qty"])
    if kind == "stock.adjust":
        return int(data["delta"])
    return int(data["counted"]) - int(data["seen_on_hand"])


def _edited(row: Row, queue: list[Row]) -> dict[str, Any]:
    """A product with the pending edits of its SKU applied in queue order."""
    product = dict(row)
    for mutation in queue:
        if mutation["type"] == "product.update" and _is(mutation, product["sku"]):
            product.update(mutation["data"]["fields"])
    return product


def _effective(result: dict[str, Any]) -> Row:
    """A push result as a verdict: a ``duplicate`` stands for the first verdict it carries."""
    status, detail = result["status"], result["detail"]
    original = detail.get("original") if status == "duplicate" else None
    if isinstance(original, dict) and "status" in original:
        status, detail = original["status"], original.get("detail", detail)
    return {"id": str(result["id"]), "status": status, "detail": detail}


def _mutation(row: Row) -> Mutation:
    return Mutation(row["id"], row["type"], row["data"], row["hlc"])


def _verdict(row: Row) -> Verdict:
    return Verdict(row["id"], row["type"], row["data"], row["status"], row["detail"])
