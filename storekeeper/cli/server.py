"""Long-running processes: the HTTP API, the Celery worker, gRPC, the payment simulator; migrate."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
from typing import Annotated

import typer

from storekeeper.cli.common import console, migrate_schema, schema_revision
from storekeeper.config import Settings


def migrate() -> None:
    """Bring the database schema up to date (safe to run again)."""
    settings = Settings()
    migrate_schema(settings)
    console.print(f"[green]database at revision[/green] {schema_revision(settings)}")


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _port_taken(host: str, port: int) -> str | None:
    """Why ``host:port`` cannot be listened on, or None if it is free right now.

    Bound without ``SO_REUSEPORT``: a port that another process shares with ``SO_REUSEPORT``
    (another deployment's telemetry listener) counts as taken.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return f"cannot resolve {host}: {exc.strerror}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As uvicorn and asyncio bind: a port in TIME_WAIT after a restart is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _claim_telemetry_port(settings: Settings) -> str | None:
    """Make the telemetry port this deployment's for as long as this process lives.

    The workers of every ``serve`` of one deployment (one data dir) share the port with
    ``SO_REUSEPORT``; each ``serve`` holds a shared lock on a file in the data dir. The first
    one (the lock free) checks that nobody else listens, then keeps a bound, never listening
    ``SO_REUSEPORT`` socket without ``SO_REUSEADDR``: any other program or deployment that
    binds the port later fails, while this deployment's listeners can join. Returns why the
    port cannot be had, or None.
    """
    port = settings.telemetry_port
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock = (settings.data_dir / f"telemetry-{port}.lock").open("a")
    _held.append(lock)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fcntl.flock(lock, fcntl.LOCK_SH)  # another serve of this deployment has the port
        return None
    reason = _port_taken(settings.host, port)
    if reason is None:
        infos = socket.getaddrinfo(settings.host, port, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        holder = socket.socket(family, kind, proto)
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            holder.bind(address)
            _held.append(holder)
        except OSError:  # e.g. connections of the last run in TIME_WAIT: no guard, no harm
            holder.close()
    fcntl.flock(lock, fcntl.LOCK_SH)
    return reason


_held: list[object] = []  # the lock file and guard socket, kept open until the process ends


def _check_ports(settings: Settings, host: str, port: int) -> None:
    """End with one line and status 1 if the HTTP or the telemetry port is held by another."""
    taken: list[tuple[str, str, int, str]] = []
    reason = _port_taken(host, port)
    if reason is not None:
        taken.append(("HTTP", host, port, reason))
    elif settings.telemetry_port and (not settings.only or "telemetry" in settings.only):
        reason = _claim_telemetry_port(settings)
        if reason is not None:
            taken.append(("telemetry TCP", settings.host, settings.telemetry_port, reason))
    for what, where, number, why in taken:
        console.print(
            f"[red]storekeeper serve: the {what} port {where}:{number} is taken ({why})[/red]; "
            "stop what holds it or choose another port",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)


def serve(
    host: Annotated[str | None, typer.Option(help="Listen address [STOREKEEPER_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [STOREKEEPER_PORT]")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
    auto_migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Migrate before serving")
    ] = True,
    only: Annotated[
        str | None,
        typer.Option(
            help="Serve only these contexts, comma-separated (accounts, catalog, inventory, "
            "ordering, reporting, sync, telemetry); see docs/scaling.md [STOREKEEPER_ONLY]",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from storekeeper.cli.transport import GuardedHttpToolsProtocol
    from storekeeper.observability import exposition, logs

    if only is not None:
        # The app factory runs in uvicorn's process(es) and reads the environment.
        os.environ["STOREKEEPER_ONLY"] = json.dumps([c.strip() for c in only.split(",")])
    settings = Settings()
    log_config = logs.configure()  # uvicorn applies it again in each worker process
    if workers > 1 or exposition.multiprocess_dir():
        # Workers share their metrics through files; the variable must be set before any
        # worker imports prometheus_client (docs/observability.md).
        metrics_dir = (exposition.multiprocess_dir() or settings.data_dir / "metrics").resolve()
        exposition.reset_multiprocess_dir(metrics_dir)
        os.environ[exposition.MULTIPROC_ENV] = str(metrics_dir)
    # uvicorn raises SIGTERM again once its graceful shutdown is done; that shutdown was clean,
    # so leave with status 0 (what supervisors expect) instead of dying of the signal.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    host, port = host or settings.host, port or settings.port
    _check_ports(settings, host, port)
    if auto_migrate:
        migrate_schema(settings)
    base = f"http://{host}:{port}"
    console.print(f"Storekeeper on {base}  (console: {base}/, API docs: {base}/docs)")
    uvicorn.run(
        "storekeeper.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_level="info",
        log_config=log_config,
        # Transport limits (docs/security.md): httptools with a guard (it has no head cap of its
        # own); parsing in C, not h11's Python, is about half a cached product read (bench W1).
        http=GuardedHttpToolsProtocol,
        backlog=settings.http_backlog,
        timeout_keep_alive=settings.http_keep_alive_s,
        # X-Forwarded-For is believed from the listed proxies only (none when serving directly).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or "",
        # On SIGTERM: stop accepting, let requests in flight finish for this long.
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )


def worker(
    concurrency: Annotated[int, typer.Option(min=1, max=64, help="Jobs run at once")] = 4,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="Serve /metrics on this port, 0 = off [STOREKEEPER_METRICS_PORT]"
        ),
    ] = None,
) -> None:
    """Run a Celery worker (distributed mode): delivers events and runs jobs from the broker.

    Needs STOREKEEPER_BROKER_URL (amqp://… or redis://…). In embedded mode `serve` runs the
    jobs itself and no worker is needed.
    """
    from storekeeper.bootstrap import bootstrap, run_worker
    from storekeeper.observability import exposition, logs

    settings = Settings()
    logs.configure_celery()
    if not settings.broker_url:
        console.print(
            "[red]storekeeper worker needs STOREKEEPER_BROKER_URL[/red] (amqp://… or redis://…); "
            "without a broker, `storekeeper serve` runs jobs in-process."
        )
        raise typer.Exit(2)
    container = bootstrap(settings)
    port = settings.metrics_port if metrics_port is None else metrics_port
    if port:
        exposition.serve_in_background(container.db, host=settings.host, port=port)
    try:
        run_worker(container, concurrency=concurrency)
    finally:
        container.close()


def grpc_serve(
    host: Annotated[str | None, typer.Option(help="Listen address [STOREKEEPER_GRPC_HOST]")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [STOREKEEPER_GRPC_PORT]")] = None,
    threads: Annotated[int, typer.Option(min=2, max=256, help="Calls served at once")] = 16,
    grace: Annotated[
        float, typer.Option(min=0, help="Seconds calls in flight may finish on SIGTERM")
    ] = 5.0,
) -> None:
    """Serve the gRPC inventory service (docs/grpc.md).

    Serves only: the outbox relay and jobs run in `serve` or `worker`. Run `migrate` first.
    """
    from storekeeper.bootstrap import bootstrap
    from storekeeper.grpc import server
    from storekeeper.observability import logs

    settings = Settings()
    logs.configure()
    host, port = host or settings.grpc_host, port or settings.grpc_port
    container = bootstrap(settings)
    try:
        console.print(f"Storekeeper gRPC inventory service on {host}:{port}")
        server.serve(
            db=container.db,
            authenticator=container.authenticator,
            host=host,
            port=port,
            threads=threads,
            grace_s=grace,
            recheck_s=settings.live_recheck_s,
            max_watches_per_account=settings.grpc_max_watches_per_account,
        )
    except OSError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    finally:
        container.close()


def payment_sim(
    host: Annotated[str, typer.Option(help="Listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Listen port")] = 8099,
    latency_ms: Annotated[int, typer.Option(min=0, help="Delay before each /v1 answer")] = 0,
    jitter_ms: Annotated[int, typer.Option(min=0, help="Extra random delay, up to this")] = 0,
    failure_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of /v1 calls answered 503")
    ] = 0.0,
    decline_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of authorizations declined")
    ] = 0.0,
    seed: Annotated[int | None, typer.Option(help="Seed of the fault and decline draws")] = None,
    outage: Annotated[
        bool, typer.Option("--outage/--no-outage", help="Start with every /v1 call failing")
    ] = False,
) -> None:
    """Run a payment gateway simulator with fault injection (point STOREKEEPER_PAYMENT_URL at it).

    State is kept in memory. Change faults while it runs: see docs/payments.md.
    """
    from storekeeper.payments import sim

    config = sim.SimConfig(
        latency_ms=latency_ms,
        jitter_ms=jitter_ms,
        failure_rate=failure_rate,
        decline_rate=decline_rate,
        seed=seed,
        outage=outage,
    )
    console.print(f"payment simulator on http://{host}:{port}  (stats: /_sim/stats)")
    sim.serve_sim(host, port, config)
