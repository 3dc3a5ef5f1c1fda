"""Admin fixtures: echo-tier apps on a real SQLite ledger (or a PostgreSQL schema) and ledger rows with known scores."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from router.core.policy import POLICY_THRESHOLDS
from tests.conftest import echo_settings

ADMIN_KEY = "test-admin-key-0123"
#: The shipped default of ``route.large``: what a fresh deployment starts from.
DEFAULT_LARGE = POLICY_THRESHOLDS["route.large"].default


@contextmanager
def app_client(settings: Any) -> Iterator[Any]:
    """A TestClient around ``create_app(settings)`` with the lifespan (and the threshold poller) running."""
    from fastapi.testclient import TestClient

    from router.app import create_app

    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Any]:
    """Echo-tier settings sharing one data directory (so one SQLite ledger) unless told otherwise."""

    def make(**overrides: Any) -> Any:
        return echo_settings(tmp_path, **overrides)

    return make


def scored_row(i: int, scores: tuple[float, float, float] | None, *, route: str = "small", forced: bool = False,
               minutes_ago: float = 5.0, **extra: Any) -> Any:
    """A ledger row with the given (search, small, large) scores (None: not classified)."""
    from router.ledger.row import LedgerRow

    search, small, large = scores if scores is not None else (None, None, None)
    return LedgerRow(
        request_id=f"req-{i}", created_at=datetime.now(UTC) - timedelta(minutes=minutes_ago), requested_model="frugal-auto",
        route=route, forced=forced, status=200, score_search=search, score_small=small, score_large=large,
        energy_wh=extra.pop("energy_wh", 0.001), cf_energy_wh=0.02, **extra)


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.02) -> float:
    """Seconds until ``predicate()`` held; fails the test after ``timeout``."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(step)
    return time.monotonic() - start
