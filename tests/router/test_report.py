"""The report's totals against hand-computed figures, and its HTML/CSV/table renderings against the JSON."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from router.ledger.row import LedgerRow
from router.ledger.store import Ledger
from router.report import build_report, render_csv, render_html, render_json, render_table

DAY1 = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)
DAY2 = datetime(2026, 5, 5, 18, 0, tzinfo=UTC)
BEFORE = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)


def _row(rid: str, at: datetime, route: str | None, status: int, e: tuple[float, float, float],
         co2: tuple[float, float, float], cost: float, cf: tuple[float, float, float],
         cf_co2: tuple[float, float, float], cf_cost: float, escalations: int = 0, flags: list[str] | None = None) -> LedgerRow:
    return LedgerRow(
        request_id=rid, created_at=at, requested_model="frugal-auto", route=route, forced=False, status=status,
        escalations=escalations, energy_wh=e[0], energy_wh_min=e[1], energy_wh_max=e[2], co2e_g=co2[0],
        co2e_g_min=co2[1], co2e_g_max=co2[2], cost_usd=cost, cf_energy_wh=cf[0], cf_energy_wh_min=cf[1],
        cf_energy_wh_max=cf[2], cf_co2e_g=cf_co2[0], cf_co2e_g_min=cf_co2[1], cf_co2e_g_max=cf_co2[2],
        cf_cost_usd=cf_cost, flags=flags or [],
    )


def known_rows() -> list[LedgerRow]:
    """Four requests in the period (two days) and one before it."""
    cf, cf_co2 = (0.02, 0.018, 0.024), (0.008, 0.007, 0.009)
    return [
        _row("r1", DAY1, "search", 200, (0.001, 0.0005, 0.002), (0.0005, 0.0002, 0.001), 0.0, cf, cf_co2, 0.0002),
        _row("r2", DAY1 + timedelta(hours=1), "small", 200, (0.004, 0.002, 0.010), (0.002, 0.001, 0.005), 0.0, cf,
             cf_co2, 0.0002, escalations=1, flags=["long_prompt"]),
        _row("r3", DAY2, "large", 200, (0.03, 0.025, 0.035), (0.012, 0.010, 0.014), 0.0003, cf, cf_co2, 0.0002,
             flags=["long_prompt", "unknown_price"]),
        _row("r4", DAY2 + timedelta(minutes=5), None, 503, (0.0001, 0.00005, 0.0002), (0.00005, 0.00002, 0.0001), 0.0,
             (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0),
        _row("r0", BEFORE, "large", 200, (5.0, 5.0, 5.0), (2.0, 2.0, 2.0), 1.0, cf, cf_co2, 0.0002),
    ]


def check_known_totals(report: dict[str, Any]) -> None:
    """The figures for r1-r4, computed by hand (see known_rows)."""
    approx = pytest.approx
    assert report["requests"] == 4 and report["failed"] == 1 and report["succeeded"] == 3
    assert report["energy_wh"] == approx({"value": 0.0351, "min": 0.02755, "max": 0.0472})
    assert report["co2e_g"] == approx({"value": 0.01455, "min": 0.01122, "max": 0.0201})
    assert report["cost_usd"] == approx(0.0003)
    cf = report["counterfactual"]
    assert cf["energy_wh"] == approx({"value": 0.06, "min": 0.054, "max": 0.072})
    assert cf["co2e_g"] == approx({"value": 0.024, "min": 0.021, "max": 0.027})
    assert cf["cost_usd"] == approx(0.0006)
    av = report["avoided"]
    assert av["large_calls"] == 2 and av["large_calls_share"] == approx(0.5)
    assert av["energy_wh"] == approx({"value": 0.0249, "min": 0.054 - 0.0472, "max": 0.072 - 0.02755})
    assert av["co2e_g"] == approx({"value": 0.00945, "min": 0.021 - 0.0201, "max": 0.027 - 0.01122})
    assert av["cost_usd"] == approx(0.0003)
    assert av["energy_share"] == approx(0.0249 / 0.06)
    assert report["requests_per_wh"] == approx({"value": 4 / 0.0351, "min": 4 / 0.0472, "max": 4 / 0.02755})
    assert report["escalations"] == approx({"total": 1, "requests": 1, "share": 0.25})
    tiers = report["by_tier"]
    assert list(tiers) == ["search", "small", "large", "none"]
    assert [tiers[t]["requests"] for t in tiers] == [1, 1, 1, 1]
    assert tiers["small"]["energy_wh"] == approx({"value": 0.004, "min": 0.002, "max": 0.010})
    assert tiers["large"]["cost_usd"] == approx(0.0003)
    assert tiers["search"]["share"] == approx(0.25)
    assert report["flags"] == {"long_prompt": 2, "unknown_model": 0, "unknown_price": 1}
    d1, d2 = report["daily"]
    assert (d1["date"], d1["requests"], d2["date"], d2["requests"]) == ("2026-05-04", 2, "2026-05-05", 2)
    assert d1["by_tier"] == {"search": 1, "small": 1, "large": 0, "none": 0}
    assert d1["energy_wh"]["value"] == approx(0.005)
    assert d2["avoided_energy_wh"]["value"] == approx(0.02 - 0.0301)
    assert report["period"]["first"] == DAY1.isoformat() and report["period"]["days"] == 2


@pytest.fixture
def ledger(tmp_path: Path):
    store = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    store.record_many(known_rows())
    yield store
    store.close()


@pytest.fixture
def report(ledger: Ledger) -> dict[str, Any]:
    from router.energy.config import EnergyConfig
    from router.energy.estimator import EnergyEstimator

    method = EnergyEstimator(EnergyConfig()).method()
    return build_report(ledger, since=datetime(2026, 5, 2, tzinfo=UTC), method=method)


def test_totals_match_hand_computed_figures(report: dict[str, Any]) -> None:
    check_known_totals(report)
    assert set(report) >= {"period", "requests", "by_tier", "escalations", "energy_wh", "co2e_g", "cost_usd",
                           "counterfactual", "avoided", "requests_per_wh", "daily", "method"}
    assert report["method"]["versions"]["ecologits"].startswith("0.11.")
    json.loads(render_json(report))


def test_period_filters_in_sql(ledger: Ledger) -> None:
    everything = build_report(ledger)
    assert everything["requests"] == 5 and everything["cost_usd"] == pytest.approx(1.0003)
    day2 = build_report(ledger, since=DAY2 - timedelta(hours=1), until=DAY2 + timedelta(minutes=1))
    assert day2["requests"] == 1 and day2["by_tier"]["large"]["requests"] == 1


def test_a_client_report_counts_that_client_alone(tmp_path: Path) -> None:
    """The hand-computed rows belong to team-a; another team's and unnamed rows in the same hours stay out."""
    from dataclasses import replace

    store = Ledger.open(f"sqlite:///{tmp_path / 'clients.sqlite3'}")
    team_a = [replace(row, client_key_id="team-a") for row in known_rows()]
    others = [replace(row, request_id=f"b-{row.request_id}", client_key_id="team-b", cost_usd=7.0)
              for row in known_rows()[:3]]
    unnamed = [replace(known_rows()[2], request_id="anon", client_key_id=None)]
    store.record_many(team_a + others + unnamed)
    since = datetime(2026, 5, 2, tzinfo=UTC)
    report = build_report(store, since=since, client="team-a")
    check_known_totals(report)
    assert report["period"]["client"] == "team-a"
    team_b = build_report(store, since=since, client="team-b")
    assert team_b["requests"] == 3 and team_b["cost_usd"] == pytest.approx(21.0)
    assert team_b["period"]["first"] == DAY1.isoformat()
    everyone = build_report(store, since=since)
    assert everyone["requests"] == 4 + 3 + 1 and everyone["period"]["client"] is None
    nobody = build_report(store, client="no-such-team")
    assert nobody["requests"] == 0 and nobody["period"]["first"] is None
    assert "client team-a" in render_html(report) and "team-a" in render_csv(report)
    store.close()


