"""A Storekeeper cluster on loopback: N ``storekeeper serve`` processes, workers, nginx in front.

``make cluster`` runs this file: it creates the PostgreSQL database ``storekeeper_cluster``,
migrates it, loads the demo data, starts two API processes, one worker and nginx (rendered from
``deploy/nginx/nginx.conf``), prints the URL and stops everything on Ctrl-C or SIGTERM
(``make cluster-stop``). The scale-out test and the W6 benchmark drive the same ``Cluster``
class, so what they measure is what an operator starts.
"""

# Every command line here is built from this venv's own executables and our own values.
# ruff: noqa: S603

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
NGINX_TEMPLATE = REPO_ROOT / "deploy" / "nginx" / "nginx.conf"
PID_FILE = Path(tempfile.gettempdir()) / "storekeeper-cluster.pid"
LOOPBACK = "127.0.0.1"
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 20.0
_UPSTREAM_SERVER = re.compile(r"^([ \t]*)server api-\d+:8000(.*);[ \t]*$\n?", re.MULTILINE)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def storekeeper_bin() -> str:
    """The ``storekeeper`` console script of the Python running this (the project's venv)."""
    return str(Path(sys.executable).parent / "storekeeper")


def nginx_binary() -> str | None:
    """nginx, also where Debian puts it outside a non-root PATH; None if not installed."""
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).is_file()), None
    )


def render_nginx_conf(
    template: str, *, listen_port: int, api_ports: list[int], directory: Path
) -> str:
    """The deployment's nginx.conf, pointed at loopback processes and files in ``directory``."""
    servers = _UPSTREAM_SERVER.findall(template)
    if not servers:
        raise ValueError("nginx.conf has no 'server api-N:8000' upstream lines to replace")
    indent, options = servers[0]
    upstream = "\n".join(f"{indent}server {LOOPBACK}:{port}{options};" for port in api_ports)
    seen: list[str] = []

    def first_becomes_loopback(match: re.Match[str]) -> str:
        # The first api-N line turns into all the loopback servers, the others go.
        seen.append(match.group(0))
        return upstream + "\n" if len(seen) == 1 else ""

    text = _UPSTREAM_SERVER.sub(first_becomes_loopback, template)
    temp = directory / "temp"
    replacements = {
        "listen 80;": f"listen {LOOPBACK}:{listen_port};",
        "pid /var/run/nginx.pid;": f"pid {directory / 'nginx.pid'};",
        "error_log /dev/stderr warn;": f"error_log {directory / 'error.log'} warn;",
        "access_log /dev/stdout storekeeper;": (
            f"access_log {directory / 'access.log'} storekeeper;\n"
            # Debian's nginx keeps temporary files under /var/lib/nginx: use our own.
            f"    client_body_temp_path {temp / 'body'};\n"
            f"    proxy_temp_path {temp / 'proxy'};"
        ),
    }
    for old, new in replacements.items():
        if old not in text:
            raise ValueError(f"nginx.conf no longer contains {old!r}; update the renderer")
        text = text.replace(old, new)
    return text


