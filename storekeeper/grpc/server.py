"""Running the gRPC inventory service: a thread-pool server, stopped gracefully on SIGTERM.

Handlers are plain sync functions over the sync database code, one thread per call in flight
(``threads``, like the HTTP server's thread pool). This process serves only: the outbox relay
and the jobs run in ``storekeeper serve`` / ``storekeeper worker``, and ``WatchStock`` reads the
outbox table itself, so it needs no relay here.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import FrameType

import grpc

from storekeeper.accounts.authentication import Authenticator
from storekeeper.db import Database
from storekeeper.grpc.gen.inventory_pb2_grpc import add_InventoryServicer_to_server
from storekeeper.grpc.interceptors import ErrorInterceptor
from storekeeper.grpc.servicer import InventoryService

log = logging.getLogger(__name__)

DEFAULT_THREADS = 16
DEFAULT_GRACE_S = 5.0


@dataclass
class RunningServer:
    """A started gRPC server and the port it listens on."""

    server: grpc.Server
    port: int
    service: InventoryService

    def stop(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Refuse new calls, let calls in flight finish for up to ``grace_s``, end watch streams."""
        self.service.stopping.set()
        self.server.stop(grace_s).wait()


def start(
    *,
    db: Database,
    authenticator: Authenticator,
    host: str = "127.0.0.1",
    port: int = 50051,
    threads: int = DEFAULT_THREADS,
    watch_poll_s: float = 0.2,
    recheck_s: float = 30.0,
    max_watches_per_account: int = 10,
) -> RunningServer:
    """Start serving ``db``'s stock on ``host:port`` (port 0: any free port).

    ``WatchStock`` streams re-prove their caller every ``recheck_s`` and one account holds at
    most ``max_watches_per_account`` of them (settings ``STOREKEEPER_LIVE_RECHECK_S`` and
    ``STOREKEEPER_GRPC_MAX_WATCHES_PER_ACCOUNT``).
    """
    service = InventoryService(
        db=db,
        authenticator=authenticator,
        max_watchers=max(1, threads // 2),
        watch_poll_s=watch_poll_s,
        recheck_s=recheck_s,
        max_watches_per_account=max_watches_per_account,
    )
    server = grpc.server(
        ThreadPoolExecutor(max_workers=threads, thread_name_prefix="grpc"),
        interceptors=[ErrorInterceptor()],
        options=[("grpc.so_reuseport", 0)],  # a second server on a taken port must fail
    )
    add_InventoryServicer_to_server(service, server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpcio raises instead of returning 0 on some versions
        raise OSError(f"cannot listen on {address}: {exc}") from exc
    if bound == 0:
        raise OSError(f"cannot listen on {address}")
    server.start()
    return RunningServer(server, bound, service)


def serve(
    *,
    db: Database,
    authenticator: Authenticator,
    host: str,
    port: int,
    threads: int = DEFAULT_THREADS,
    grace_s: float = DEFAULT_GRACE_S,
    recheck_s: float = 30.0,
    max_watches_per_account: int = 10,
) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully (calls in flight may finish)."""
    running = start(
        db=db,
        authenticator=authenticator,
        host=host,
        port=port,
        threads=threads,
        recheck_s=recheck_s,
        max_watches_per_account=max_watches_per_account,
    )
    stop_requested = threading.Event()

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %s: stopping the gRPC server", signal.Signals(signum).name)
        stop_requested.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info("gRPC inventory service on %s:%s", host, running.port)
    try:
        stop_requested.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        running.stop(grace_s)
