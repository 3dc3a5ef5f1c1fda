"""The savings report never counts a degraded answer (large needed, large unavailable) as an avoided large call."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from router.app import create_app
from router.ledger.row import unreturned_energy
from router.report.build import build_report
from router.report.html import render_html
from router.report.render import render_csv
from tests.conftest import ESCALATE, echo_settings, until_warm

QUESTIONS = ["When did the Berlin Wall fall?", "Translate 'good morning' into French.",
             "Summarise this sentence: the cat sat on the mat."]


def test_with_no_large_tier_degraded_answers_are_counted_as_degraded_not_avoided(tmp_path: Path) -> None:
    settings = echo_settings(tmp_path, large={"backend": "echo", "enabled": False}, on_large_unavailable="degrade")
    needed_large = 4  # both cheaper tiers judge these insufficient, so the large tier was needed
    with TestClient(create_app(settings)) as client:
        until_warm(client.get)
        for n in range(needed_large):
            reply = client.post("/v1/chat/completions", json={
                "model": "frugal-auto", "messages": [{"role": "user", "content": f"{ESCALATE}-2 question {n}"}]})
            assert reply.status_code == 200 and reply.headers["x-frugal-degraded"] == "large-unavailable"
        for question in QUESTIONS:
            assert client.post("/v1/chat/completions", json={
                "model": "frugal-auto", "messages": [{"role": "user", "content": question}]}).status_code == 200
        metrics = client.get("/metrics").text
        ledger = client.app.state.services.ledger
        rows = list(ledger.rows())
        report = build_report(ledger)
    degraded = [r for r in rows if any(f.startswith("degraded:") for f in r.flags)]
    answered_cheaply = [r for r in rows if r.route in ("search", "small") and r.status == 200 and r not in degraded]
    assert len(rows) == needed_large + len(QUESTIONS)
    assert len(degraded) >= needed_large  # the classifier may also send a plain question to the (missing) large tier
    assert report["degraded"]["requests"] == len(degraded)
    assert report["avoided"]["large_calls"] == len(answered_cheaply) == len(rows) - len(degraded)
    assert sum(t["degraded"] for t in report["by_tier"].values()) == len(degraded)
    net_avoided = sum(r.cf_energy_wh - r.energy_wh for r in rows if r not in degraded)
    assert report["avoided"]["energy_wh"]["value"] == pytest.approx(net_avoided, rel=1e-9, abs=1e-15)
    assert report["degraded"]["energy_wh"]["value"] == pytest.approx(sum(r.energy_wh for r in degraded), rel=1e-9)
    assert report["degraded"]["counterfactual_energy_wh"]["value"] == pytest.approx(
        sum(r.cf_energy_wh for r in degraded), rel=1e-9)
    assert report["avoided"]["energy_wh"]["value"] < (report["counterfactual"]["energy_wh"]["value"]
                                                      - report["energy_wh"]["value"])  # the gross figure is larger
    assert sum(d["degraded"] for d in report["daily"]) == len(degraded)
    counted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                  if line.startswith("frugal_degraded_total{"))
    assert counted == len(degraded)
    unreturned = sum(unreturned_energy(r.route, r.attempts) for r in rows)
    assert report["unreturned_energy_wh"] == pytest.approx(unreturned, rel=1e-9)
    assert sum(r.escalation_energy_wh for r in rows) == pytest.approx(unreturned, rel=1e-9)
    html = render_html(report)
    assert "Degraded answers" in html and f'data-key="degraded.requests" data-value="{len(degraded)}"' in html
    assert f"total,,degraded_requests,{len(degraded)}" in render_csv(report)


def test_an_avoided_energy_range_that_crosses_zero_is_said_to_be_indistinguishable(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from router.ledger.row import LedgerRow
    from router.ledger.store import Ledger

    ledger = Ledger.open(f"sqlite:///{tmp_path / 'l.sqlite3'}")
    row = LedgerRow(request_id="x", created_at=datetime(2026, 5, 1, tzinfo=UTC), requested_model="frugal-auto",
                    route="small", forced=False, status=200, client_key_id=None, escalations=0, attempts=[],
                    latency_ms=1.0, prompt_tokens=10, completion_tokens=10)
    row.energy_wh, row.energy_wh_min, row.energy_wh_max = 0.01, 0.005, 0.03
    row.cf_energy_wh, row.cf_energy_wh_min, row.cf_energy_wh_max = 0.02, 0.01, 0.04
    ledger.record(row)
    crossing = build_report(ledger, since=datetime(2026, 5, 1, tzinfo=UTC) - timedelta(days=1))
    assert crossing["avoided"]["energy_wh"]["min"] < 0 < crossing["avoided"]["energy_wh"]["max"]
    assert crossing["avoided"]["energy_distinguishable_from_zero"] is False
    assert "not distinguishable from zero" in render_html(crossing)
    ledger.close()
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'clear.sqlite3'}")
    row.energy_wh_max = 0.006  # now even the worst case uses less than the all-large best case
    ledger.record(row)
    clear = build_report(ledger)
    assert clear["avoided"]["energy_wh"]["min"] > 0 and clear["avoided"]["energy_distinguishable_from_zero"] is True
    assert "not distinguishable from zero" not in render_html(clear)
    ledger.close()


def test_migration_0005_and_a_rebuild_count_the_degraded_requests_already_recorded(tmp_path: Path) -> None:
    from dataclasses import replace
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import text

    from router.ledger.migrations import MIGRATIONS, migrate
    from router.ledger.row import LedgerRow
    from router.ledger.schema import DEGRADED_SUMS
    from router.ledger.store import Ledger

    ledger = Ledger.open(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    base = LedgerRow(request_id="a", created_at=datetime(2026, 5, 1, 10, tzinfo=UTC), requested_model="frugal-auto",
                     route="small", forced=False, status=200, client_key_id=None, escalations=1, attempts=[],
                     latency_ms=1.0, prompt_tokens=10, completion_tokens=10)
    tried = [{"tier": "search", "energy_wh": 1e-5}, {"tier": "large", "energy_wh": 0.0}, {"tier": "small", "energy_wh": 2e-3}]
    ledger.record_many([replace(base, flags=["degraded:large-unavailable"], attempts=tried),
                        replace(base, request_id="b", flags=["degraded:large-unavailable", "long_prompt"],
                                created_at=base.created_at + timedelta(hours=2)),
                        replace(base, request_id="c", flags=[])])
    with ledger.engine.begin() as conn:  # pretend this ledger predates migration 0005
        for column in ("degraded", *DEGRADED_SUMS):
            conn.execute(text(f"ALTER TABLE request_rollup DROP COLUMN {column}"))
        conn.execute(text("ALTER TABLE request_rollup DROP COLUMN escalation_energy_wh"))
        conn.execute(text("ALTER TABLE requests DROP COLUMN escalation_energy_wh"))
        conn.execute(text("DELETE FROM frugal_migrations WHERE name = '0005_rollup_degraded'"))
    assert migrate(ledger.engine, MIGRATIONS) == ["0005_rollup_degraded"]
    report = build_report(ledger)
    assert report["degraded"]["requests"] == 2 and report["avoided"]["large_calls"] == 1
    assert report["unreturned_energy_wh"] == pytest.approx(1e-5)  # back-filled from the recorded attempts
    ledger.rebuild_rollup()
    rebuilt = build_report(ledger)
    assert rebuilt["degraded"]["requests"] == 2 and rebuilt["unreturned_energy_wh"] == pytest.approx(1e-5)
    ledger.close()


def test_unreturned_energy_is_every_attempt_but_the_one_whose_answer_was_returned() -> None:
    attempts: list[dict[str, object]] = [{"tier": "search", "energy_wh": 1e-5}, {"tier": "large", "energy_wh": 0.0},
                                         {"tier": "small", "energy_wh": 0.002}]
    assert unreturned_energy("small", attempts) == pytest.approx(1e-5)  # degraded: search tried, large skipped
    assert unreturned_energy("search", attempts[:1]) == 0.0  # answered at once
    assert unreturned_energy(None, attempts) == pytest.approx(0.00201)  # failed: nothing was returned