def upstream_counts(access_log: Path, *, offset: int = 0) -> collections.Counter[str]:
    """Requests per answering upstream (``host:port``) in nginx's access log, from ``offset``."""
    counts: collections.Counter[str] = collections.Counter()
    with access_log.open("rb") as log:
        log.seek(offset)
        for line in log.read().decode(errors="replace").splitlines():
            found = re.search(r"upstream=(.*?) upstream_status=", line)
            if found and found.group(1) != "-":
                # "a:1, b:2" lists every process tried; the last one answered.
                counts[found.group(1).split(",")[-1].strip()] += 1
    return counts


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as reply:  # noqa: S310 - loopback
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _wait(condition: Callable[[], bool], process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not condition():
        if process.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            raise RuntimeError(
                f"{log.name} did not start:\n{log.read_text(errors='replace')[-3000:]}"
            )
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (graceful: in-flight requests and jobs finish), SIGKILL if it hangs."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Api:
    """One ``storekeeper serve`` process; it keeps its port across restarts (nginx knows it)."""

    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Where it listens."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def upstream(self) -> str:
        """How nginx's ``$upstream_addr`` names it."""
        return f"{LOOPBACK}:{self.port}"


@dataclass
class Cluster:
    """API processes, workers and nginx on loopback, sharing one database and broker.

    ``env`` carries the settings (``STOREKEEPER_DATABASE_URL``, ``STOREKEEPER_BROKER_URL``, …);
    the database must be migrated before ``start``.
    """

    workdir: Path
    env: Mapping[str, str]
    apis: int = 2
    workers: int = 1
    worker_concurrency: int = 4
    nginx_port: int = field(default_factory=free_port)
    api_processes: list[Api] = field(default_factory=list)
    worker_processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    nginx: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """nginx, the cluster's one entry point."""
        return f"http://{LOOPBACK}:{self.nginx_port}"

    @property
    def nginx_dir(self) -> Path:
        """nginx's prefix: config, pid file, access and error logs."""
        return self.workdir / "nginx"

    @property
    def access_log(self) -> Path:
        """nginx's access log, one line per request with ``upstream=<host:port>``."""
        return self.nginx_dir / "access.log"

    def start(self) -> None:
        """Start the API processes, the workers, then nginx."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        for index in range(self.apis):
            api = Api(free_port(), self.workdir / f"api-{index + 1}.log")
            self.api_processes.append(api)
            self.start_api(index)
        for _ in range(self.workers):
            self.start_worker()
        self.start_nginx()

    def start_api(self, index: int) -> Api:
        """(Re)start API process ``index`` on its port; returns once ``/healthz`` answers."""
        api = self.api_processes[index]
        command = [storekeeper_bin(), "serve", "--no-migrate", "--host", LOOPBACK]
        # nginx on loopback is the one proxy whose X-Forwarded-For is believed (docs/security.md).
        env = {"STOREKEEPER_TRUSTED_PROXIES": f'["{LOOPBACK}"]', **self.env}
        with api.log.open("ab") as log:
            api.process = subprocess.Popen(
                [*command, "--port", str(api.port)],
                env=env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait(lambda: _healthy(api.url), api.process, api.log)
        return api

    def kill_api(self, index: int) -> None:
        """``kill -9`` API process ``index``: no graceful shutdown, in-flight requests are cut."""
        process = self.api_processes[index].process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()

    def start_worker(self) -> subprocess.Popen[bytes]:
        """Start one more ``storekeeper worker``; returns once Celery says it is ready."""
        log_path = self.workdir / f"worker-{len(self.worker_processes) + 1}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [storekeeper_bin(), "worker", "--concurrency", str(self.worker_concurrency)],
                env=dict(self.env),
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.worker_processes.append(process)
        _wait(lambda: "ready." in log_path.read_text(errors="replace"), process, log_path)
        return process

    def start_nginx(self) -> None:
        """Render the deployment's nginx.conf for loopback and run nginx in the foreground."""
        nginx = nginx_binary()
        if nginx is None:
            raise RuntimeError("nginx is not installed (make services installs it)")
        (self.nginx_dir / "temp").mkdir(parents=True, exist_ok=True)
        conf = self.nginx_dir / "nginx.conf"
        conf.write_text(
            render_nginx_conf(
                NGINX_TEMPLATE.read_text(),
                listen_port=self.nginx_port,
                api_ports=[api.port for api in self.api_processes],
                directory=self.nginx_dir,
            )
        )
        self.access_log.touch()
        log_path = self.nginx_dir / "nginx.out"
        with log_path.open("ab") as log:
            self.nginx = subprocess.Popen(
                [nginx, "-p", str(self.nginx_dir), "-c", str(conf), "-g", "daemon off;"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _wait(lambda: _healthy(self.url), self.nginx, log_path)

    def pids(self) -> dict[str, list[int]]:
        """Process ids by kind, for CPU accounting."""
        return {
            "api": [a.process.pid for a in self.api_processes if a.process is not None],
            "worker": [w.pid for w in self.worker_processes],
            "nginx": [self.nginx.pid] if self.nginx is not None else [],
        }

    def stop(self) -> None:
        """Stop nginx first (no new requests), then the APIs, then the workers."""
        if self.nginx is not None:
            _stop(self.nginx)
        for api in self.api_processes:
            if api.process is not None:
                _stop(api.process)
        for worker in self.worker_processes:
            _stop(worker)


@contextlib.contextmanager
def running(cluster: Cluster) -> Iterator[Cluster]:
    """``cluster`` started for the block, everything stopped afterwards (also on failure)."""
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def run_cli(env: Mapping[str, str], *args: str) -> None:
    """Run a ``storekeeper`` command with ``env``; raise with its output if it fails."""
    done = subprocess.run(
        [storekeeper_bin(), *args], env=dict(env), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"storekeeper {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def recreate_database(admin_url: str, name: str) -> str:
    """Drop and create PostgreSQL database ``name``; returns its URL."""
    import psycopg  # the project's driver; imported here so --help works without it

    if not re.fullmatch(r"[a-z0-9_]{1,63}", name):
        raise ValueError(f"database name {name!r}: use lower-case letters, digits and _")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def cluster_env(
    database_url: str, broker_url: str, redis_url: str, data_dir: Path, secret_key: str
) -> dict[str, str]:
    """Settings every process of the cluster shares; queue names unique to this run."""
    run = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "STOREKEEPER_DATABASE_URL": database_url,
        "STOREKEEPER_SECRET_KEY": secret_key,
        "STOREKEEPER_BROKER_URL": broker_url,
        "STOREKEEPER_BROKER_PREFIX": f"cluster-{run}",
        "STOREKEEPER_REDIS_URL": redis_url,
        "STOREKEEPER_RATE_LIMIT_PREFIX": f"cluster-{run}:ratelimit",
        "STOREKEEPER_DATA_DIR": str(data_dir),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apis", type=int, default=2, help="API processes (default 2)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--port", type=int, default=8080, help="nginx port (default 8080)")
    parser.add_argument("--database", default="storekeeper_cluster", help="PostgreSQL database")
    parser.add_argument(
        "--pg-admin-url",
        default=os.environ.get("STOREKEEPER_CLUSTER_PG_URL", DEFAULT_PG_ADMIN_URL),
        help="a PostgreSQL URL allowed to create databases",
    )
    parser.add_argument("--broker-url", default=DEFAULT_BROKER_URL)
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL)
    parser.add_argument("--demo-products", type=int, default=50)
    return parser


def _delete_queues(env: Mapping[str, str]) -> None:
    """Remove this run's broker queues: every run has its own prefix, none should linger."""
    from storekeeper.config import Settings
    from storekeeper.tasks.celery_app import delete_broker_queues

    settings = Settings(
        broker_url=env["STOREKEEPER_BROKER_URL"],
        broker_prefix=env["STOREKEEPER_BROKER_PREFIX"],
        _env_file=None,
    )
    with contextlib.suppress(Exception):  # the broker may be down: nothing to clean then
        delete_broker_queues(settings)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Start a cluster with demo data and keep it up until Ctrl-C / SIGTERM."""
    args = _parser().parse_args(argv)
    if not 1 <= args.apis <= 8 or not 1 <= args.workers <= 8:
        sys.exit("--apis and --workers must be within 1..8")
    workdir = Path(tempfile.mkdtemp(prefix="storekeeper-cluster-"))
    database_url = recreate_database(args.pg_admin_url, args.database)
    secret = uuid.uuid4().hex + uuid.uuid4().hex
    env = cluster_env(database_url, args.broker_url, args.redis_url, workdir / "data", secret)
    print(f"cluster: database {args.database}, files in {workdir}", flush=True)
    run_cli(env, "migrate")
    run_cli(env, "demo", "--products", str(args.demo_products))
    # SIGTERM (make cluster-stop) ends the wait below like Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    cluster = Cluster(workdir, env, apis=args.apis, workers=args.workers, nginx_port=args.port)
    PID_FILE.write_text(str(os.getpid()))
    try:
        with running(cluster):
            apis = ", ".join(api.url for api in cluster.api_processes)
            print(
                f"cluster: {cluster.url}  (API processes {apis}; {args.workers} worker(s); "
                f"logs in {workdir})\ncluster: demo accounts as in `storekeeper demo`; "
                "Ctrl-C or `make cluster-stop` stops everything",
                flush=True,
            )
            while True:
                time.sleep(3600)
    except KeyboardInterrupt:
        print("cluster: stopping", flush=True)
    finally:
        PID_FILE.unlink(missing_ok=True)
        _delete_queues(env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
