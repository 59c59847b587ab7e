"""Console pages: stock of each warehouse, receiving, adjusting, transferring, and counting.

Each view calls the service functions and the policy checks of the matching API route
(``storekeeper.inventory.api``): ``policy.ensure_warehouses`` for a clerk, ``ledger.*`` to write.
A count sheet (stocktake) keeps its state in the form itself (hidden inputs): nothing is stored
until it is posted, and then every line in one transaction (``ledger.record_counts``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from storekeeper.accounts import policy
from storekeeper.accounts.domain import STOCK_HANDLERS, Principal
from storekeeper.api.deps import DatabaseDep
from storekeeper.api.downloads import csv_response
from storekeeper.catalog import service as catalog
from storekeeper.catalog.schemas import Sku
from storekeeper.errors import Conflict, DomainError, PermissionDenied
from storekeeper.inventory import ledger, levels, warehouses
from storekeeper.inventory.domain import InsufficientStock
from storekeeper.inventory.schemas import Quantity, Ref, WarehouseCode
from storekeeper.web.forms import form_data, form_lists, validate
from storekeeper.web.session import allowed
from storekeeper.web.templating import render

router = APIRouter(include_in_schema=False)
Handler = Annotated[Principal, Depends(allowed(STOCK_HANDLERS))]
Code = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,31}$")]
SkuParam = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")]

PAGE = 50
NAME_MATCHES = 1000
"""At most this many products matched by name narrow a warehouse's list (SKU order)."""
SHEET_LINES = ledger.MAX_COUNT_LINES
_COUNT = re.compile(r"-?\d{1,15}")

Done = Literal["receipt", "adjustment", "transfer", "count"]


# --- forms: the API's own field types, read from text --------------------------------------


class ReceiveForm(BaseModel):
    """Goods in: a positive quantity of a SKU."""

    sku: Sku
    qty: Quantity
    ref: Ref | None = None

    def movement(self) -> tuple[int, str]:
        """The ledger movement it records: (delta, reason)."""
        return self.qty, "receipt"


class AdjustForm(BaseModel):
    """Damage or a correction: a signed change of on-hand."""

    sku: Sku
    delta: int = Field(ge=-1_000_000_000, le=1_000_000_000)
    reason: Literal["damage", "correction"]
    ref: Ref | None = None

    def movement(self) -> tuple[int, str]:
        """The ledger movement it records: (delta, reason)."""
        return self.delta, self.reason


class TransferForm(BaseModel):
    """Units of a SKU from this warehouse to another."""

    sku: Sku
    to: WarehouseCode
    qty: Quantity


_WORDS = {
    "sku": "enter a SKU: letters, digits, '.', '_' or '-', up to 64 characters",
    "qty": "enter a whole number from 1 to 1,000,000,000",
    "delta": "enter a whole number other than 0, e.g. -2 to take away two",
    "reason": "choose damage or correction",
    "ref": "a reference is at most 128 characters",
    "to": "choose the warehouse to send to",
}


def _in_words(errors: Mapping[str, str]) -> dict[str, str]:
    """Pydantic's messages per field as a person can act on them."""
    return {name: _WORDS.get(name, message) for name, message in errors.items()}


_REFUSALS = {
    "unknown_sku": "sku",
    "insufficient_stock": "qty",
    "invalid_delta": "delta",
    "invalid_quantity": "qty",
    "unknown_warehouse": "to",
    "invalid_transfer": "to",
}
"""The form field each refusal of a service is about."""


def _refusal(exc: DomainError, *, form: Action) -> tuple[dict[str, str], int]:
    """A service's refusal as an error in words next to its field; re-raised (an error page)
    when it is not about a field of this form."""
    name = _REFUSALS.get(exc.code)
    if form == "adjust" and name == "qty":
        name = "delta"
    if name is None or (name == "to" and form != "transfer"):
        raise exc
    message = exc.detail
    if isinstance(exc, InsufficientStock):
        message = (
            f"only {exc.available} of {exc.sku} available here (on hand less reserved for "
            f"orders): {exc.requested} cannot be taken"
        )
    return {name: message}, _form_status(exc)


def _form_status(exc: DomainError) -> int:
    return 409 if isinstance(exc, Conflict) else 422


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None and _COUNT.fullmatch(text) else None


# --- warehouses the person may act on ------------------------------------------------------


