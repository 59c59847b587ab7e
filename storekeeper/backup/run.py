"""Backing up a running installation and restoring it into an empty place.

A restore checks everything before it touches the target (the manifest, the dump's checksum,
that this code knows the backup's schema, that the target is empty), migrates an older backup
up to this code's schema and then starts a new outbox generation, which makes every replica that
synced before the restore start over instead of keeping changes the restored database never had.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sqlalchemy import create_engine

from storekeeper import __version__
from storekeeper.backup import postgres, sqlite
from storekeeper.backup.manifest import (
    DUMP_FILES,
    MANIFEST,
    SECRET_FILE,
    Backend,
    BackupError,
    Facts,
    Manifest,
    Progress,
    sha256,
)
from storekeeper.config import Settings
from storekeeper.db import utcnow
from storekeeper.events import restores


class TargetNotEmpty(BackupError):
    """The place a restore would write to holds data already."""

    def __init__(self, found: list[str]) -> None:
        super().__init__("the restore target is not empty: " + "; ".join(found))
        self.found = found


class _Copier(Protocol):
    """What ``sqlite`` and ``postgres`` each provide for their kind of database."""

    def dump(self, url: str, *, target: Path, progress: Progress | None = None) -> Facts: ...

    def restore(self, url: str, *, dump_path: Path, progress: Progress | None = None) -> None: ...

    def describe(self, url: str) -> list[str]: ...

    def clear(self, url: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Restored:
    """The outcome of a restore: the backup's manifest, the schema it ended at, the generation."""

    manifest: Manifest
    revision: str | None
    migrated: bool
    generation: str


def backend_of(settings: Settings) -> Backend:
    """The kind of database the settings name."""
    url = settings.effective_database_url
    return "postgresql" if url.startswith("postgresql") else "sqlite"


def backup(settings: Settings, *, to: Path, force: bool, progress: Progress | None) -> Manifest:
    """Write a backup of the configured database into the directory ``to``."""
    backend = backend_of(settings)
    if to.exists() and not to.is_dir():
        raise BackupError(f"{to} is a file; a backup is a directory")
    if to.is_dir() and any(to.iterdir()):
        if not force:
            raise BackupError(f"{to} exists and is not empty (--force overwrites the backup in it)")
        for name in (*DUMP_FILES.values(), SECRET_FILE):
            (to / name).unlink(missing_ok=True)
    created = not to.exists()
    to.mkdir(parents=True, exist_ok=True)
    # Without a manifest a backup is incomplete: remove an old one first, write the new one last.
    (to / MANIFEST).unlink(missing_ok=True)
    started = utcnow()
    target = to / DUMP_FILES[backend]
    try:
        held = _copier(backend).dump(
            settings.effective_database_url, target=target, progress=progress
        )
    except BaseException:
        target.unlink(missing_ok=True)
        if created:
            shutil.rmtree(to, ignore_errors=True)
        raise
    secret = _secret_file(settings)
    if secret is not None:
        shutil.copyfile(secret, to / SECRET_FILE)
        (to / SECRET_FILE).chmod(0o600)
    manifest = Manifest(
        backend=backend,
        dump=target.name,
        sha256=sha256(target),
        size_bytes=target.stat().st_size,
        revision=held.revision,
        storekeeper_version=__version__,
        started_at=started.isoformat(),
        finished_at=utcnow().isoformat(),
        outbox_max_id=held.outbox_max_id,
        pending_events=held.pending_events,
        counts=held.counts,
        secret_key=secret is not None,
    )
    manifest.write(to)
    return manifest


def check(source: Path) -> Manifest:
    """The manifest of the backup in ``source`` once the dump's checksum and the schema pass."""
    # Alembic loads only for a restore: a backup (often from cron) starts faster without it.
    from storekeeper import migrations

    manifest = Manifest.read(source)
    manifest.verify(source)
    if manifest.revision is not None and manifest.revision not in migrations.known_revisions():
        raise BackupError(
            f"the backup's schema (revision {manifest.revision}, Storekeeper "
            f"{manifest.storekeeper_version}) is newer than this Storekeeper knows (head "
            f"{migrations.head_revision()}): restore it with that version or a newer one"
        )
    return manifest


def restore(
    settings: Settings, *, source: Path, force: bool, progress: Progress | None
) -> Restored:
    """Restore the backup in ``source`` into the configured, empty database."""
    from storekeeper import migrations

    manifest = check(source)
    backend = backend_of(settings)
    if manifest.backend != backend:
        raise BackupError(
            f"this is a {manifest.backend} backup and the configured database is {backend}"
        )
    url = settings.effective_database_url
    copier = _copier(backend)
    found = copier.describe(url)
    secret = _secret_conflict(settings, source, manifest)
    if secret:
        found.append(secret)
    if found and not force:
        raise TargetNotEmpty(found)
    if found:
        copier.clear(url)
    copier.restore(url, dump_path=source / manifest.dump, progress=progress)
    if manifest.secret_key and not settings.secret_key.get_secret_value():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / SECRET_FILE, settings.data_dir / SECRET_FILE)
        (settings.data_dir / SECRET_FILE).chmod(0o600)
    migrated = manifest.revision != migrations.head_revision()
    if migrated:
        migrations.upgrade(url)
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            generation = restores.start_generation(
                connection,
                backup_started_at=datetime.fromisoformat(manifest.started_at),
                backup_point=manifest.outbox_max_id,
            )
    finally:
        engine.dispose()
    return Restored(manifest, migrations.current_revision(url), migrated, generation)


def _copier(backend: Backend) -> _Copier:
    return postgres if backend == "postgresql" else sqlite


def _secret_file(settings: Settings) -> Path | None:
    """The generated root secret in the data dir, when it is the one in use."""
    path = settings.data_dir / SECRET_FILE
    if settings.secret_key.get_secret_value() or not path.is_file():
        return None
    return path


def _secret_conflict(settings: Settings, source: Path, manifest: Manifest) -> str | None:
    """A different generated secret in the target data dir is in the way, like data is."""
    present = _secret_file(settings)
    if not manifest.secret_key or present is None:
        return None
    if present.read_bytes() == (source / SECRET_FILE).read_bytes():
        return None
    return f"{present} exists and differs from the backup's (tokens signed with it would fail)"
