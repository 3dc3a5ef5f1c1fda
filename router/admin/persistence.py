"""Thresholds shared by every worker and replica through the ledger database, with an audit trail.

The ledger stores them (``LedgerStore.save_thresholds``: one version per change, one audit row per
threshold, one transaction; see ``router.ledger.thresholds_store``). Each process polls the version
every ``thresholds_poll_s`` and reloads the values when it moved, so a change reaches every process
within one poll interval. Persisted values take precedence over the config file's ``thresholds:``,
which override the defaults; values this build no longer accepts are skipped with a warning.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import Any

from router.core.errors import UnprocessableError
from router.ledger.interface import LedgerStore, ThresholdChange
from router.thresholds import ThresholdStore

log = logging.getLogger(__name__)

#: The name the admin layer has always used for a committed change.
Change = ThresholdChange


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

    def __init__(self, ledger: LedgerStore, store: ThresholdStore, poll_s: float) -> None:
        self.ledger = ledger
        self.store = store
        self.poll_s = poll_s
        self.version: int | None = None
        self._lock = threading.Lock()
        self._task: asyncio.Task[None] | None = None

    def load(self) -> int:
        """Install the persisted values (over the config file's) and remember their version."""
        version, values = self.ledger.persisted_thresholds()
        self._install(version, values)
        return version

    def refresh(self) -> bool:
        """Reload when another process changed the thresholds; True when something was reloaded."""
        if self.ledger.threshold_version() == self.version:
            return False
        self.load()
        return True

    def apply(self, changes: Mapping[str, object], *, actor: str, reason: str) -> Change:
        """Validate all of ``changes`` (a 422 changes nothing), persist them as one version, apply them here."""
        clean = self.store.validate(changes)
        if not clean:
            raise UnprocessableError("no thresholds to change; give at least one name and value", param="thresholds")
        change = self.ledger.save_thresholds(clean, actor=actor, reason=reason, fallback=self.store.values())
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


def open_ledger(settings: Any) -> LedgerStore:
    """The configured ledger database, migrated (for CLI writes); the caller closes it."""
    from router.ledger.store import Ledger

    return Ledger.open(settings.resolved_ledger_url())


def load_persisted_thresholds(settings: Any, store: ThresholdStore) -> Mapping[str, float]:
    """The values in force: persisted ones over ``store``'s (config) values; never creates a database."""
    from router.ledger.thresholds_store import read_persisted_thresholds

    values = read_persisted_thresholds(settings.resolved_ledger_url())
    if values is None:
        return store.values()
    store.replace(valid_subset(store, values))
    return store.values()


async def start_threshold_sync(services: Any) -> ThresholdSync:
    """Load the persisted thresholds into ``services.thresholds`` and start polling for changes."""
    sync = ThresholdSync(services.ledger, services.thresholds, services.settings.thresholds_poll_s)
    version = await asyncio.to_thread(sync.load)
    log.info("thresholds at version %s, polled every %s s", version, sync.poll_s)
    sync.start()
    return sync