def _may_act_on(principal: Principal, code: str) -> bool:
    try:
        policy.ensure_warehouses(principal, [code])
    except PermissionDenied:
        return False
    return True


def _warehouses_for(session: Session, principal: Principal) -> list[tuple[str, str]]:
    """(code, name) of the warehouses ``principal`` may act on, in code order."""
    return [
        (w.code, w.name)
        for w in warehouses.list_warehouses(session)
        if _may_act_on(principal, w.code)
    ]


def _warehouse_name(session: Session, code: str) -> str:
    warehouses.require_warehouse(session, code=code)
    return next(w.name for w in warehouses.list_warehouses(session) if w.code == code)


@router.get("/stock")
def index(request: Request, principal: Handler, db: DatabaseDep) -> Response:
    """The warehouses the person may act on: a clerk's assigned ones, every one for staff."""
    with db.reading() as session:
        mine = _warehouses_for(session, principal)
    return render(request, "stock/index.html", principal, title="Stock", warehouses=mine)


# --- one warehouse: levels, filter, paging, CSV --------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """A line of a warehouse's stock list."""

    sku: str
    name: str
    on_hand: int
    reserved: int
    available: int


def _levels_page(
    session: Session, *, code: str, q: str | None, after: str | None, limit: int
) -> tuple[list[Row], str | None, bool]:
    """One page of the warehouse's levels matching ``q`` (SKU prefix or part of the name), the
    cursor of the next page, and whether the name matched more products than are searched."""
    named: list[str] | None = None
    too_many = False
    if q:
        named = catalog.skus_named(session, text=q, limit=NAME_MATCHES + 1)
        too_many = len(named) > NAME_MATCHES
        named = named[:NAME_MATCHES]
    found, following = levels.list_levels(
        session, warehouse=code, sku_prefix=q, skus=named, after_sku=after, limit=limit
    )
    names = catalog.names(session, skus=[lv.sku for lv in found])
    rows = [
        Row(lv.sku, names.get(lv.sku, "—"), lv.on_hand, lv.reserved, lv.available) for lv in found
    ]
    return rows, following, too_many


def _all_levels(session: Session, *, code: str, q: str | None) -> Iterator[Row]:
    after: str | None = None
    while True:
        rows, after, _ = _levels_page(
            session, code=code, q=q, after=after, limit=levels.MAX_LEVELS_PAGE
        )
        yield from rows
        if after is None:
            return


def _transfer_targets(session: Session, principal: Principal, code: str) -> list[tuple[str, str]]:
    return [(c, n) for c, n in _warehouses_for(session, principal) if c != code]


def _page_context(
    session: Session, principal: Principal, code: str, **extra: Any
) -> dict[str, Any]:
    """What every page of one warehouse shows around its forms."""
    return {
        "code": code,
        "warehouse_name": _warehouse_name(session, code),
        "targets": _transfer_targets(session, principal, code),
        **extra,
    }


@router.get("/stock/{code}")
def warehouse(
    request: Request,
    code: Code,
    principal: Handler,
    db: DatabaseDep,
    q: Annotated[str | None, Query(max_length=64)] = None,
    after: SkuParam = None,
    format: Annotated[Literal["csv"] | None, Query()] = None,
    done: Annotated[Done | None, Query()] = None,
    sku: SkuParam = None,
    lines: Annotated[int | None, Query(ge=0, le=SHEET_LINES)] = None,
) -> Response:
    """Stock levels of one warehouse (filter by SKU prefix or name, keyset-paged, CSV), with
    the receive, adjust and transfer forms."""
    policy.ensure_warehouses(principal, [code])
    q = (q or "").strip() or None
    with db.reading() as session:
        if format == "csv":
            warehouses.require_warehouse(session, code=code)
            rows = list(_all_levels(session, code=code, q=q))
            return csv_response(
                f"stock-{code}.csv",
                ["sku", "name", "on_hand", "reserved", "available"],
                ([r.sku, r.name, r.on_hand, r.reserved, r.available] for r in rows),
            )
        context = _page_context(session, principal, code)
        rows, following, too_many = _levels_page(session, code=code, q=q, after=after, limit=PAGE)
    query = {"q": q} if q else {}
    return render(
        request,
        "stock/warehouse.html",
        principal,
        title=f"Stock at {code}",
        rows=rows,
        q=q or "",
        after=after,
        next_url=f"/stock/{code}?{urlencode({**query, 'after': following})}" if following else None,
        first_url=f"/stock/{code}?{urlencode(query)}" if after else None,
        csv_url=f"/stock/{code}?{urlencode({**query, 'format': 'csv'})}",
        too_many=too_many,
        done=done,
        done_sku=sku,
        done_lines=lines,
        forms={},
        **context,
    )


