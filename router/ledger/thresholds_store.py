"""Persisted thresholds and their audit trail, in the ledger database (tables of migration ``0003``).

A write bumps a single version counter, upserts the new values and appends one audit row per threshold,
all in one transaction; the ``UPDATE`` of the counter comes first so that concurrent writers (processes,
replicas) serialise on it on SQLite and PostgreSQL alike. ``router.admin.persistence`` polls the counter
and validates the values; this module only stores them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from router.core.errors import LedgerUnavailableError, UnprocessableError
from router.ledger.interface import ThresholdChange
from router.ledger.schema import LedgerTables

log = logging.getLogger(__name__)


class ThresholdTables:
    """Reads and writes the persisted thresholds and their audit trail on one engine."""

    def __init__(self, engine: Engine, tables: LedgerTables) -> None:
        self.engine = engine
        self.state, self.values, self.audit = tables.threshold_state, tables.threshold_values, tables.threshold_audit

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
              fallback: Mapping[str, float]) -> ThresholdChange:
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
                conn.execute(self._upsert(conn), [{"name": name, "value": new, "version": version, "updated_at": now}
                                                  for name, (_old, new) in diff.items()])
                conn.execute(self.audit.insert(), [
                    {"version": version, "changed_at": now, "actor": actor, "reason": reason, "name": name,
                     "old_value": old, "new_value": new} for name, (old, new) in diff.items()])
        except SQLAlchemyError as exc:
            raise LedgerUnavailableError(f"cannot persist the threshold change: {exc}") from exc
        persisted.update({name: new for name, (_old, new) in diff.items()})
        return ThresholdChange(version, actor, reason, now, diff, persisted)

    def history(self, limit: int = 100) -> list[ThresholdChange]:
        """The most recent ``limit`` changes, newest first."""
        a = self.audit
        try:
            with self.engine.connect() as conn:
                versions = [row.version for row in conn.execute(
                    select(a.c.version).distinct().order_by(a.c.version.desc()).limit(max(1, int(limit))))]
                rows = conn.execute(select(a).where(a.c.version.in_(versions)).order_by(a.c.version.desc(), a.c.id)).all()
        except SQLAlchemyError as exc:
            raise LedgerUnavailableError(f"cannot read the threshold audit trail: {exc}") from exc
        grouped: dict[int, ThresholdChange] = {}
        for row in rows:
            change = grouped.get(row.version)
            if change is None:
                change = grouped[row.version] = ThresholdChange(row.version, row.actor, row.reason, row.changed_at, {})
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


def read_persisted_thresholds(url: str) -> dict[str, float] | None:
    """The persisted values at ``url`` without creating or migrating anything; None when nothing was persisted."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise LedgerUnavailableError(f"invalid ledger URL {url!r}: {exc}") from exc
    if parsed.get_backend_name() == "sqlite" and (not parsed.database or not Path(parsed.database).expanduser().exists()):
        return None
    engine = create_engine(parsed)
    try:
        _version, values = ThresholdTables(engine, LedgerTables.build(MetaData())).load()
    except LedgerUnavailableError as exc:  # no such tables yet: nothing was ever persisted
        log.info("no persisted thresholds: %s", exc)
        return None
    finally:
        engine.dispose()
    return values
