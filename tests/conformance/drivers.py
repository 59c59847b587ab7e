"""Two clients behind one interface, so one conformance suite runs against both.

``ClientDriver`` is what a sync client of docs/sync.md must let a clerk do: sign in to a
warehouse, sell, receive and count offline (and, for a manager, edit a product), sync, and show
stock, products, the queue and the server's verdicts. ``PythonDriver`` is
``storekeeper_client.Replica`` on a SQLite file, reaching the server through a ``FlakyProxy``
(offline = the proxy refuses connections). ``PwaDriver`` is the clerk app at ``/app/`` in
Chromium: signed in through its own form, then driven through its own ``Replica`` module
(``/app/replica.js``) on its real IndexedDB store; offline = the browser context's network cut.

Both record the raw status the server answered for every pushed mutation (``wire()``): a
replica shows a ``duplicate`` as the verdict it repeats, so only the wire tells them apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

import httpx
from playwright.sync_api import Browser, BrowserContext, Error, Page, Response, Route, expect

from storekeeper_client import Offline, Replica
from tests.conftest import Actor, LiveServer
from tests.netfaults import FlakyProxy

PUSH = "/api/v1/sync/push"


class Unreachable(Exception):
    """The client could not reach the server (or lost its answer): everything stays queued."""


class ClientDriver(Protocol):
    """One clerk's device on one warehouse."""

    name: str

    def attach(self) -> None:
        """Sign in and choose the warehouse; the first sync pulls the warehouse's copy."""

    def sync(self) -> None:
        """Push the queue, then pull. Raises ``Unreachable`` with no network."""

    def go_offline(self) -> None:
        """Cut the network."""

    def go_online(self) -> None:
        """Restore the network."""

    def sell(self, sku: str, qty: int) -> str:
        """Queue a sale; returns the mutation id."""

    def receive(self, sku: str, qty: int) -> str:
        """Queue a receipt; returns the mutation id."""

    def count(self, sku: str, counted: int) -> str:
        """Queue a count against the on-hand the client shows right now; returns the id."""

    def edit_product(self, sku: str, **fields: Any) -> str:
        """Queue a ``product.update`` of ``fields`` (last writer wins); returns the id."""

    def stock(self, sku: str) -> tuple[int, int]:
        """(on-hand as shown, pending changes applied; number of pending changes)."""

    def product(self, sku: str) -> tuple[str, int]:
        """(name, price in cents) as shown: the server copy with pending edits applied."""

    def pending(self) -> int:
        """Mutations queued and not yet answered."""

    def verdicts(self) -> dict[str, str]:
        """The stored verdict of every answered mutation: id -> status."""

    def lost_fields(self, mutation_id: str) -> list[str]:
        """The fields of an answered product edit that lost to a later edit (``[]`` if none)."""

    def wire(self) -> list[tuple[str, str]]:
        """(mutation id, raw status) of every push result received, in order."""

    def lose_next_push_answer(self) -> None:
        """The next push reaches the server, but its answer never reaches the client."""

    def close(self) -> None:
        """Release the browser context / file."""


class PythonDriver:
    """``storekeeper_client.Replica`` on a temporary SQLite file, through a flaky proxy."""

    name = "python"

    def __init__(self, server: LiveServer, actor: Actor, path: Path) -> None:
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        self._proxy = FlakyProxy((host, int(port)))
        self._token = actor.headers["Authorization"].removeprefix("Bearer ")
        self._path = path
        self._wire: list[tuple[str, str]] = []
        self._replica: Replica | None = None

    @property
    def replica(self) -> Replica:
        if self._replica is None:
            raise RuntimeError("attach() first")
        return self._replica

    def _open(self) -> Replica:
        replica = Replica(
            self._path, self._proxy.url, self._token, scope="warehouse:BER", timeout=5
        )
        # Test instrumentation only: note the raw push results as they arrive.
        http = replica._http
        assert http is not None
        http.event_hooks["response"].append(self._note)
        return replica

    def _note(self, response: httpx.Response) -> None:
        if response.request.url.path == PUSH and response.status_code == 200:
            response.read()
            self._wire += [(r["id"], r["status"]) for r in response.json()["results"]]

    def attach(self) -> None:
        self._replica = self._open()
        self.sync()

    def sync(self) -> None:
        try:
            self.replica.sync()
        except Offline as exc:
            raise Unreachable(str(exc)) from exc

    def _reopen(self) -> None:
        # A fresh HTTP client: no pooled connection outlives the change of network.
        self.replica.close()
        self._replica = self._open()

    def go_offline(self) -> None:
        self._proxy.fail(down=True)
        self._reopen()

    def go_online(self) -> None:
        self._proxy.heal()
        self._reopen()

    def sell(self, sku: str, qty: int) -> str:
        return self.replica.sell(sku, qty)

    def receive(self, sku: str, qty: int) -> str:
        return self.replica.receive(sku, qty)

    def count(self, sku: str, counted: int) -> str:
        return self.replica.count(sku, counted)

    def edit_product(self, sku: str, **fields: Any) -> str:
        return self.replica.update_product(sku, **fields)

    def product(self, sku: str) -> tuple[str, int]:
        shown = self.replica.product(sku)
        assert shown is not None, f"the replica knows nothing of {sku}"
        return str(shown["name"]), int(shown["price_cents"])

    def stock(self, sku: str) -> tuple[int, int]:
        shown = self.replica.stock(sku)
        assert shown is not None, f"the replica knows nothing of {sku}"
        return shown.on_hand, shown.pending

    def pending(self) -> int:
        return len(self.replica.pending())

    def verdicts(self) -> dict[str, str]:
        return {v.id: v.status for v in self.replica.results()}

    def lost_fields(self, mutation_id: str) -> list[str]:
        (verdict,) = [v for v in self.replica.results() if v.id == mutation_id]
        return list(verdict.detail.get("lost_fields", []))

    def wire(self) -> list[tuple[str, str]]:
        return list(self._wire)

    def lose_next_push_answer(self) -> None:
        # The push is the first request of a sync: cut after its answer's first byte.
        self._proxy.fail(budget=1)

    def close(self) -> None:
        if self._replica is not None:
            self._replica.close()
        self._proxy.close()


