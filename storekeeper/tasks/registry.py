"""What the contexts register at start-up: event consumers, jobs and periodic work.

A context's ``handlers.register(registry, ...)`` names its functions; each function names the
dependencies it needs as keyword-only parameters (``collect_payment(args, *, db, gateways)``).
The registry hands every function to ``bind`` (the composition root's dependency injection), so
what is stored here is ready to call: ``job(args)``, ``periodic()``, ``consumer(session, event)``.
No context sees the composition root, and a test binds fakes the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from storekeeper.events.outbox import Event, decode
from storekeeper.events.relay import Consumers, Envelope
from storekeeper.tasks.background import Periodic
from storekeeper.tasks.queue import JobRegistry

E = TypeVar("E", bound=Event)

Bind = Callable[[Callable[..., Any]], Callable[..., Any]]
"""Fills a function's keyword-only dependencies; what it returns takes the remaining arguments."""


@dataclass
class Registry:
    """Every consumer, job and periodic task of this process, bound to its dependencies."""

    bind: Bind
    consumers: Consumers = field(default_factory=Consumers)
    jobs: JobRegistry = field(default_factory=JobRegistry)
    periodic: list[Periodic] = field(default_factory=list)

    def on(self, consumer: str, event_type: type[E], handler: Callable[..., None]) -> None:
        """Have ``consumer`` run ``handler(session, event)`` with each ``event_type`` decoded.

        The handler receives the producer's event dataclass, never the raw payload: a field the
        producer renames fails here, loudly, and mypy sees the field names.
        """
        bound = self.bind(handler)

        def typed(session: Session, envelope: Envelope) -> None:
            bound(session, decode(event_type, envelope.payload))

        typed.__qualname__ = getattr(handler, "__qualname__", repr(handler))
        self.consumers.subscribe(consumer, event_type.type, typed)

    def job(self, name: str, function: Callable[..., None]) -> None:
        """Have ``function(args, **dependencies)`` run every job called ``name``."""
        self.jobs.register(name, self.bind(function))

    def every(self, name: str, every_s: float, function: Callable[..., None]) -> None:
        """Have the leader run ``function(**dependencies)`` every ``every_s`` seconds."""
        self.periodic.append(Periodic(name, every_s, self.bind(function)))
