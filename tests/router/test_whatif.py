"""What-if replay (``frugal whatif``, ``POST /admin/whatif``): figures worked out by hand on a small real ledger.

The ledger below holds twelve replayable requests and three that are left out (forced, failed, unscored).
Every expected figure is computed by hand in the comments from the rows' numbers and the model stated in
``router.admin.whatif``; the same checks run on SQLite and on the real PostgreSQL on 127.0.0.1:5432.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from router.admin.whatif import run_whatif
from router.cli import app
from router.core.errors import UnprocessableError
from router.ledger.row import LedgerRow
from router.ledger.store import Ledger
from tests.admin.conftest import ADMIN_KEY, app_client
from tests.conftest import echo_settings

T0 = datetime(2026, 5, 1, 10, tzinfo=UTC)
CURRENT = {"route.large": 0.15, "route.search": 0.5, "search.min_confidence": 0.65, "small.min_confidence": 0.5}
PG_URL = os.environ.get("FRUGAL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
DEGRADED = ["degraded:large-unavailable"]

# name: (search, small, large) scores, first tier, route, escalations, flags, energy (value, min, max),
#       counterfactual energy (value, min, max), cost, unreturned Wh. Every counterfactual costs 0.001 USD.
ROWS: dict[str, tuple[Any, ...]] = {
    "A1": ((.9, .05, .05), "search", "search", 0, [], (.0001, .00005, .0002), (.02, .01, .04), 0.0, 0.0),
    "A2": ((.9, .05, .05), "search", "search", 0, [], (.0001, .00005, .0002), (.02, .01, .04), 0.0, 0.0),
    "B": ((.6, .3, .1), "search", "small", 1, [], (.0021, .001, .004), (.02, .01, .04), 0.0, .0001),
    "C1": ((.1, .8, .1), "small", "small", 0, [], (.002, .001, .004), (.02, .01, .04), 0.0, 0.0),
    "C2": ((.1, .8, .1), "small", "small", 0, [], (.002, .001, .004), (.02, .01, .04), 0.0, 0.0),
    "C3": ((.1, .8, .1), "small", "small", 0, [], (.002, .001, .004), (.02, .01, .04), 0.0, 0.0),
    "D": ((.1, .7, .12), "small", "large", 1, [], (.022, .011, .044), (.02, .01, .04), .001, .002),
    "E1": ((.1, .3, .2), "large", "large", 0, [], (.02, .01, .04), (.02, .01, .04), .001, 0.0),
    "E2": ((.1, .3, .2), "large", "large", 0, [], (.02, .01, .04), (.02, .01, .04), .001, 0.0),
    "F": ((.7, .1, .25), "large", "large", 0, [], (.02, .01, .04), (.02, .01, .04), .001, 0.0),
    "G": ((.1, .2, .7), "large", "large", 0, [], (.03, .02, .05), (.03, .02, .05), .0015, 0.0),
    "H": ((.1, .6, .2), "large", "small", 1, DEGRADED, (.002, .001, .004), (.02, .01, .04), 0.0, 0.0),
}


def ledger_rows(start: datetime = T0) -> list[LedgerRow]:
    """The twelve replayable rows (one minute apart, in ``ROWS`` order) and three that are left out."""
    rows = []
    for i, (name, (scores, first, route, esc, flags, e, cf, cost, unreturned)) in enumerate(ROWS.items()):
        rows.append(LedgerRow(
            request_id=name, created_at=start + timedelta(minutes=i), requested_model="frugal-auto", route=route,
            forced=False, status=200, escalations=esc, flags=list(flags), first_tier=first,
            score_search=scores[0], score_small=scores[1], score_large=scores[2],
            energy_wh=e[0], energy_wh_min=e[1], energy_wh_max=e[2], cf_energy_wh=cf[0], cf_energy_wh_min=cf[1],
            cf_energy_wh_max=cf[2], cost_usd=cost, cf_cost_usd=.001, escalation_energy_wh=unreturned))
    base = rows[0]
    rows.append(replace(base, request_id="I-forced", forced=True, route="large", first_tier="large",
                        score_search=None, score_small=None, score_large=None, requested_model="frugal-large"))
    rows.append(replace(base, request_id="J-failed", status=503, route=None))
    rows.append(replace(base, request_id="K-unscored", score_search=None, score_small=None, score_large=None))
    return rows


def approx(value: Any) -> Any:
    return pytest.approx(value, rel=1e-9, abs=1e-12)


def ranged(value: float, low: float, high: float) -> Any:
    return approx({"value": value, "min": low, "max": high})


def check_current(result: dict[str, Any]) -> None:
    """The logged figures: sums of ``ROWS``."""
    now = result["current"]
    assert result["replayed"] == 12 and now["requests"] == 12
    assert result["excluded"] == {"forced": 1, "failed": 1, "unscored": 1, "no_first_tier": 0}
    assert now["first_tier_shares"] == approx({"search": 3 / 12, "small": 4 / 12, "large": 5 / 12})
    assert now["final_route_shares"] == approx({"search": 2 / 12, "small": 5 / 12, "large": 5 / 12})
    # .0002 + .0021 + .006 + .022 + .04 + .02 + .03 + .002, and the same over the bounds
    assert now["energy_wh"] == ranged(.1223, .0661, .2344)
    assert now["counterfactual_energy_wh"] == ranged(.25, .13, .49)  # 11 x .02 + .03
    # net of the degraded H: (.25 - .02) - (.1223 - .002); min .12 - .2304; max .45 - .0651
    assert now["net_avoided_energy_wh"] == ranged(.1097, -.1104, .3849)
    assert now["avoided_large_calls"] == ranged(6, 6, 6)  # A1 A2 B C1 C2 C3
    assert now["degraded"] == 1 and now["escalated"] == approx(3)
    assert now["unreturned_energy_wh"] == approx(.0021)
    assert now["cost_usd"] == approx(.0055) and now["counterfactual_cost_usd"] == approx(.012)


def check_raise_large(result: dict[str, Any]) -> None:
    """route.large 0.15 -> 0.3: E1 E2 go to small, F to search, H (degraded) stays as logged."""
    assert result["thresholds"] == {"current": {"route.large": .15, "route.search": .5},
                                    "proposed": {"route.large": .3, "route.search": .5}}
    check_current(result)
    assert result["moved"] == {"search": {"search": 3, "small": 0, "large": 0},
                               "small": {"search": 0, "small": 4, "large": 0},
                               "large": {"search": 1, "small": 3, "large": 1}}
    assert result["moved_requests"] == 4
    risk = result["under_routing"]
    assert risk["value"] is None and "outcome labels" in risk["reason"]
    assert risk["moved_off_large"] == 4 and risk["moved_off_large_share"] == approx(4 / 12)
    # observed: search 3 first sent, B escalated (1/3), mean of A1 A2; small 4, D escalated (1/4), mean of C1-C3
    seen = result["observed"]
    assert seen["search"]["requests"] == 3 and seen["search"]["escalation_rate"] == approx(1 / 3)
    assert seen["search"]["mean_energy_wh"] == ranged(.0001, .00005, .0002)
    assert seen["small"]["requests"] == 4 and seen["small"]["escalation_rate"] == approx(1 / 4)
    assert seen["small"]["mean_energy_wh"] == ranged(.002, .001, .004)
    then = result["proposed"]
    assert then["requests"] == 12
    assert then["first_tier_shares"] == approx({"search": 4 / 12, "small": 7 / 12, "large": 1 / 12})
    # search: A1 A2 + F x 2/3; small: B C1-C3 H + E x 2 x 3/4; large: D G + E x 2 x 1/4 + F x 1/3
    assert then["final_route_shares"] == approx({"search": (2 + 2 / 3) / 12, "small": 6.5 / 12,
                                                 "large": (2 + .5 + 1 / 3) / 12})
    # kept as logged .0623 (.0361, .1144); E: 2 x .002 + .04/4 (.002, .008 + .08); F: .0001 + .02/3 (.00005, .0402)
    assert then["energy_wh"] == ranged(.0623 + .014 + .0001 + .02 / 3, .03815, .2426)
    assert then["counterfactual_energy_wh"] == ranged(.25, .13, .49)
    # kept .1097 (-.0204, .2949); E .04 - .014 (.02 - .088, .08 - .002); F .02 - (.0001 + .02/3) (.01 - .0402, .03995)
    assert then["net_avoided_energy_wh"] == ranged(.1097 + .026 + .02 - .0001 - .02 / 3, -.1186, .41285)
    assert then["avoided_large_calls"] == ranged(6 + 1.5 + 2 / 3, 6, 9)
    assert then["degraded"] == 1 and then["escalated"] == approx(3 + .5 + 1 / 3)
    assert then["unreturned_energy_wh"] == approx(.0021 + .001 + .0001 / 3)
    assert then["cost_usd"] == approx(.0025 + .0005 + .001 / 3) and then["counterfactual_cost_usd"] == approx(.012)


def check_move_up_and_across(result: dict[str, Any]) -> None:
    """route.large 0.11, route.search 0.65: D (P(large) .12) moves up to large, B from search to small."""
    check_current(result)
    assert result["moved"] == {"search": {"search": 2, "small": 1, "large": 0},
                               "small": {"search": 0, "small": 3, "large": 1},
                               "large": {"search": 0, "small": 0, "large": 5}}
    assert result["moved_requests"] == 2 and result["under_routing"]["moved_off_large"] == 0
    then = result["proposed"]
    assert then["first_tier_shares"] == approx({"search": 2 / 12, "small": 4 / 12, "large": 6 / 12})
    assert then["final_route_shares"] == approx({"search": 2 / 12, "small": 4.75 / 12, "large": 5.25 / 12})
    # kept: .1223 - .0021 - .022 (.0541, .1864); B: .002 + .02/4 (.001, .044); D: its counterfactual .02 (.01, .04)
    assert then["energy_wh"] == ranged(.1252, .0651, .2704)
    # kept .0938 (-.0824, .3169); B .02 - .007 (.01 - .044, .04 - .001); D moved up: exactly 0
    assert then["net_avoided_energy_wh"] == ranged(.1068, -.1164, .3559)
    assert then["avoided_large_calls"] == ranged(5.75, 5, 6)
    assert then["escalated"] == approx(1.25) and then["unreturned_energy_wh"] == approx(.0005)
    assert then["cost_usd"] == approx(.0045 + .00025 + .001)


def check_ledger(ledger: Ledger) -> None:
    ledger.record_many(ledger_rows())
    check_raise_large(run_whatif(ledger, CURRENT, {"route.large": 0.3}))
    check_move_up_and_across(run_whatif(ledger, CURRENT, {"route.large": "0.11", "route.search": 0.65}))
    same = run_whatif(ledger, CURRENT, {"route.large": 0.15})
    assert same["proposed"] == same["current"] and same["moved_requests"] == 0
    window = run_whatif(ledger, CURRENT, {"route.large": 0.3}, since=T0 + timedelta(minutes=7),
                        until=(T0 + timedelta(minutes=10)).replace(tzinfo=None))  # E1 E2 F; naive is UTC
    assert window["replayed"] == 3 and window["excluded"] == dict.fromkeys(window["excluded"], 0)
    assert window["period"] == {"since": "2026-05-01T10:07:00+00:00", "until": "2026-05-01T10:10:00+00:00"}
    check_raise_large(run_whatif(ledger, CURRENT, {"route.large": 0.3}, since=T0 - timedelta(days=1)))  # every row
    with pytest.raises(UnprocessableError, match="nothing to replay"):
        run_whatif(ledger, CURRENT, {"route.large": 0.3}, since=T0 + timedelta(days=1))


def test_a_hand_built_sqlite_ledger_replays_to_the_hand_computed_figures(tmp_path: Path) -> None:
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite3'}")
    try:
        check_ledger(ledger)
    finally:
        ledger.close()


@pytest.mark.postgres
def test_the_same_ledger_on_postgresql_gives_the_same_figures() -> None:
    schema = f"frugal_whatif_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL + "?connect_timeout=5")
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_URL} is unreachable ({exc.orig}); this test fails rather than skips")
    try:
        ledger = Ledger.open(f"{PG_URL}?connect_timeout=5&options=-csearch_path%3D{schema}")
        try:
            check_ledger(ledger)
        finally:
            ledger.close()
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_with_nothing_observed_on_a_tier_its_default_energy_is_used_and_said() -> None:
    from router.admin.whatif import predict
    from router.ledger.interface import REPLAY_SUMS, ReplayCell, ReplayCells

    sums = dict.fromkeys(REPLAY_SUMS, 0.0) | {"energy_wh": .02, "energy_wh_min": .01, "energy_wh_max": .04,
                                               "cf_energy_wh": .02, "cf_energy_wh_min": .01, "cf_energy_wh_max": .04}
    only_large = ReplayCells([ReplayCell("large", "large", False, False, "small", 2, sums)], {"forced": 0})
    result = predict(only_large, CURRENT, {"route.large": 1.0, "route.search": 1.0})
    small = result["observed"]["small"]
    assert small["requests"] == 0 and small["escalation_rate"] == 0
    assert small["source"].startswith("default 0.002 Wh") and "0 assumed" in small["source"]
    # two requests at the default .002 Wh each, none escalating; worst case both escalate at the .04 maximum
    assert result["proposed"]["energy_wh"] == ranged(.004, .004, .004 + .04)
    assert result["proposed"]["net_avoided_energy_wh"] == ranged(.016, .01 - .044, .04 - .004)
    assert result["under_routing"]["moved_off_large"] == 2 and result["under_routing"]["moved_off_large_share"] == 1


@pytest.mark.parametrize(("changes", "message"), [
    ({"small.min_confidence": 0.4}, "only routing thresholds (route.large, route.search) can be replayed"),
    ({"route.large": 0.3, "search.min_confidence": 0.4}, "exists only for the tiers a request actually reached"),
    ({"route.huge": 0.3}, "unknown threshold 'route.huge'. Valid thresholds: route.large [0.0, 1.0], route.search"),
    ({"route.large": 1.5}, "route.large=1.5 is outside [0.0, 1.0]"),
    ({"route.large": "abc"}, "route.large must be a number, got 'abc'"),
    ({"route.large": True}, "route.large must be a number"),
    ({}, "give at least one routing threshold"),
])
def test_bad_thresholds_are_refused_before_the_ledger_is_read(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(UnprocessableError) as caught:
        run_whatif(None, CURRENT, changes)  # type: ignore[arg-type]  # never reached: validation comes first
    assert message in caught.value.message
    assert caught.value.status_code == 422 and caught.value.param == "thresholds"


runner = CliRunner()


def seed(data_dir: Path, start: datetime = T0) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger.open(f"sqlite:///{(data_dir / 'ledger.sqlite3').resolve()}")
    try:
        ledger.record_many(ledger_rows(start))
    finally:
        ledger.close()


def test_the_cli_prints_a_table_and_json(tmp_path: Path) -> None:
    seed(tmp_path / "data")
    data = str(tmp_path / "data")
    shown = runner.invoke(app, ["whatif", "--set", "route.large=0.3", "--data-dir", data])
    assert shown.exit_code == 0, shown.output
    table = shown.stdout
    assert "What-if replay of 12 requests" in table and "left out: 1 forced, 1 failed, 1 unscored" in table
    assert "route.large" in table and "0.3" in table
    assert "moved: large -> search 1, large -> small 3" in table
    assert "moved off large: 4 (33.3%)" in table and "outcome labels" in table
    assert "net avoided Wh" in table and "0.149" in table  # proposed net avoided .1489 (3 significant digits)
    got = runner.invoke(app, ["whatif", "--set", "route.large=0.11", "--set", "route.search=0.65", "--json",
                              "--data-dir", data, "--since", "2026-05-01", "--until", "2026-05-02"])
    assert got.exit_code == 0, got.output
    result = json.loads(got.stdout)
    check_move_up_and_across(result)
    assert result["period"]["since"] == "2026-05-01T00:00:00+00:00"


@pytest.mark.parametrize(("args", "message"), [
    (["--set", "route.large"], "expected NAME=VALUE, got 'route.large'"),
    (["--set", "route.large=abc"], "route.large must be a number, got 'abc'"),
    (["--set", "route.large=2"], "outside [0.0, 1.0]"),
    (["--set", "small.min_confidence=0.3"], "only routing thresholds"),
    (["--set", "nope=0.3"], "unknown threshold 'nope'. Valid thresholds: route.large"),
    (["--set", "route.large=0.3", "--since", "2027-01-01"], "nothing to replay"),
    (["--set", "route.large=0.3", "--since", "2026-05-02", "--until", "2026-05-01"], "must be before until"),
])
def test_the_cli_exits_2_with_a_clear_error(tmp_path: Path, args: list[str], message: str) -> None:
    seed(tmp_path / "data")
    result = runner.invoke(app, ["whatif", *args, "--data-dir", str(tmp_path / "data")])
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and message in result.stderr, result.output


def test_an_empty_ledger_has_nothing_to_replay(tmp_path: Path) -> None:
    result = runner.invoke(app, ["whatif", "--set", "route.large=0.3", "--data-dir", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "error: nothing to replay" in result.stderr
    assert "0 forced, 0 failed, 0 unscored" in result.stderr


@pytest.fixture
def admin_client(tmp_path: Path) -> Iterator[Any]:
    """The app on a ledger holding the hand-built rows of the last hour, behind an admin key."""
    settings = echo_settings(tmp_path, auth={"admin_key": ADMIN_KEY})
    seed(settings.data_dir, datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30))
    with app_client(settings) as client:
        client.headers["authorization"] = f"Bearer {ADMIN_KEY}"
        yield client


def test_the_api_replays_and_refuses_bad_input(admin_client: Any) -> None:
    answer = admin_client.post("/admin/whatif", json={"thresholds": {"route.large": 0.3}})
    assert answer.status_code == 200, answer.text
    check_raise_large(answer.json())
    since = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    answer = admin_client.post("/admin/whatif", json={"thresholds": {"route.large": 0.11, "route.search": 0.65},
                                                      "since": since})
    check_move_up_and_across(answer.json())
    assert admin_client.get("/admin/thresholds").json()["version"] == 0  # a replay changes nothing
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    for body, message in (
        ({"thresholds": {"search.min_confidence": 0.5}}, "only routing thresholds"),
        ({"thresholds": {"route.nope": 0.5}}, "Valid thresholds: route.large [0.0, 1.0], route.search [0.0, 1.0]"),
        ({"thresholds": {"route.large": -0.1}}, "outside [0.0, 1.0]"),
        ({"thresholds": {"route.large": 0.3}, "since": future}, "nothing to replay"),
        ({"thresholds": {"route.large": 0.3}, "since": future, "until": since}, "must be before until"),
        ({"thresholds": {}}, "thresholds"),
        ({"thresholds": {"route.large": 0.3}, "apply": True}, "apply"),
    ):
        refused = admin_client.post("/admin/whatif", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert message in json.dumps(refused.json()["error"]), (body, refused.text)
    assert admin_client.post("/admin/whatif", json={"thresholds": {"route.large": 0.3}},
                             headers={"authorization": "Bearer wrong-key-0000"}).status_code == 401


def test_the_dashboard_offers_a_preview_of_the_routing_thresholds(admin_client: Any) -> None:
    page = admin_client.get("/admin").text
    assert '<button type="button" id="preview">Preview</button> <button type="submit" id="apply">' in page
    assert 'data-threshold="route.large" data-replayable="1"' in page
    assert 'data-threshold="small.min_confidence" aria-label' in page  # a gate is not replayable
    assert '<div id="whatif" hidden>' in page and "fetch(path" in page and "'/admin/whatif'" in page
    config = json.loads(page.split('id="frugal-dashboard">', 1)[1].split("</script>", 1)[0])
    assert config["hours"] == 48 and datetime.fromisoformat(config["since"]).tzinfo is not None
    assert "innerHTML" not in page  # the preview writes through textContent only


def test_a_request_the_energy_objective_sent_large_replays_as_large_while_the_rule_picks_small(tmp_path: Path) -> None:
    from router.core.policy import OBJECTIVE_ENERGY_FLAG

    ledger = Ledger.open(f"sqlite:///{tmp_path / 'objective.sqlite3'}")
    base = LedgerRow(request_id="o", created_at=T0, requested_model="frugal-auto", route="large", forced=False,
                     status=200, client_key_id=None, escalations=0, attempts=[{"tier": "large", "energy_wh": 0.02}],
                     latency_ms=1.0, prompt_tokens=900, completion_tokens=20, first_tier="large",
                     score_search=0.1, score_small=0.8, score_large=0.1, flags=[OBJECTIVE_ENERGY_FLAG])
    ledger.record_many([base, replace(base, request_id="p", flags=[])])
    result = run_whatif(ledger, CURRENT, {"route.large": 0.5})
    ledger.close()
    # both were first sent large with P(large) 0.1 < 0.5: the flagged one goes large again, the other moves to small
    assert result["moved"]["large"] == {"search": 0, "small": 1, "large": 1}