# Runs inside the page: the app's own Replica module on the app's IndexedDB store.
_IN_APP = """async ([op, args]) => {
  const { Replica } = await import("/app/replica.js");
  globalThis.__conformance ??= await Replica.open();
  const r = globalThis.__conformance;
  const warehouse = await r.warehouse();
  const shown = async (sku) => await r.store.stock(sku, warehouse);
  switch (op) {
    case "sync":
      try { await r.sync(); return null; }
      catch (error) { return `${error.constructor.name}: ${error.message}`; }
    case "sell": return (await r.sell(args[0], args[1])).id;
    case "receive": return (await r.receive(args[0], args[1])).id;
    case "count": {
      // as the app's count form: seen = the on-hand shown when the line is entered
      const seen = (await shown(args[0])).on_hand;
      return (await r.count(args[0], args[1], seen)).id;
    }
    case "edit": return (await r.editProduct(args[0], args[1])).id;
    case "product": { const p = await r.product(args[0]); return p && [p.name, p.price_cents]; }
    case "stock": { const s = await shown(args[0]); return [s.on_hand, s.pending]; }
    case "pending": return (await r.store.queued()).length;
    case "verdicts": return (await r.store.verdicts()).map((v) => [v.id, v.status]);
    case "lost": {
      const v = (await r.store.verdicts()).find((v) => v.id === args[0]);
      if (!v) throw new Error(`no verdict for ${args[0]}`);
      return v.detail.lost_fields ?? [];
    }
  }
  throw new Error(`unknown op ${op}`);
}"""


class PwaDriver:
    """The clerk app at /app/ in its own Chromium context (its own IndexedDB)."""

    name = "pwa"

    def __init__(self, browser: Browser, server: LiveServer, actor: Actor) -> None:
        self._server = server
        self._actor = actor
        self.context: BrowserContext = browser.new_context(service_workers="allow")
        self.context.set_default_timeout(15_000)
        self.page: Page = self.context.new_page()
        self.problems: list[str] = []
        self._wire: list[tuple[str, str]] = []
        self._reading = 0  # push answers whose body is being read (see wire)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("console", self._console)
        self.page.on("response", self._note)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.problems.append(message.text)

    def _note(self, response: Response) -> None:
        if response.url.endswith(PUSH) and response.status == 200:
            self._reading += 1
            try:
                results = json.loads(response.body())["results"]
            except Error:
                return  # the body never arrived (the answer was lost on purpose)
            finally:
                self._reading -= 1
            self._wire += [(r["id"], r["status"]) for r in results]

    def _run(self, op: str, *args: Any) -> Any:
        return self.page.evaluate(_IN_APP, [op, list(args)])

    def attach(self) -> None:
        page = self.page
        page.goto(self._server.url + "/app/")
        page.wait_for_selector("body[data-ready]")
        page.get_by_label("E-mail").fill(self._actor.email)
        page.get_by_label("Password").fill(self._actor.password)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Use this warehouse").click()
        expect(page.locator("#where")).to_have_text("Warehouse BER")
        expect(page.locator("#banner")).to_contain_text("Online")
        self.sync()

    def sync(self) -> None:
        failure = self._run("sync")
        if failure is None:
            return
        if failure.startswith("Offline"):
            raise Unreachable(failure)
        raise AssertionError(f"the app's sync failed: {failure}")

    def go_offline(self) -> None:
        self.context.set_offline(True)

    def go_online(self) -> None:
        self.context.set_offline(False)

    def sell(self, sku: str, qty: int) -> str:
        return str(self._run("sell", sku, qty))

    def receive(self, sku: str, qty: int) -> str:
        return str(self._run("receive", sku, qty))

    def count(self, sku: str, counted: int) -> str:
        return str(self._run("count", sku, counted))

    def edit_product(self, sku: str, **fields: Any) -> str:
        return str(self._run("edit", sku, fields))

    def product(self, sku: str) -> tuple[str, int]:
        shown = self._run("product", sku)
        assert shown is not None, f"the app knows nothing of {sku}"
        return str(shown[0]), int(shown[1])

    def stock(self, sku: str) -> tuple[int, int]:
        on_hand, pending = self._run("stock", sku)
        return int(on_hand), int(pending)

    def pending(self) -> int:
        return int(self._run("pending"))

    def verdicts(self) -> dict[str, str]:
        return {str(i): str(status) for i, status in self._run("verdicts")}

    def lost_fields(self, mutation_id: str) -> list[str]:
        return [str(name) for name in self._run("lost", mutation_id)]

    def wire(self) -> list[tuple[str, str]]:
        # The app syncs by itself too (a retry after a failed push, the timer), and a push answer
        # it got is noted by _note, which reads the body in another round trip: let any such
        # reading finish first.
        while self._reading:
            self.page.wait_for_timeout(20)
        return list(self._wire)

    def lose_next_push_answer(self) -> None:
        def lose(route: Route) -> None:
            route.fetch()  # the push reaches the server and is applied...
            route.abort()  # ...and the app never sees the answer

        self.page.route(f"**{PUSH}", lose, times=1)

    def close(self) -> None:
        self.context.close()
