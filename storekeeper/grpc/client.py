"""A small typed client of the gRPC inventory service, answering with plain dataclasses.

>>> with InventoryClient("127.0.0.1:50051", token) as inventory:
...     inventory.reserve("pick-42", {"SKU-1": 2})

Failures raise ``InventoryError`` with the gRPC status, the server's message and the
machine-readable code the HTTP API would have put in its ``{"detail", "code"}`` body.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType

import grpc

from storekeeper.grpc.gen import inventory_pb2 as pb
from storekeeper.grpc.gen.inventory_pb2_grpc import InventoryStub
from storekeeper.grpc.interceptors import CODE_METADATA_KEY


@dataclass(frozen=True, slots=True)
class Level:
    """Stock of a SKU in one warehouse."""

    warehouse: str
    on_hand: int
    reserved: int
    available: int


@dataclass(frozen=True, slots=True)
class Stock:
    """Stock of a SKU: totals and per warehouse."""

    sku: str
    on_hand: int
    reserved: int
    available: int
    warehouses: tuple[Level, ...]


@dataclass(frozen=True, slots=True)
class Allocation:
    """``qty`` units of ``sku`` reserved in ``warehouse``."""

    sku: str
    warehouse: str
    qty: int


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a Reserve call set aside; ``replayed`` when the ref had been reserved alike before."""

    ref: str
    allocations: tuple[Allocation, ...]
    replayed: bool


@dataclass(frozen=True, slots=True)
class StockChange:
    """One committed change of a stock level, with its position in the server's outbox."""

    sku: str
    warehouse: str
    on_hand: int
    reserved: int
    available: int
    reason: str
    ref: str
    position: int


class InventoryError(Exception):
    """A call failed: gRPC ``status``, the server's ``detail`` and its machine-readable ``code``."""

    def __init__(self, status: grpc.StatusCode, detail: str, code: str) -> None:
        super().__init__(f"{status.name}: {detail} ({code})")
        self.status = status
        self.detail = detail
        self.code = code


def _error(exc: grpc.RpcError) -> InventoryError:
    code = ""
    for entry in exc.trailing_metadata() or ():
        if entry.key == CODE_METADATA_KEY:
            code = entry.value if isinstance(entry.value, str) else entry.value.decode()
    return InventoryError(exc.code(), exc.details() or "", code)


class StockWatch:
    """An open ``WatchStock`` stream: iterate for changes; ``cancel()`` or leave ``with`` to end."""

    def __init__(self, call: grpc.CallIterator[pb.StockChanged]) -> None:
        self._call = call

    def __iter__(self) -> Iterator[StockChange]:
        try:
            for m in self._call:
                yield StockChange(
                    m.sku, m.warehouse, m.on_hand, m.reserved, m.available, m.reason, m.ref,
                    m.position,
                )  # fmt: skip
        except grpc.RpcError as exc:
            if exc.code() is not grpc.StatusCode.CANCELLED:
                raise _error(exc) from exc

    def cancel(self) -> None:
        """Hang up: the server ends the stream."""
        self._call.cancel()  # type: ignore[no-untyped-call]  # untyped in grpc-stubs

    def __enter__(self) -> StockWatch:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cancel()


class InventoryClient:
    """Calls the inventory service at ``target`` (``host:port``) with a bearer ``token``."""

    def __init__(self, target: str, token: str, *, timeout_s: float = 30.0) -> None:
        self._channel = grpc.insecure_channel(target)
        self._stub = InventoryStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout_s = timeout_s

    def get_stock(self, sku: str) -> Stock:
        """On-hand, reserved and available stock of ``sku``, in total and per warehouse."""
        try:
            m = self._stub.GetStock(
                pb.GetStockRequest(sku=sku), timeout=self._timeout_s, metadata=self._metadata
            )
        except grpc.RpcError as exc:
            raise _error(exc) from exc
        levels = tuple(
            Level(lv.warehouse, lv.on_hand, lv.reserved, lv.available) for lv in m.warehouses
        )
        return Stock(m.sku, m.on_hand, m.reserved, m.available, levels)

    def reserve(
        self,
        ref: str,
        lines: Mapping[str, int],
        *,
        ship_to: tuple[float, float] | None = None,
        warehouses: Collection[str] = (),
        ttl_s: int = 0,
    ) -> Reservation:
        """Reserve ``lines`` (SKU → units) under ``ref``, all or nothing; safe to retry.
        With ``ttl_s`` the server releases it that many seconds later if still held."""
        request = pb.ReserveRequest(
            ref=ref,
            lines=[pb.Line(sku=sku, qty=qty) for sku, qty in lines.items()],
            warehouses=list(warehouses),
            ttl_s=ttl_s,
        )
        if ship_to is not None:
            request.ship_to.CopyFrom(pb.Point(lat=ship_to[0], lon=ship_to[1]))
        try:
            m = self._stub.Reserve(request, timeout=self._timeout_s, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise _error(exc) from exc
        allocations = tuple(Allocation(a.sku, a.warehouse, a.qty) for a in m.allocations)
        return Reservation(m.ref, allocations, m.replayed)

    def release(self, ref: str) -> int:
        """Give back what is still reserved under ``ref``; returns the units released."""
        try:
            m = self._stub.Release(
                pb.ReleaseRequest(ref=ref), timeout=self._timeout_s, metadata=self._metadata
            )
        except grpc.RpcError as exc:
            raise _error(exc) from exc
        return m.released

    def watch_stock(self, skus: Collection[str] = (), warehouse: str | None = None) -> StockWatch:
        """Stream the stock changes that commit from now on (of ``skus``, in ``warehouse``).

        Returns once the server has opened the stream: every change committed after that comes.
        """
        call = self._stub.WatchStock(
            pb.WatchStockRequest(skus=list(skus), warehouse=warehouse or ""),
            metadata=self._metadata,
        )
        try:
            call.initial_metadata()  # blocks until the server opened the stream, or it failed
            if not call.is_active() and call.code() is not grpc.StatusCode.OK:
                raise _error(call)  # type: ignore[arg-type]  # a finished call is an RpcError
        except grpc.RpcError as exc:
            raise _error(exc) from exc
        return StockWatch(call)

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> InventoryClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
