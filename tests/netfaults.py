"""A TCP proxy on loopback that breaks the network on demand, for sync and crash tests.

It sits between a client and a real server and forwards bytes both ways until told to fail:
``down`` refuses every connection (no network), and a ``budget`` lets only that many bytes of
answers through before it cuts every connection, which lands anywhere in a response: inside
the headers, halfway through a page, or just after a push was applied but before its answer
arrived. ``on_cut`` runs right before the cut, while the client still waits for the bytes, so a
test can kill the client's process at exactly that point.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable


class FlakyProxy:
    """Forward 127.0.0.1:<port> to ``target`` until told to fail."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._down = False
        self._budget: int | None = None
        self._on_cut: Callable[[], None] | None = None
        self._sockets: set[socket.socket] = set()
        self.request_seen = threading.Event()
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(
        self,
        *,
        down: bool = False,
        budget: int | None = None,
        on_cut: Callable[[], None] | None = None,
    ) -> None:
        """From now on refuse connections (``down``) or cut after ``budget`` answer bytes."""
        with self._lock:
            self._down, self._budget, self._on_cut = down, budget, on_cut
            self.request_seen.clear()

    def heal(self) -> None:
        """Forward everything again."""
        self.fail()

    def close(self) -> None:
        self._listener.close()
        self._cut_all()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                down = self._down
            if down:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while data := source.recv(65536):
                cut = False
                if answers:
                    with self._lock:
                        if self._budget is not None:
                            data = data[: self._budget]
                            self._budget -= len(data)
                            cut = self._budget == 0
                else:
                    self.request_seen.set()
                if data:
                    sink.sendall(data)
                if cut:
                    self._cut()
                    return
        except OSError:
            pass
        for sock in (source, sink):  # one side hung up: so does the other
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _cut(self) -> None:
        with self._lock:
            on_cut, self._on_cut, self._budget = self._on_cut, None, None
            self.cuts += 1
        if on_cut is not None:
            on_cut()
        self._cut_all()

    def _cut_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
