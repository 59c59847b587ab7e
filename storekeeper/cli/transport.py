"""What one HTTP peer may cost ``storekeeper serve``: header size, header time, connections.

uvicorn's httptools protocol (what ``serve`` runs) with a guard: a request
head larger than ``http_max_header_bytes`` is answered 431 and the connection closed (httptools
has no such cap of its own); a head not complete within ``http_header_timeout_s`` of the
connection opening (or of the previous response) is answered 408 and closed, so a slowloris
client that trickles one header byte every few seconds holds its slot for a bounded time; and a
worker closes, unread, every connection beyond ``http_max_connections``, so half-open sockets
cannot exhaust file descriptors.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Bounds on one HTTP peer (settings ``STOREKEEPER_HTTP_*``, docs/security.md)."""

    max_header_bytes: int = 32 * 1024
    header_timeout_s: float = 10.0
    max_connections: int = 800


@functools.cache
def limits() -> HttpLimits:
    """This process's limits, read once from the settings (uvicorn workers read them too)."""
    from storekeeper.config import Settings

    settings = Settings()
    return HttpLimits(
        max_header_bytes=settings.http_max_header_bytes,
        header_timeout_s=settings.http_header_timeout_s,
        max_connections=settings.http_max_connections,
    )


_TIMER_SLACK_S = 0.01
"""A timer may run this much before its time (the loop's clock resolution, and then some)."""


def _refusal(status: int, reason: bytes) -> bytes:
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (status, reason, len(reason), reason)
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, bounded in head size, head time and connections per worker.

    What ``storekeeper serve`` runs: httptools parses in C, and h11's pure-Python parsing was
    about half of a cached product read's CPU (bench W1: 0.20 of the bare Starlette ceiling
    with h11, ~0.8 with httptools, whose ceiling runs on httptools too). httptools itself has no
    cap on a head's size, so the guard counts a head's bytes as they arrive, refuses past the
    cap with 431 before the next read, and times the head out with 408.
    """

    _awaiting_head = True  # the next bytes are (part of) a request head
    _head_timer: asyncio.TimerHandle | None = None
    _head_since: float | None = None  # when the awaited head's time began; None: none awaited
    _head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Refuse a connection over the cap at once; otherwise start the head timer."""
        super().connection_made(transport)
        if len(self.connections) > limits().max_connections:
            transport.abort()  # unread: no 503 written to a peer that may never read it
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the head timer with the connection."""
        self._stop_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        """The next head's time begins now.

        One timer per connection, moved on only when it fires: a timer set and cancelled for
        every request (``call_later`` and ``cancel`` around each) was ~4 % of the CPU of a
        cached product read (bench W1's profile); a float per request is all this costs.
        """
        self._head_since = self.loop.time()
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(limits().header_timeout_s, self._head_due)

    def _disarm_head_timer(self) -> None:
        """No head is awaited (one is being answered); the timer, if it fires, does nothing."""
        self._head_since = None

    def _stop_head_timer(self) -> None:
        self._head_since = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_due(self) -> None:
        """The timer fired: time the awaited head out, or wait for its own deadline."""
        self._head_timer = None
        if self._head_since is None:
            return  # a request is being answered: the next response arms the timer again
        deadline = self._head_since + limits().header_timeout_s
        if deadline - self.loop.time() > _TIMER_SLACK_S:  # a later head than the timer's
            self._head_timer = self.loop.call_at(deadline, self._head_due)
            return
        self._head_timed_out()

    def _refuse(self, status: int, reason: bytes) -> None:
        self._stop_head_timer()
        self.transport.write(_refusal(status, reason))
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        """Count the head's bytes; past the cap, refuse before reading more."""
        if self._awaiting_head:
            self._head_bytes += len(data)
        super().data_received(data)
        over = self._awaiting_head and self._head_bytes > limits().max_header_bytes
        if over and not self.transport.is_closing():
            self._refuse(431, b"Request Header Fields Too Large")

    def on_headers_complete(self) -> None:
        """A whole head arrived: its timer and count stop."""
        self._awaiting_head = False
        self._head_bytes = 0
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The request's body is read: what comes next is the next request's head."""
        self._awaiting_head = True
        super().on_message_complete()

    def on_response_complete(self) -> None:
        """The next request's head gets its own time, from now."""
        super().on_response_complete()
        if not self.transport.is_closing() and self._awaiting_head:
            self._head_bytes = 0
            self._arm_head_timer()

    def _head_timed_out(self) -> None:
        answering = self.cycle is not None and not self.cycle.response_complete
        if self._awaiting_head and not answering and not self.transport.is_closing():
            # An idle keep-alive connection is closed by uvicorn's shorter keep-alive timer
            # first; this one fires for a head that started but never finished.
            self._refuse(408, b"Request Timeout")
