"""Console pages: the dashboard — stock per warehouse with its value, low stock, orders waiting
for shipment, open alerts, open sync exceptions and the newest stock movements.

Every card is a fragment with its own URL (``/dashboard/<card>``: the card alone for htmx, a
page holding just that card otherwise), so each refreshes by itself when a live event says its
figures moved (``hx-trigger="sse:stock.changed throttle:1s"``; ``static/dashboard.js`` adds the
refresh after a burst that the throttle let pass). Clerks see their warehouses' figures only;
orders follow the orders API, where clerks read every order.

Stock value is on-hand times the current price, summed per warehouse and currency. Each
context sums in its own SQL (inventory: the stock rows, never the ledger; catalog: the prices);
combining them is one dictionary lookup per stock row, and the result is kept per warehouse
until its stock rows or the catalog change (``StockValues``). ``bench/dashboard_stock.py``
measures it at 100,000 products in three warehouses and 1M movements.
"""

from __future__ import annotations

import threading
import weakref
from collections import defaultdict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from storekeeper.accounts.domain import STAFF, STOCK_HANDLERS, Principal
from storekeeper.api.deps import DatabaseDep, SettingsDep
from storekeeper.api.downloads import csv_response
from storekeeper.catalog import service as catalog_service
from storekeeper.config import Settings
from storekeeper.db import Database
from storekeeper.errors import NotFound
from storekeeper.inventory import history, levels
from storekeeper.ordering import service as ordering_service
from storekeeper.ordering.domain import OrderStatus
from storekeeper.sync import exceptions as sync_exceptions
from storekeeper.telemetry import alerts
from storekeeper.web.session import allowed
from storekeeper.web.templating import render

router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(allowed(STOCK_HANDLERS))]

LOW_STOCK_SHOWN = 20
MOVEMENTS_SHOWN = 10
ORDERS_SHOWN = 5
ALERTS_SHOWN = 5


def _visible_warehouses(who: Principal) -> frozenset[str] | None:
    """None for managers and admins (every warehouse), a clerk's assigned ones (as the APIs)."""
    return None if who.has_role(STAFF) else who.warehouses


# --- stock per warehouse --------------------------------------------------------------------


@dataclass
class WarehouseStock:
    """One warehouse's units, and their value per currency (minor units)."""

    totals: levels.WarehouseTotals
    value: dict[str, int] = field(default_factory=dict)


@dataclass
class StockSummary:
    """Stock per warehouse, and the sums over them."""

    warehouses: list[WarehouseStock]
    on_hand: int
    available: int
    value: dict[str, int]
    unpriced_skus: int


@dataclass(frozen=True, slots=True)
class _Valued:
    """A warehouse's stock value, with the stamps of the stock rows and prices it came from."""

    stamp: tuple[int, int]
    prices_stamp: tuple[int, int]
    value: dict[str, int]
    unpriced: frozenset[str]


