"""The raw TCP line protocol for sensors, served with asyncio (grammar in docs/telemetry.md).

``AUTH <device-token>`` answered ``ok`` (or ``err <reason>`` and the connection closes), then
``sensor,ts,temp_c[,humidity]`` lines answered ``ok`` or ``err <reason>`` each, in order. Lines
that arrive together are stored in one ingest call. Each connection reads nothing while its batch
is stored or its answers wait to be sent, so a fast sender is slowed down by TCP itself, and a
peer that is silent, never reads, or sends garbage is cut off without touching other connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from storekeeper.accounts.domain import Principal
from storekeeper.errors import DomainError
from storekeeper.telemetry.readings import ReadingIn
from storekeeper.telemetry.transports import (
    DeviceAuthenticator,
    Ingest,
    Unparseable,
    count_rejected,
    parse_line,
    store,
)

log = logging.getLogger(__name__)

_AUTH_LINE_BYTES = 4096  # a device token is a few hundred bytes; readings get the tighter limit
_TOO_LONG = None  # what the splitter yields for a line over the limit


@dataclass(frozen=True, slots=True)
class TcpLimits:
    """What one peer may cost the server; every bound answers ``err <reason>`` before closing."""

    max_connections: int = 1000
    # One address's share: a crowd of reconnecting sockets from one peer cannot take every slot.
    max_connections_per_address: int = 100
    max_line_bytes: int = 512
    auth_timeout_s: float = 3.0  # a sensor sends AUTH at once; a silent socket goes soon
    idle_timeout_s: float = 300.0
    write_timeout_s: float = 30.0
    read_chunk_bytes: int = 64 * 1024  # also the largest batch one connection stores at once


class _LineSplitter:
    """Cuts a byte stream into lines, never holding more than ``max_bytes`` of one line."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._partial = bytearray()
        self._discarding = False  # inside an over-long line already answered

    def feed(self, data: bytes) -> list[bytes | None]:
        """The complete lines in ``data`` (``None`` for each over-long one); blank lines skipped."""
        lines: list[bytes | None] = []
        start = 0
        while (end := data.find(b"\n", start)) != -1:
            piece, start = data[start:end], end + 1
            if self._discarding:
                self._discarding = False
                continue
            self._partial += piece
            self._emit(lines)
        if not self._discarding:
            self._partial += data[start:]
            if len(self._partial) > self.max_bytes:
                lines.append(_TOO_LONG)
                self._partial.clear()
                self._discarding = True
        return lines

    def finish(self) -> list[bytes | None]:
        """The last line of a stream that ended without a newline."""
        lines: list[bytes | None] = []
        if not self._discarding:
            self._emit(lines)
        return lines

    def _emit(self, lines: list[bytes | None]) -> None:
        line = bytes(self._partial).rstrip(b"\r")
        self._partial.clear()
        if len(line) > self.max_bytes:
            lines.append(_TOO_LONG)
        elif line.strip():
            lines.append(line)


class _Closing(Exception):
    """Ends a connection after its last answer was sent."""


class TcpTelemetryServer:
    """The line-protocol listener; ``start`` binds (port 0: any free port), ``stop`` ends all."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        ingest: Ingest,
        auth: DeviceAuthenticator,
        limits: TcpLimits | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self.ingest = ingest
        self.limits = limits or TcpLimits()
        self.auth = auth
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._per_address: dict[str, int] = {}

    @property
    def port(self) -> int:
        """The port actually bound."""
        if self._server is None:
            raise RuntimeError("the telemetry server is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def connections(self) -> int:
        """Connections open right now."""
        return len(self._connections)

    async def start(self) -> None:
        """Listen. ``reuse_port`` lets every worker of ``serve --workers N`` share the port."""
        self._server = await asyncio.start_server(
            self._accept, self._host, self._port, reuse_port=True, backlog=1024
        )
        log.info("telemetry TCP line protocol on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        """Stop listening and end every open connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None  # start_server runs each peer in its own task
        if len(self._connections) >= self.limits.max_connections:
            await self._close(writer, b"err too_many_connections\n")
            return
        peer = writer.get_extra_info("peername")
        address = str(peer[0]) if peer else ""
        if self._per_address.get(address, 0) >= self.limits.max_connections_per_address:
            await self._close(writer, b"err too_many_connections_from_address\n")
            return
        self._per_address[address] = self._per_address.get(address, 0) + 1
        self._connections.add(task)
        try:
            await _Connection(self, reader, writer).run()
        except (_Closing, ConnectionError, TimeoutError):
            pass
        except asyncio.CancelledError:
            # Only ``stop`` cancels a connection; ending quietly spares asyncio's stream callback
            # from logging the cancellation as an error.
            pass
        except Exception:  # one peer's trouble must never reach the server loop
            log.exception("telemetry TCP connection failed")
        finally:
            self._connections.discard(task)
            left = self._per_address.pop(address, 1) - 1
            if left:
                self._per_address[address] = left
            await self._close(writer)

    async def _close(self, writer: asyncio.StreamWriter, farewell: bytes = b"") -> None:
        with contextlib.suppress(ConnectionError, TimeoutError):
            if farewell:
                writer.write(farewell)
                await asyncio.wait_for(writer.drain(), 1.0)
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), 1.0)
        except (ConnectionError, TimeoutError):
            # A peer that reads nothing would keep a closing connection open forever, waiting
            # for its unsent answers to drain: drop them.
            writer.transport.abort()


