"""Thresholds shared by every worker and replica through the ledger database, with an audit trail.

The tables come from ledger migration ``0003_thresholds``. A write bumps a single version counter,
upserts the new values and appends one audit row per threshold, all in one transaction; the
``UPDATE`` of the counter comes first so that concurrent writers (processes, replicas) serialise on
it on SQLite and PostgreSQL alike. Each process polls the counter every ``thresholds_poll_s`` and
reloads the values when it moved, so a change reaches every process within one poll interval.
Persisted values take precedence over the config file's ``thresholds:``, which override the defaults.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from router.core.errors import LedgerUnavailableError, UnprocessableError
from router.thresholds import ThresholdStore

log = logging.getLogger(__name__)


def _tables(meta: MetaData) -> tuple[Table, Table, Table]:
    """``threshold_state``, ``threshold_values`` and ``threshold_audit`` as migration 0003 created them."""
    state = Table("threshold_state", meta, Column("id", Integer, primary_key=True),
                  Column("version", Integer, nullable=False))
    values = Table("threshold_values", meta, Column("name", String(100), primary_key=True),
                   Column("value", Float, nullable=False), Column("version", Integer, nullable=False),
                   Column("updated_at", DateTime(timezone=False), nullable=False))
    audit = Table("threshold_audit", meta, Column("id", Integer, primary_key=True, autoincrement=True),
                  Column("version", Integer, nullable=False), Column("changed_at", DateTime(timezone=False), nullable=False),
                  Column("actor", String(200), nullable=False), Column("reason", Text, nullable=False),
                  Column("name", String(100), nullable=False), Column("old_value", Float),
                  Column("new_value", Float, nullable=False))
    return state, values, audit


@dataclass(frozen=True)
class Change:
    """One committed threshold change: its version, who, when, why, and old/new per threshold."""

    version: int
    actor: str
    reason: str
    changed_at: datetime
    changes: dict[str, tuple[float | None, float]]
    values: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The change as JSON."""
        return {
            "version": self.version, "actor": self.actor, "reason": self.reason,
            "changed_at": self.changed_at.replace(tzinfo=UTC).isoformat(),
            "changes": {name: {"old": old, "new": new} for name, (old, new) in self.changes.items()},
        }


