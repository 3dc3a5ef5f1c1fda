"""Two app instances sharing one real PostgreSQL (like two replicas) see each other's threshold changes.

Each test works in a fresh schema (``search_path`` through the URL) dropped afterwards; PostgreSQL being
down fails the tests rather than skipping them (``make test`` starts it first).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.admin.conftest import app_client, wait_for

BASE_URL = os.environ.get("FRUGAL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
POLL_S = 0.25

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url() -> Iterator[str]:
    schema = f"frugal_admin_{uuid.uuid4().hex[:12]}"
    admin = create_engine(BASE_URL + "?connect_timeout=5")
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        pytest.fail(f"PostgreSQL at {BASE_URL} is unreachable ({exc.orig}); these tests fail rather than skip")
    try:
        yield f"{BASE_URL}?connect_timeout=5&options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def values(client: Any) -> dict[str, float]:
    return {n: s["value"] for n, s in client.get("/admin/thresholds").json()["thresholds"].items()}


def test_two_replicas_see_each_others_changes_within_the_poll_bound(make_settings: Any, pg_url: str) -> None:
    from pathlib import Path

    first_settings = make_settings(ledger_url=pg_url, thresholds_poll_s=POLL_S)
    second_settings = make_settings(ledger_url=pg_url, thresholds_poll_s=POLL_S,
                                    data_dir=Path(str(first_settings.data_dir) + "-replica"))
    with app_client(first_settings) as first, app_client(second_settings) as second:
        delays = []
        for writer, reader, name, value in ((first, second, "route.large", 0.33), (second, first, "route.search", 0.77),
                                            (first, second, "small.min_confidence", 0.42)):
            response = writer.put("/admin/thresholds", json={"thresholds": {name: value}, "reason": "replica test"})
            assert response.status_code == 200, response.text
            delays.append(wait_for(lambda r=reader, n=name, v=value: values(r)[n] == v, timeout=POLL_S + 3.0))
        assert max(delays) <= POLL_S + 1.0, delays
        assert values(first) == values(second)
        history = second.get("/admin/thresholds/history").json()["history"]
        assert [h["version"] for h in history] == [3, 2, 1]
        with create_engine(pg_url).connect() as conn:
            assert conn.execute(text("SELECT version FROM threshold_state")).scalar() == 3
            assert conn.execute(text("SELECT current_schema()")).scalar().startswith("frugal_admin_")


def test_a_restarted_replica_starts_from_the_persisted_values(make_settings: Any, pg_url: str) -> None:
    with app_client(make_settings(ledger_url=pg_url)) as client:
        client.put("/admin/thresholds", json={"thresholds": {"route.large": 0.12}, "reason": "before restart"})
    with app_client(make_settings(ledger_url=pg_url, thresholds={"route.large": 0.5})) as client:
        assert values(client)["route.large"] == 0.12