def test_empty_ledger_gives_a_zero_report(tmp_path: Path) -> None:
    store = Ledger.open(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    report = build_report(store)
    assert report["requests"] == 0 and report["daily"] == []
    assert report["requests_per_wh"]["value"] is None and report["avoided"]["energy_share"] is None
    render_html(report)
    render_csv(report)
    Console(file=io.StringIO()).print(render_table(report))
    store.close()


class _Tagged(HTMLParser):
    """Collects data-key -> (data-value, shown text) and any external references."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, list[tuple[str, str]]] = {}
        self.external: list[str] = []
        self._open: list[tuple[str, str] | None] = []
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name in ("src", "href"):
            if a.get(name) and not str(a[name]).startswith(("#", "data:")):
                self.external.append(str(a[name]))
        if tag == "span":
            key = a.get("data-key")
            self._open.append((key, a.get("data-value") or "") if key else None)
            self._text = []

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._open:
            tagged = self._open.pop()
            if tagged:
                self.values.setdefault(tagged[0], []).append((tagged[1], "".join(self._text)))


def _lookup(report: dict[str, Any], key: str) -> Any:
    node: Any = report
    for part in key.split("."):
        node = node[part]
    return node


def test_html_numbers_match_the_json_report(report: dict[str, Any]) -> None:
    from router.report.render import fmt

    page = render_html(report)
    parser = _Tagged()
    parser.feed(page)
    assert parser.external == [] and "<script src" not in page and "text/javascript" not in page
    required = {"requests", "energy_wh.value", "energy_wh.min", "energy_wh.max", "co2e_g.value", "cost_usd",
                "counterfactual.energy_wh.value", "avoided.large_calls", "avoided.energy_wh.value",
                "avoided.co2e_g.value", "avoided.cost_usd", "avoided.energy_share", "requests_per_wh.value",
                "by_tier.small.requests", "by_tier.large.energy_wh.value", "escalations.total"}
    assert required <= set(parser.values)
    for key, shown in parser.values.items():
        expected = _lookup(report, key)
        for exact, text in shown:
            assert float(exact) == pytest.approx(expected, rel=1e-12), key
            if key.endswith("share"):
                assert text == f"{expected:.0%}", key
            else:
                assert text == fmt(expected), key
    embedded = page.split('id="frugal-report">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded.replace("<\\/", "</")) == json.loads(json.dumps(report))
    assert page.count("<svg") == 4
    assert "leans high" in page or "lean high" in page


def test_csv_carries_the_same_figures(report: dict[str, Any]) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    index = {(r["section"], r["key"], r["metric"]): r for r in rows}
    assert float(index[("total", "", "energy_wh")]["value"]) == pytest.approx(0.0351)
    assert float(index[("total", "", "energy_wh")]["max"]) == pytest.approx(0.0472)
    assert float(index[("avoided", "", "large_calls")]["value"]) == 2
    assert float(index[("tier", "large", "cost_usd")]["value"]) == pytest.approx(0.0003)
    assert float(index[("daily", "2026-05-05", "requests_none")]["value"]) == 1


def test_table_renders_for_the_terminal(report: dict[str, Any]) -> None:
    out = io.StringIO()
    Console(file=out, width=140).print(render_table(report))
    text = out.getvalue()
    assert "0.0351 (0.0276–0.0472)" in text
    assert "2 large calls avoided (50%)" in text


def _python_totals(rows: list[LedgerRow]) -> dict[str, Any]:
    """The same figures summed in Python from raw rows, as an independent check of the SQL."""
    return {
        "requests": len(rows),
        "energy": sum(r.energy_wh for r in rows),
        "energy_max": sum(r.energy_wh_max for r in rows),
        "cf_min": sum(r.cf_energy_wh_min for r in rows),
        "cost": sum(r.cost_usd for r in rows),
        "avoided_calls": sum(1 for r in rows if r.route in ("search", "small") and r.status < 400),
        "large": sum(1 for r in rows if r.route == "large"),
        "escalations": sum(r.escalations for r in rows),
        "long_prompt": sum(1 for r in rows if "long_prompt" in r.flags),
        "days": len({r.created_at.date() for r in rows}),
    }


def _check_against_python(ledger: Ledger, since: datetime | None, until: datetime | None) -> None:
    report = build_report(ledger, since=since, until=until)
    expected = _python_totals(list(ledger.rows(since, until)))
    assert report["requests"] == expected["requests"]
    assert report["energy_wh"]["value"] == pytest.approx(expected["energy"])
    assert report["energy_wh"]["max"] == pytest.approx(expected["energy_max"])
    assert report["counterfactual"]["energy_wh"]["min"] == pytest.approx(expected["cf_min"])
    assert report["cost_usd"] == pytest.approx(expected["cost"])
    assert report["avoided"]["large_calls"] == expected["avoided_calls"]
    assert report["by_tier"]["large"]["requests"] == expected["large"]
    assert report["escalations"]["total"] == expected["escalations"]
    assert report["flags"]["long_prompt"] == expected["long_prompt"]
    assert len(report["daily"]) == expected["days"]


def test_hourly_rollup_and_edge_rows_agree_with_python_sums(tmp_path: Path) -> None:
    import random

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from ledger import synthetic_row  # the benchmark's row generator (bench/ledger.py)

    rng = random.Random(3)
    store = Ledger.open(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    rows = [synthetic_row(rng, i) for i in range(3000)]
    for row in rows[:50]:
        store.record(row)  # the per-request path
    store.record_many(rows[50:])
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    windows = [(None, None), (t0 + timedelta(days=40, minutes=17), None), (None, t0 + timedelta(days=200, seconds=5)),
               (t0 + timedelta(days=10, hours=3, minutes=59), t0 + timedelta(days=90, minutes=1)),
               (t0 + timedelta(days=5, hours=2, minutes=10), t0 + timedelta(days=5, hours=2, minutes=50)),
               (t0 + timedelta(days=7), t0 + timedelta(days=30))]
    for since, until in windows:
        _check_against_python(store, since, until)
    store.close()


def test_rollup_backfill_and_rebuild_reproduce_the_sums(tmp_path: Path) -> None:
    from sqlalchemy import delete, text

    from router.ledger.migrations import MIGRATIONS, migrate

    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    store = Ledger.open(url)
    store.record_many(known_rows())
    with store.engine.begin() as conn:  # pretend this ledger predates migration 0002
        conn.execute(text("DROP TABLE request_rollup"))
        conn.execute(text("DELETE FROM frugal_migrations WHERE name IN ('0002_hourly_rollup', '0005_rollup_degraded')"))
    assert migrate(store.engine, MIGRATIONS) == ["0002_hourly_rollup", "0005_rollup_degraded"]
    check_known_totals(build_report(store, since=datetime(2026, 5, 2, tzinfo=UTC)))
    with store.engine.begin() as conn:
        conn.execute(delete(store.rollup))
    assert build_report(store)["requests"] == 0
    store.rebuild_rollup()
    check_known_totals(build_report(store, since=datetime(2026, 5, 2, tzinfo=UTC)))
    store.close()


def test_the_method_states_the_median_of_the_large_answers_in_the_ledger(tmp_path: Path) -> None:
    from dataclasses import replace

    from router.energy.config import EnergyConfig
    from router.energy.estimator import EnergyEstimator

    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    rows = known_rows()
    ledger.record_many([replace(rows[0], completion_tokens=999),                 # search: not a large answer
                        replace(rows[2], request_id="a", completion_tokens=100),
                        replace(rows[2], request_id="b", completion_tokens=400),
                        replace(rows[2], request_id="c", completion_tokens=200),
                        replace(rows[3], route="large", completion_tokens=50)])  # failed: not an answer
    estimator = EnergyEstimator(EnergyConfig())
    assert estimator.method()["counterfactual"]["output_tokens"] == 300  # nothing seen yet
    estimator.remember(ledger)
    counterfactual = estimator.method()["counterfactual"]
    assert (counterfactual["output_tokens"], counterfactual["observed_large_answers"]) == (200, 3)
    ledger.close()
