"""Transport limits of a real ``storekeeper serve``: header size and time, connections, trusted
proxies, and ports that belong to one deployment (docs/security.md)."""

from __future__ import annotations

import select
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from storekeeper.config import Settings
from tests.conftest import LiveServer, env_for
from tests.payment_sim import storekeeper_script
from tests.processes import free_port, stop, wait_healthy

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def serve(settings: Settings, log_path: Path, **env: str) -> LiveServer:
    """``storekeeper serve`` as ``make run`` starts it, with ``STOREKEEPER_*`` overrides."""
    port = free_port()
    overrides = {f"STOREKEEPER_{name.upper()}": value for name, value in env.items()}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [storekeeper_script(), "serve", "--no-migrate", "--port", str(port)],
            env={**env_for(settings), **overrides},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process, log_path)
    return LiveServer(url, process)


@pytest.fixture
def running(settings: Settings, tmp_path: Path) -> Iterator[list[LiveServer]]:
    """Servers a test starts, stopped at its end."""
    servers: list[LiveServer] = []
    yield servers
    for server in servers:
        stop(server.process)


def _address(server: LiveServer) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").split(":")
    return host, int(port)


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _closed_by_peer(sock: socket.socket, timeout_s: float) -> bytes | None:
    """What the server sent before closing ``sock`` within ``timeout_s``; None if still open."""
    received = b""
    deadline = time.monotonic() + timeout_s
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], left)
        if not readable:
            return None
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    return None


# --- item 3: header size, header time, connections ---------------------------------------------


@sqlite_only
def test_a_huge_request_head_is_refused_431_without_buffering_it(
    settings: Settings, tmp_path: Path, running: list[LiveServer]
) -> None:
    server = serve(settings, tmp_path / "server.log")
    running.append(server)
    rss_before = _rss_kib(server.process.pid)
    sent, answer = 0, b""
    chunk = b"a" * 65536
    with socket.create_connection(_address(server), timeout=30) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        try:
            while sent < 300 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
                if select.select([sock], [], [], 0)[0]:
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = _closed_by_peer(sock, 30) or b""
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    assert sent < 16 * 1024 * 1024  # cut near the 32 KiB cap, not after 300 MiB
    assert _rss_kib(server.process.pid) - rss_before < 32 * 1024
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def _slowloris(sock: socket.socket, stop_sending: threading.Event) -> None:
    try:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        while not stop_sending.wait(0.5):
            sock.sendall(b"X")  # one header byte at a time, never a complete head
    except OSError:
        pass


@sqlite_only
def test_slow_header_clients_neither_stall_others_nor_keep_their_connection(
    settings: Settings, tmp_path: Path, running: list[LiveServer]
) -> None:
    server = serve(settings, tmp_path / "server.log", http_header_timeout_s="3")
    running.append(server)
    stop_sending = threading.Event()
    slow = [socket.create_connection(_address(server), timeout=30) for _ in range(20)]
    senders = [threading.Thread(target=_slowloris, args=(s, stop_sending)) for s in slow]
    for sender in senders:
        sender.start()
    try:
        with httpx.Client(timeout=10) as client:
            assert client.get(f"{server.url}/healthz").status_code == 200
        # ...served while every slow client was still connected:
        assert all(_closed_by_peer(s, 0) is None for s in slow)
        # and then the server cuts each slow client itself, answering 408.
        for sock in slow:
            farewell = _closed_by_peer(sock, 30)
            assert farewell is not None, "the server kept a slow client's connection open"
            assert farewell == b"" or farewell.startswith(b"HTTP/1.1 408")
    finally:
        stop_sending.set()
        for sender in senders:
            sender.join()
        for sock in slow:
            sock.close()


