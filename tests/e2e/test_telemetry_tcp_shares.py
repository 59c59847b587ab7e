"""The telemetry TCP listener gives each address a share of its slots: a crowd of silent sockets
from one address cannot lock other sensors out, and a socket that never sends AUTH goes soon."""

from __future__ import annotations

import asyncio
import time

from storekeeper.bootstrap import Container
from storekeeper.config import Settings
from storekeeper.telemetry.tcp import TcpLimits
from tests.conftest import Actors
from tests.e2e.test_telemetry_transports import (
    LIVENESS_S,
    _eventually,
    _run,
    _sensor_and_token,
    _tcp_server,
)


async def _connect(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))


def test_one_address_cannot_take_every_tcp_slot(container: Container, actors: Actors) -> None:
    sensor, token = _sensor_and_token(container, actors)

    async def scenario() -> None:
        async with _tcp_server(
            container, max_connections=40, max_connections_per_address=10, auth_timeout_s=60
        ) as server:
            crowd = [await _connect(server.port, "127.0.0.1") for _ in range(60)]
            # 50 are refused at once; the 10 admitted wait for their AUTH line.
            reads = [asyncio.ensure_future(reader.readline()) for reader, _ in crowd]
            done: set[asyncio.Future[bytes]] = set()
            deadline = time.monotonic() + LIVENESS_S
            while len(done) < 50 and time.monotonic() < deadline:
                finished, _ = await asyncio.wait(
                    reads, timeout=deadline - time.monotonic(), return_when="FIRST_COMPLETED"
                )
                done = set(finished)
            assert [f.result() for f in done] == [b"err too_many_connections_from_address\n"] * 50
            for read in reads:
                read.cancel()
            assert server.connections == 10
            # Another address is served while the crowd holds its share.
            reader, writer = await _connect(server.port, "127.0.0.2")
            writer.write(f"AUTH {token}\n{sensor},{int(time.time()) - 5},-18.5\n".encode())
            await writer.drain()
            answers = [await asyncio.wait_for(reader.readline(), LIVENESS_S) for _ in range(2)]
            assert answers == [b"ok\n", b"ok\n"]
            writer.close()
            for _, crowd_writer in crowd:
                crowd_writer.close()
            await _eventually(lambda: server.connections == 0, "the crowd's slots come back")

    _run(scenario())


def test_a_socket_that_never_authenticates_is_cut(container: Container) -> None:
    async def scenario() -> None:
        async with _tcp_server(container, auth_timeout_s=0.2) as server:
            reader, writer = await _connect(server.port, "127.0.0.3")
            farewell = await asyncio.wait_for(reader.read(), LIVENESS_S)
            assert farewell == b"err auth_timeout\n"
            writer.close()

    _run(scenario())


def test_pre_auth_time_is_shorter_than_idle_time_by_default() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.telemetry_auth_timeout_s < settings.telemetry_idle_timeout_s
    assert TcpLimits().auth_timeout_s <= settings.telemetry_auth_timeout_s
    assert settings.telemetry_max_connections_per_address < settings.telemetry_max_connections