class ThresholdRepository:
    """Reads and writes the persisted thresholds and their audit trail."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.state, self.values, self.audit = _tables(MetaData())

    def version(self) -> int:
        """The current version (0 before any change)."""
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(select(self.state.c.version).where(self.state.c.id == 1)).scalar_one())
        except SQLAlchemyError as exc:
            raise LedgerUnavailableError(f"cannot read the threshold version: {exc}") from exc

    def load(self) -> tuple[int, dict[str, float]]:
        """The version and every persisted value, read consistently."""
        try:
            with self.engine.begin() as conn:
                version = int(conn.execute(select(self.state.c.version).where(self.state.c.id == 1)).scalar_one())
                rows = conn.execute(select(self.values.c.name, self.values.c.value)).all()
        except SQLAlchemyError as exc:
            raise LedgerUnavailableError(f"cannot read the persisted thresholds: {exc}") from exc
        return version, {row.name: float(row.value) for row in rows}

    def write(self, changes: Mapping[str, float], *, actor: str, reason: str,
              fallback: Mapping[str, float]) -> Change:
        """Persist already validated ``changes`` as one new version; ``fallback`` gives old values never persisted."""
        if not changes:
            raise UnprocessableError("no thresholds to change", param="thresholds")
        now = datetime.now(UTC).replace(tzinfo=None)
        try:
            with self.engine.begin() as conn:
                conn.execute(update(self.state).where(self.state.c.id == 1).values(version=self.state.c.version + 1))
                version = int(conn.execute(select(self.state.c.version).where(self.state.c.id == 1)).scalar_one())
                persisted = {row.name: float(row.value)
                             for row in conn.execute(select(self.values.c.name, self.values.c.value))}
                diff = {name: (persisted.get(name, fallback.get(name)), float(value)) for name, value in changes.items()}
                upsert = self._upsert(conn)
                conn.execute(upsert, [{"name": name, "value": new, "version": version, "updated_at": now}
                                      for name, (_old, new) in diff.items()])
                conn.execute(self.audit.insert(), [
                    {"version": version, "changed_at": now, "actor": actor, "reason": reason, "name": name,
                     "old_value": old, "new_value": new} for name, (old, new) in diff.items()])
        except SQLAlchemyError as exc:
            raise LedgerUnavailableError(f"cannot persist the threshold change: {exc}") from exc
        persisted.update({name: new for name, (_old, new) in diff.items()})
        return Change(version, actor, reason, now, diff, persisted)

    def history(self, limit: int = 100) -> list[Change]:
        """The most recent ``limit`` changes, newest first."""
        a = self.audit
        try:
            with self.engine.connect() as conn:
                versions = [row.version for row in conn.execute(
                    select(a.c.version).distinct().order_by(a.c.version.desc()).limit(max(1, int(limit))))]
                rows = conn.execute(select(a).where(a.c.version.in_(versions)).order_by(a.c.version.desc(), a.c.id)).all()
        except SQLAlchemyError as exc:
            raise LedgerUnavailableError(f"cannot read the threshold audit trail: {exc}") from exc
        grouped: dict[int, Change] = {}
        for row in rows:
            change = grouped.get(row.version)
            if change is None:
                change = grouped[row.version] = Change(row.version, row.actor, row.reason, row.changed_at, {})
            change.changes[row.name] = (row.old_value, row.new_value)
        return list(grouped.values())

    def _upsert(self, conn: Any) -> Any:
        from sqlalchemy.dialects import postgresql, sqlite

        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt: Any = dialect.insert(self.values)
        return stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"value": stmt.excluded.value, "version": stmt.excluded.version, "updated_at": stmt.excluded.updated_at},
        )


def valid_subset(store: ThresholdStore, values: Mapping[str, float]) -> dict[str, float]:
    """The persisted values this build accepts; others (renamed thresholds, narrowed ranges) are logged and skipped."""
    clean: dict[str, float] = {}
    for name, value in values.items():
        try:
            clean.update(store.validate({name: value}))
        except UnprocessableError:
            log.warning("ignoring persisted threshold %s=%r: not valid in this version", name, value)
    return clean


class ThresholdSync:
    """Keeps one process's ``ThresholdStore`` equal to the persisted thresholds, and writes changes."""

    def __init__(self, repository: ThresholdRepository, store: ThresholdStore, poll_s: float) -> None:
        self.repository = repository
        self.store = store
        self.poll_s = poll_s
        self.version: int | None = None
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None

    def load(self) -> int:
        """Install the persisted values (over the config file's) and remember their version."""
        version, values = self.repository.load()
        self._install(version, values)
        return version

    def refresh(self) -> bool:
        """Reload when another process changed the thresholds; True when something was reloaded."""
        if self.repository.version() == self.version:
            return False
        self.load()
        return True

    def apply(self, changes: Mapping[str, object], *, actor: str, reason: str) -> Change:
        """Validate all of ``changes`` (a 422 changes nothing), persist them as one version, apply them here."""
        clean = self.store.validate(changes)
        if not clean:
            raise UnprocessableError("no thresholds to change; give at least one name and value", param="thresholds")
        change = self.repository.write(clean, actor=actor, reason=reason, fallback=self.store.values())
        self._install(change.version, change.values)
        return change

    def _install(self, version: int, values: Mapping[str, float]) -> None:
        with self._lock:
            if self.version is not None and version < self.version:
                return  # a newer version is already installed (a PUT raced a poll)
            self.store.replace(valid_subset(self.store, values))
            self.version = version

    def start(self) -> None:
        """Start polling in the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._poll(), name="frugal-threshold-poll")

    async def stop(self) -> None:
        """Stop polling."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                if await asyncio.to_thread(self.refresh):
                    log.info("thresholds reloaded at version %s", self.version)
            except Exception as exc:  # noqa: BLE001 - nothing may stop the poll; values stay as they are
                log.warning("threshold poll failed: %s", exc)


def engine_for(services: Any) -> Engine:
    """The ledger's engine (the ledger opened it and applied the migrations)."""
    engine = getattr(services.ledger, "engine", None)
    if engine is not None:
        return engine
    from router.ledger.store import Ledger

    return Ledger.open(services.settings.resolved_ledger_url()).engine


def open_repository(settings: Any) -> ThresholdRepository:
    """A repository on the configured ledger database, migrated (for CLI writes)."""
    from router.ledger.store import Ledger

    return ThresholdRepository(Ledger.open(settings.resolved_ledger_url()).engine)


def load_persisted_thresholds(settings: Any, store: ThresholdStore) -> Mapping[str, float]:
    """The values in force: persisted ones over ``store``'s (config) values; never creates a database."""
    url = make_url(settings.resolved_ledger_url())
    if url.get_backend_name() == "sqlite" and (not url.database or not Path(url.database).expanduser().exists()):
        return store.values()
    engine = create_engine(url)
    try:
        _version, values = ThresholdRepository(engine).load()
    except LedgerUnavailableError as exc:  # no such tables yet: nothing was ever persisted
        log.info("no persisted thresholds: %s", exc)
        return store.values()
    finally:
        engine.dispose()
    store.replace(valid_subset(store, values))
    return store.values()


async def start_threshold_sync(services: Any) -> ThresholdSync:
    """Load the persisted thresholds into ``services.thresholds`` and start polling for changes."""
    repository = ThresholdRepository(await asyncio.to_thread(engine_for, services))
    sync = ThresholdSync(repository, services.thresholds, services.settings.thresholds_poll_s)
    version = await asyncio.to_thread(sync.load)
    log.info("thresholds at version %s, polled every %s s", version, sync.poll_s)
    sync.start()
    return sync