def _answer(sock: socket.socket) -> bytes:
    """One whole response of a keep-alive connection (its head and Content-Length's body)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection"
        received += chunk
    head, body = received.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_the_head_timeout_counts_from_the_previous_response(
    settings: Settings, tmp_path: Path, running: list[LiveServer]
) -> None:
    server = serve(settings, tmp_path / "server.log", http_header_timeout_s="3")
    running.append(server)
    request = b"GET /healthz HTTP/1.1\r\nHost: storekeeper\r\n\r\n"
    with socket.create_connection(_address(server), timeout=30) as sock:
        # Quick heads for longer than the timeout on one connection: none is cut (the guard
        # times each head, not the connection).
        for _ in range(9):
            sock.sendall(request)
            assert _answer(sock).startswith(b"HTTP/1.1 200")
            time.sleep(0.5)
        # A head that never ends, after those: answered 408 and closed.
        sock.sendall(request[:-2])
        farewell = _closed_by_peer(sock, 30)
        assert farewell is not None, "the server kept a stalled head's connection open"
        assert farewell == b"" or farewell.startswith(b"HTTP/1.1 408")


@sqlite_only
def test_connections_beyond_the_cap_are_closed_unread(
    settings: Settings, tmp_path: Path, running: list[LiveServer]
) -> None:
    server = serve(settings, tmp_path / "server.log", http_max_connections="4")
    running.append(server)
    held = [socket.create_connection(_address(server), timeout=30) for _ in range(4)]
    try:
        extra = socket.create_connection(_address(server), timeout=30)
        assert _closed_by_peer(extra, 30) is not None
        assert all(_closed_by_peer(s, 0) is None for s in held)
        extra.close()
    finally:
        for sock in held:
            sock.close()
    # Slots come back once the held connections are gone.
    for _ in range(100):
        try:
            if httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        raise AssertionError("the server never served again")


# --- item 4: trusted proxies -------------------------------------------------------------------


def test_a_forged_forwarded_for_changes_neither_the_rate_limit_nor_the_audit_address(
    settings: Settings, tmp_path: Path, running: list[LiveServer], database_url: str
) -> None:
    server = serve(
        settings,
        tmp_path / "server.log",
        rate_limit_login="5/minute per account, 20/minute per address",
    )
    running.append(server)
    statuses = []
    with httpx.Client(base_url=f"{server.url}/api/v1", timeout=10) as client:
        for n in range(40):
            r = client.post(
                "/auth/token",
                data={"username": f"victim{n}@example.com", "password": "wrong-password-123"},
                headers={"X-Forwarded-For": f"203.0.113.{n}"},
            )
            statuses.append(r.status_code)
        email = f"forger-{uuid.uuid4().hex[:8]}@example.com"
        r = client.post(
            "/auth/register",
            json={"email": email, "password": "correct-horse-battery-staple"},
            headers={"X-Forwarded-For": "198.51.100.7"},
        )
        assert r.status_code == 201, r.text
    # 20 a minute from the one real address: most of the 40 are refused, whatever the header.
    assert statuses.count(429) >= 10, statuses
    engine = create_engine(database_url)
    with engine.connect() as conn:
        addresses = set(conn.scalars(text("SELECT address FROM accounts_audit")).all())
    engine.dispose()
    assert "127.0.0.1" in addresses
    assert not {a for a in addresses if a and (a.startswith(("203.", "198.")))}


@sqlite_only
def test_the_trusted_proxy_names_the_client(
    settings: Settings, tmp_path: Path, running: list[LiveServer], database_url: str
) -> None:
    server = serve(settings, tmp_path / "server.log", trusted_proxies='["127.0.0.1"]')
    running.append(server)
    email = f"proxied-{uuid.uuid4().hex[:8]}@example.com"
    r = httpx.post(
        f"{server.url}/api/v1/auth/register",
        json={"email": email, "password": "correct-horse-battery-staple"},
        # nginx sets the header to the address it saw (deploy/nginx/nginx.conf).
        headers={"X-Forwarded-For": "198.51.100.7"},
        timeout=10,
    )
    assert r.status_code == 201, r.text
    engine = create_engine(database_url)
    with engine.connect() as conn:
        addresses = set(conn.scalars(text("SELECT address FROM accounts_audit")).all())
    engine.dispose()
    assert "198.51.100.7" in addresses


def test_a_wildcard_trusted_proxy_is_refused() -> None:
    with pytest.raises(ValueError, match="STOREKEEPER_TRUSTED_PROXIES"):
        Settings(trusted_proxies=["*"], _env_file=None)  # type: ignore[call-arg]


# --- newcomer: ports belong to one deployment ---------------------------------------------------


def _serve_expecting_failure(settings: Settings, tmp_path: Path, **env: str) -> tuple[int, str]:
    overrides = {f"STOREKEEPER_{name.upper()}": value for name, value in env.items()}
    result = subprocess.run(
        [storekeeper_script(), "serve", "--no-migrate"],
        env={**env_for(settings), **overrides},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.returncode, result.stdout + result.stderr


@sqlite_only
def test_a_second_deployment_cannot_share_the_telemetry_port(
    settings: Settings, tmp_path: Path, running: list[LiveServer]
) -> None:
    telemetry_port = str(free_port())
    first = serve(settings, tmp_path / "first.log", telemetry_port=telemetry_port)
    running.append(first)
    code, output = _serve_expecting_failure(
        settings,
        tmp_path,
        port=str(free_port()),
        telemetry_port=telemetry_port,
        data_dir=str(tmp_path / "second"),
    )
    assert code != 0
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert f"telemetry TCP port 127.0.0.1:{telemetry_port} is taken" in lines[0]
    assert "Traceback" not in output and "Storekeeper on" not in output


@sqlite_only
def test_processes_of_one_deployment_share_the_telemetry_port(
    settings: Settings, tmp_path: Path, running: list[LiveServer]
) -> None:
    telemetry_port = str(free_port())
    for name in ("first", "second"):  # one data dir: one deployment, as in `make cluster`
        running.append(serve(settings, tmp_path / f"{name}.log", telemetry_port=telemetry_port))
    # ...and a program that is not Storekeeper cannot take the port from them.
    with socket.socket() as other, pytest.raises(OSError):
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.bind(("127.0.0.1", int(telemetry_port)))


@sqlite_only
def test_an_http_port_held_by_another_program_is_a_one_line_error(
    settings: Settings, tmp_path: Path
) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = str(other.getsockname()[1])
        code, output = _serve_expecting_failure(settings, tmp_path, port=port)
    assert code != 0
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert f"HTTP port 127.0.0.1:{port} is taken" in lines[0]
    assert "Storekeeper on" not in output