class _Connection:
    """One peer: authenticate, then read a chunk, store its lines, answer, repeat."""

    def __init__(
        self,
        server: TcpTelemetryServer,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._server = server
        self._limits = server.limits
        self._reader = reader
        self._writer = writer
        self._lines = _LineSplitter(_AUTH_LINE_BYTES)

    async def run(self) -> None:
        """Serve this peer until it leaves, misbehaves or the server stops."""
        try:
            async with asyncio.timeout(self._limits.auth_timeout_s):
                pending = await self._read_lines()
        except TimeoutError:
            await self._send([b"err auth_timeout"])
            return
        if not pending:
            return
        token = await self._authenticate(pending.pop(0))
        self._lines.max_bytes = self._limits.max_line_bytes
        await self._send([b"ok"])
        while True:
            if pending:
                await self._send(await self._answer(token, pending))
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the
                # cancellation that stops the server, leaving this connection running.
                async with asyncio.timeout(self._limits.idle_timeout_s):
                    pending = await self._read_lines()
            except TimeoutError:
                await self._send([b"err idle_timeout"])
                return
            if not pending:
                return

    async def _read_lines(self) -> list[bytes | None]:
        """The next complete lines; empty at the end of the stream."""
        while True:
            chunk = await self._reader.read(self._limits.read_chunk_bytes)
            if not chunk:
                return self._lines.finish()
            lines = self._lines.feed(chunk)
            if lines:
                return lines

    async def _authenticate(self, line: bytes | None) -> str:
        words = (line or b"").split()
        if len(words) != 2 or words[0] != b"AUTH":
            await self._send([b"err auth_required"])
            raise _Closing
        token = words[1].decode("ascii", errors="replace")
        try:
            await self._server.auth.principal(token)
        except DomainError as exc:
            await self._send([f"err {exc.code}".encode()])
            raise _Closing from None
        return token

    async def _answer(self, token: str, lines: list[bytes | None]) -> list[bytes]:
        """One answer per line, in order; the parseable ones are stored in one call."""
        answers: list[bytes] = []
        readings: list[ReadingIn] = []
        slots: list[int] = []
        for line in lines:
            reason = "line_too_long"
            if line is not _TOO_LONG:
                try:
                    readings.append(parse_line(line.decode("utf-8")))
                    slots.append(len(answers))
                    answers.append(b"ok")
                    continue
                except UnicodeDecodeError:
                    reason = "unparseable"
                except Unparseable as exc:
                    reason = exc.reason
            count_rejected("tcp", reason)
            answers.append(f"err {reason}".encode())
        if readings:
            principal = await self._principal(token, answers, slots)
            verdicts = await store(self._server.ingest, principal, readings, transport="tcp")
            for slot, verdict in zip(slots, verdicts, strict=True):
                if not verdict.stored:
                    answers[slot] = f"err {verdict.reason or 'rejected'}".encode()
        return answers

    async def _principal(self, token: str, answers: list[bytes], slots: list[int]) -> Principal:
        """The device, re-proven now and then; a revoked one gets its batch refused and is cut."""
        try:
            return await self._server.auth.principal(token)
        except DomainError as exc:
            refusal = f"err {exc.code}".encode()
            for slot in slots:
                answers[slot] = refusal
            count_rejected("tcp", exc.code, len(slots))
            await self._send(answers)
            raise _Closing from None

    async def _send(self, answers: list[bytes]) -> None:
        """Write the answers; a peer that does not read them within the timeout is dropped."""
        self._writer.write(b"\n".join(answers) + b"\n")
        await asyncio.wait_for(self._writer.drain(), self._limits.write_timeout_s)