# --- receive, adjust, transfer -------------------------------------------------------------

Action = Literal["receive", "adjust", "transfer"]
_ACTIONS: dict[str, Action] = {"receive": "receive", "adjust": "adjust", "transfer": "transfer"}
_TITLES: dict[Action, str] = {
    "receive": "Receive stock",
    "adjust": "Adjust stock",
    "transfer": "Transfer stock",
}


def _action_page(
    request: Request,
    principal: Principal,
    db: DatabaseDep,
    code: str,
    action: Action,
    *,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    with db.reading() as session:
        context = _page_context(session, principal, code)
    return render(
        request,
        "stock/action.html",
        principal,
        status_code=status_code,
        title=f"{_TITLES[action]} at {code}",
        action=action,
        forms={action: {"values": dict(values or {}), "errors": dict(errors or {})}},
        **context,
    )


def _require_page_warehouse(db: DatabaseDep, code: str) -> None:
    """The warehouse in the address exists (else the 404 page)."""
    with db.reading() as session:
        warehouses.require_warehouse(session, code=code)


def _done(code: str, done: Done, **extra: str | int) -> Response:
    return RedirectResponse(f"/stock/{code}?{urlencode({'done': done, **extra})}", status_code=303)


@router.get("/stock/{code}/receive")
@router.get("/stock/{code}/adjust")
@router.get("/stock/{code}/transfer")
def action_form(
    request: Request, code: Code, principal: Handler, db: DatabaseDep, sku: SkuParam = None
) -> Response:
    """The receive, adjust or transfer form on a page of its own (``?sku=`` fills the SKU)."""
    policy.ensure_warehouses(principal, [code])
    action = _ACTIONS[request.url.path.rsplit("/", 1)[1]]
    return _action_page(request, principal, db, code, action, values={"sku": sku or ""})


@router.post("/stock/{code}/receive")
async def receive(request: Request, code: Code, principal: Handler, db: DatabaseDep) -> Response:
    """Goods in: a ``receipt`` movement (as ``POST /api/v1/stock/movements``)."""
    return await _movement(request, code, principal, db, "receive", ReceiveForm, done="receipt")


@router.post("/stock/{code}/adjust")
async def adjust(request: Request, code: Code, principal: Handler, db: DatabaseDep) -> Response:
    """Damage or a correction: a signed movement (as ``POST /api/v1/stock/movements``)."""
    return await _movement(request, code, principal, db, "adjust", AdjustForm, done="adjustment")


async def _movement(
    request: Request,
    code: str,
    principal: Principal,
    db: DatabaseDep,
    action: Action,
    schema: type[ReceiveForm] | type[AdjustForm],
    *,
    done: Done,
) -> Response:
    """Record the movement a receive or adjust form describes, or show the form's errors."""
    policy.ensure_warehouses(principal, [code])
    fields = await form_data(request)
    _require_page_warehouse(db, code)
    form, errors = validate(schema, fields)
    refused: dict[str, str] = {}
    status = 422
    if form is not None:
        delta, reason = form.movement()
        try:
            with db.transaction() as session:
                ledger.record_movement(
                    session,
                    sku=form.sku,
                    warehouse=code,
                    delta=delta,
                    reason=reason,
                    ref=form.ref,
                    actor_id=str(principal.user_id),
                )
        except DomainError as exc:
            refused, status = _refusal(exc, form=action)
        else:
            return _done(code, done, sku=form.sku)
    return _action_page(
        request,
        principal,
        db,
        code,
        action,
        values=fields,
        errors=_in_words(errors) | refused,
        status_code=status,
    )


@router.post("/stock/{code}/transfer")
async def transfer(request: Request, code: Code, principal: Handler, db: DatabaseDep) -> Response:
    """Units to another warehouse (as ``POST /api/v1/stock/transfers``): a clerk must be
    assigned to both."""
    policy.ensure_warehouses(principal, [code])
    fields = await form_data(request)
    _require_page_warehouse(db, code)
    form, errors = validate(TransferForm, fields)
    refused: dict[str, str] = {}
    status = 422
    if form is not None:
        policy.ensure_warehouses(principal, [code, form.to])
        try:
            with db.transaction() as session:
                ledger.transfer(
                    session,
                    sku=form.sku,
                    source=code,
                    target=form.to,
                    qty=form.qty,
                    actor_id=str(principal.user_id),
                )
        except DomainError as exc:
            refused, status = _refusal(exc, form="transfer")
        else:
            return _done(code, "transfer", sku=form.sku)
    return _action_page(
        request,
        principal,
        db,
        code,
        "transfer",
        values=fields,
        errors=_in_words(errors) | refused,
        status_code=status,
    )


# --- count sessions (stocktake) ------------------------------------------------------------


@dataclass
class Line:
    """One line of a count sheet as the form carries it (and what the review adds)."""

    sku: str
    counted: str
    name: str = ""
    expected: int | None = None
    problems: list[str] = field(default_factory=list)
    focus: bool = False

    @property
    def variance(self) -> int | None:
        """Counted less expected, when both are known."""
        counted = _int_or_none(self.counted)
        if counted is None or self.expected is None:
            return None
        return counted - self.expected


@dataclass
class Sheet:
    """A count sheet: the whole state of a count session, carried by its form."""

    blind: bool
    sku_prefix: str
    ref: str
    lines: list[Line]
    note: str | None = None
    truncated: bool = False

    def skus(self) -> list[str]:
        """The SKUs of the lines, in line order."""
        return [line.sku for line in self.lines]


def _default_ref(code: str) -> str:
    return f"count-{code}-{datetime.now(UTC):%Y%m%d-%H%M}"


def _sheet_from_form(form: Mapping[str, list[str]]) -> Sheet:
    skus, counts = form.get("sku", []), form.get("counted", [])
    counts = counts + [""] * (len(skus) - len(counts))
    lines = [Line(sku, counted) for sku, counted in zip(skus, counts, strict=False)]

    def one(name: str) -> str:
        return (form.get(name) or [""])[0]

    return Sheet(
        blind=one("blind") == "1", sku_prefix=one("sku_prefix"), ref=one("ref"), lines=lines
    )


def _fill(session: Session, code: str, sheet: Sheet) -> None:
    """Names and expected quantities of the sheet's lines (0 for a SKU never stocked here)."""
    skus = [s for s in sheet.skus() if s]
    known = levels.known_skus(session, skus=skus)
    found, _ = levels.list_levels(session, warehouse=code, skus=known, limit=levels.MAX_LEVELS_PAGE)
    on_hand = {lv.sku: lv.on_hand for lv in found}
    names = catalog.names(session, skus=known)
    for line in sheet.lines:
        line.name = names.get(line.sku, "")
        line.expected = on_hand.get(line.sku, 0) if line.sku in known else None


def _check(session: Session, code: str, sheet: Sheet) -> list[ledger.LineProblem]:
    """Every problem of the sheet, all at once, noted on its lines too."""
    problems = ledger.count_problems(
        session,
        warehouse=code,
        lines=[(line.sku, _int_or_none(line.counted)) for line in sheet.lines],
    )
    for number, _, reason in problems:
        sheet.lines[number - 1].problems.append(reason)
    return problems


def _count_page(
    request: Request,
    principal: Principal,
    db: DatabaseDep,
    code: str,
    sheet: Sheet | None,
    *,
    stage: Literal["start", "sheet", "review"],
    status_code: int = 200,
    problems: Sequence[ledger.LineProblem] = (),
) -> Response:
    with db.reading() as session:
        context = _page_context(session, principal, code)
        if sheet is not None:
            _fill(session, code, sheet)
            if stage == "review" and not problems:
                problems = _check(session, code, sheet)
    counted = [_int_or_none(line.counted) for line in sheet.lines] if sheet else []
    return render(
        request,
        "stock/count.html",
        principal,
        status_code=422 if problems else status_code,
        title=f"Count at {code}",
        stage=stage,
        sheet=sheet,
        problems=problems,
        show_expected=stage == "review" or (sheet is not None and not sheet.blind),
        total_variance=sum(v for line in (sheet.lines if sheet else []) if (v := line.variance))
        if stage == "review"
        else None,
        all_counted=all(c is not None for c in counted),
        **context,
    )


@router.get("/stock/{code}/count")
def count_start(
    request: Request,
    code: Code,
    principal: Handler,
    db: DatabaseDep,
    sku_prefix: Annotated[str | None, Query(max_length=64)] = None,
    blind: Annotated[bool, Query()] = False,
    start: Annotated[bool, Query()] = False,
) -> Response:
    """Start a count: choose the SKUs (by prefix) and blind mode; then the sheet to fill in."""
    policy.ensure_warehouses(principal, [code])
    if not start:
        return _count_page(request, principal, db, code, None, stage="start")
    prefix = (sku_prefix or "").strip()
    with db.reading() as session:
        warehouses.require_warehouse(session, code=code)
        found, more = levels.list_levels(
            session, warehouse=code, sku_prefix=prefix or None, limit=SHEET_LINES
        )
    sheet = Sheet(
        blind=blind,
        sku_prefix=prefix,
        ref=_default_ref(code),
        lines=[Line(lv.sku, "") for lv in found],
        truncated=more is not None,
    )
    return _count_page(request, principal, db, code, sheet, stage="sheet")


@router.post("/stock/{code}/count")
async def count_sheet(
    request: Request, code: Code, principal: Handler, db: DatabaseDep
) -> Response:
    """The sheet again after adding a line (the scan field, without script) or removing one."""
    policy.ensure_warehouses(principal, [code])
    form = await form_lists(request)
    sheet = _sheet_from_form(form)
    removed = _int_or_none((form.get("remove") or [""])[0])
    if removed is not None and 1 <= removed <= len(sheet.lines):
        del sheet.lines[removed - 1]
    added = (form.get("add_sku") or [""])[0]
    if added:
        present = next((line for line in sheet.lines if line.sku == added), None)
        if present is not None:
            present.focus = True
            sheet.note = f"{added} is on line {sheet.lines.index(present) + 1}"
        elif len(sheet.lines) >= SHEET_LINES:
            sheet.note = f"a sheet has at most {SHEET_LINES} lines: post this one first"
        else:
            sheet.lines.append(Line(added, "", focus=True))
    stage: Literal["sheet", "review"] = (
        "review" if (form.get("stage") or [""])[0] == "review" else "sheet"
    )
    return _count_page(request, principal, db, code, sheet, stage=stage)


@router.post("/stock/{code}/count/review")
async def count_review(
    request: Request, code: Code, principal: Handler, db: DatabaseDep
) -> Response:
    """Every line's expected and counted quantity and the variance, with every problem at once
    (unknown or repeated SKU, a count that is not a whole number of 0 or more, below reserved)."""
    policy.ensure_warehouses(principal, [code])
    sheet = _sheet_from_form(await form_lists(request))
    return _count_page(request, principal, db, code, sheet, stage="review")


@router.post("/stock/{code}/count/post")
async def count_post(request: Request, code: Code, principal: Handler, db: DatabaseDep) -> Response:
    """Record every line of the sheet in one transaction (``ledger.record_counts``, as
    ``POST /api/v1/stock/counts/batch``); the review with every problem if any line has one."""
    policy.ensure_warehouses(principal, [code])
    sheet = _sheet_from_form(await form_lists(request))
    if not sheet.lines:
        sheet.note = "the sheet has no lines: add one with the scan field"
        return _count_page(request, principal, db, code, sheet, stage="sheet", status_code=422)
    counts = [(line.sku, _int_or_none(line.counted)) for line in sheet.lines]
    whole = [(sku, counted) for sku, counted in counts if counted is not None]
    if len(whole) < len(counts):  # a count that is not a number: the review says it, and all
        return _count_page(request, principal, db, code, sheet, stage="review")
    try:
        with db.transaction() as session:
            ledger.record_counts(
                session,
                warehouse=code,
                lines=whole,
                ref=sheet.ref.strip()[:128] or None,
                actor_id=str(principal.user_id),
            )
    except ledger.InvalidCountLines as exc:
        problems = [ledger.LineProblem(*p) for p in exc.problems]
        for number, _, reason in problems:
            sheet.lines[number - 1].problems.append(reason)
        return _count_page(request, principal, db, code, sheet, stage="review", problems=problems)
    return _done(code, "count", lines=len(sheet.lines))