class StockValues:
    """Stock value per warehouse, kept between requests while neither the warehouse's stock
    rows nor the catalog changed (their stamps say so exactly): the dashboards that one stock
    event refreshes at once share one computation, only for the warehouse that moved, and the
    catalog's prices are read again only when a product changed.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[str, _Valued] = {}
        self._prices: tuple[tuple[int, int], dict[str, tuple[int, str]]] | None = None

    def of(self, db: Database, totals: list[levels.WarehouseTotals]) -> dict[str, _Valued]:
        """The value of each warehouse of ``totals`` (as read with their stamps)."""
        # One at a time: the dashboards an event refreshes together wait here (holding no
        # database connection) and then find what the first of them computed.
        with self._lock, db.reading() as session:
            catalog = catalog_service.prices_stamp(session)
            stale = {
                t.warehouse: t.stamp
                for t in totals
                if (kept := self._kept.get(t.warehouse)) is None
                or (kept.stamp, kept.prices_stamp) != (t.stamp, catalog)
            }
            if stale:
                if self._prices is None or self._prices[0] != catalog:
                    self._prices = (catalog, catalog_service.prices(session))
                self._kept.update(_values(session, stale, catalog, self._prices[1]))
            return {t.warehouse: self._kept[t.warehouse] for t in totals}


def _values(
    session: Session,
    stamps: dict[str, tuple[int, int]],
    catalog: tuple[int, int],
    prices: dict[str, tuple[int, str]],
) -> dict[str, _Valued]:
    """On-hand x current price of the warehouses in ``stamps``, summed per currency: inventory
    reads its stock rows, and combining them with the prices is one dictionary lookup per row.

    The rows and prices are read after their stamps, so a value is never older than its stamp
    (a change in between only makes the next request compute it again)."""
    rows = levels.on_hand_by_sku(session, warehouses=list(stamps))
    value: dict[str, dict[str, int]] = {code: defaultdict(int) for code in stamps}
    unpriced: dict[str, set[str]] = {code: set() for code in stamps}
    for warehouse, sku, on_hand in rows:
        price = prices.get(sku)
        if price is None:  # stock of a SKU the catalog does not know (it never should)
            unpriced[warehouse].add(sku)
        else:
            value[warehouse][price[1]] += on_hand * price[0]
    return {
        code: _Valued(stamp, catalog, dict(sorted(value[code].items())), frozenset(unpriced[code]))
        for code, stamp in stamps.items()
    }


_STOCK_VALUES: weakref.WeakKeyDictionary[Database, StockValues] = weakref.WeakKeyDictionary()
_STOCK_VALUES_LOCK = threading.Lock()


def stock_values(db: Database) -> StockValues:
    """The kept stock values of ``db`` (one set per database the process serves)."""
    with _STOCK_VALUES_LOCK:
        return _STOCK_VALUES.setdefault(db, StockValues())


def stock_summary(db: Database, *, warehouses: Collection[str] | None) -> StockSummary:
    """Units per warehouse (inventory's GROUP BY, read every time) and their value at current
    prices (computed again only for a warehouse whose stock, or the catalog, changed)."""
    with db.reading() as session:
        totals = levels.totals_by_warehouse(session, warehouses=warehouses)
    valued = stock_values(db).of(db, totals)
    grand: dict[str, int] = defaultdict(int)
    for entry in valued.values():
        for currency, cents in entry.value.items():
            grand[currency] += cents
    return StockSummary(
        warehouses=[WarehouseStock(t, valued[t.warehouse].value) for t in totals],
        on_hand=sum(t.on_hand for t in totals),
        available=sum(t.available for t in totals),
        value=dict(sorted(grand.items())),
        unpriced_skus=len(frozenset().union(*(v.unpriced for v in valued.values()))),
    )


# --- the cards ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Card:
    """A dashboard card: its title, template, the live events that refresh it, and its data."""

    title: str
    template: str
    trigger: str
    data: Callable[[Database, Principal, Settings], dict[str, Any]]
    settle_ms: int = 0
    """After a throttled burst, one more refresh this long after its first event (dashboard.js)."""


def _stock(db: Database, who: Principal, _settings: Settings) -> dict[str, Any]:
    return {"stock": stock_summary(db, warehouses=_visible_warehouses(who))}


def _low_stock(db: Database, who: Principal, settings: Settings) -> dict[str, Any]:
    """The rows with the fewest units available, of products on sale (archived ones skipped)."""
    found: list[tuple[levels.LowStock, str]] = []
    after: tuple[int, str, str] | None = None
    with db.reading() as session:
        for _ in range(5):  # archived products' empty rows could fill a page: look a bit further
            page = levels.low_stock(
                session,
                threshold=settings.low_stock_units,
                warehouses=_visible_warehouses(who),
                after=after,
                limit=50,
            )
            names = catalog_service.names_on_sale(session, skus={row.sku for row in page})
            found += [(row, names[row.sku]) for row in page if row.sku in names]
            if len(page) < 50 or len(found) >= LOW_STOCK_SHOWN:
                break
            after = page[-1].key
    return {"low": found[:LOW_STOCK_SHOWN], "threshold": settings.low_stock_units}


def _orders(db: Database, _who: Principal, _settings: Settings) -> dict[str, Any]:
    with db.reading() as session:
        counts = ordering_service.count_by_status(session.connection())
        waiting, _cursor = ordering_service.list_(
            session,
            customer_id=None,
            status=OrderStatus.CONFIRMED,
            limit=ORDERS_SHOWN,
            cursor=None,
        )
        shown = [ordering_service.view(order) for order in waiting]
    return {
        "waiting": counts.get(OrderStatus.CONFIRMED.value, 0),
        "unpaid": counts.get(OrderStatus.PENDING_PAYMENT.value, 0),
        "orders": shown,
    }


def _alerts(db: Database, who: Principal, _settings: Settings) -> dict[str, Any]:
    visible = _visible_warehouses(who)
    with db.reading() as session:
        opened = alerts.count_alerts(session, status="open", warehouses=visible)
        seen = alerts.count_alerts(session, status="acknowledged", warehouses=visible)
        newest = alerts.list_alerts(session, status="open", warehouses=visible, limit=ALERTS_SHOWN)
    return {"open": opened, "acknowledged": seen, "alerts": newest}


def _sync_exceptions(db: Database, who: Principal, _settings: Settings) -> dict[str, Any]:
    with db.reading() as session:
        count = sync_exceptions.count_open(
            session.connection(), warehouses=_visible_warehouses(who)
        )
    return {"open": count}


def _movements(db: Database, who: Principal, _settings: Settings) -> dict[str, Any]:
    with db.reading() as session:
        found, _next = history.list_movements(
            session, warehouses=_visible_warehouses(who), limit=MOVEMENTS_SHOWN
        )
    return {"movements": found}


STOCK_EVENTS = "sse:stock.changed throttle:1s"
CARDS: dict[str, Card] = {
    "stock": Card("Stock per warehouse", "dashboard/_stock.html", STOCK_EVENTS, _stock, 1000),
    "orders": Card(
        "Orders waiting for shipment",
        "dashboard/_orders.html",
        "sse:order.status_changed throttle:1s",
        _orders,
        1000,
    ),
    # Acknowledging has no live event: a minute's poll catches it.
    "alerts": Card(
        "Open cold-chain alerts",
        "dashboard/_alerts.html",
        "sse:alert.raised, sse:alert.cleared, every 60s",
        _alerts,
    ),
    # Sync exceptions have no live event of their own; offline stock work that raises one
    # comes with its stock changes, and a minute's poll catches resolutions.
    "sync-exceptions": Card(
        "Open sync exceptions",
        "dashboard/_sync_exceptions.html",
        "sse:stock.changed throttle:5s, every 60s",
        _sync_exceptions,
    ),
    "low-stock": Card("Low stock", "dashboard/_low_stock.html", STOCK_EVENTS, _low_stock, 1000),
    "movements": Card(
        "Recent stock movements", "dashboard/_movements.html", STOCK_EVENTS, _movements, 1000
    ),
}
"""The cards in the order the dashboard shows them; the key is the card's URL segment."""


@router.get("/")
def index(request: Request, principal: Viewer, db: DatabaseDep, settings: SettingsDep) -> Response:
    """Every card, each refreshing itself on live events."""
    cards = [(name, card, card.data(db, principal, settings)) for name, card in CARDS.items()]
    return render(request, "dashboard/index.html", principal, title="Dashboard", cards=cards)


@router.get("/dashboard/{name}")
def card_page(
    request: Request,
    name: str,
    principal: Viewer,
    db: DatabaseDep,
    settings: SettingsDep,
    format_: Annotated[Literal["html", "csv"], Query(alias="format")] = "html",
) -> Response:
    """One card: its fragment for htmx (a live refresh), else a page of its own; the stock and
    low-stock cards also as CSV (``?format=csv``)."""
    card = CARDS.get(name)
    if card is None:
        raise NotFound(f"no dashboard card {name[:64]!r}: choose from {', '.join(CARDS)}")
    data = card.data(db, principal, settings)
    if format_ == "csv":
        return _csv(name, data)
    if request.headers.get("HX-Request") == "true":
        return render(request, card.template, principal, card_name=name, card=card, data=data)
    return render(
        request,
        "dashboard/card.html",
        principal,
        title=card.title,
        cards=[(name, card, data)],
    )


def _csv(name: str, data: dict[str, Any]) -> Response:
    if name == "stock":
        summary: StockSummary = data["stock"]
        currencies = sorted({c for w in summary.warehouses for c in w.value})
        return csv_response(
            "stock-per-warehouse.csv",
            ["warehouse", "skus", "on_hand", "reserved", "available"]
            + [f"value_{c}" for c in currencies],
            [
                [
                    w.totals.warehouse,
                    w.totals.skus,
                    w.totals.on_hand,
                    w.totals.reserved,
                    w.totals.available,
                ]
                + [f"{w.value.get(c, 0) / 100:.2f}" for c in currencies]
                for w in summary.warehouses
            ],
        )
    if name == "low-stock":
        return csv_response(
            "low-stock.csv",
            ["sku", "name", "warehouse", "on_hand", "reserved", "available"],
            [
                [row.sku, product, row.warehouse, row.on_hand, row.reserved, row.available]
                for row, product in data["low"]
            ],
        )
    raise NotFound(f"the {name} card has no CSV: stock and low-stock do")
