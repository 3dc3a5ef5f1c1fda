"""Local energy as a property of the work, and the policy's energy objective (issue 22)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from router.accounting import Accounting
from router.core.errors import FrugalError, UnprocessableError
from router.core.policy import OBJECTIVE_ENERGY_FLAG, OBJECTIVES, Policy
from router.core.types import CompletionRequest, Message
from router.energy.config import MEASURED_WORK, EnergyConfig, WorkCost
from router.energy.estimator import EnergyEstimator, RunningMedian
from router.energy.work_calibration import WorkSample, fit_per_unit

SMALL = WorkCost(per_call_j=0.5, per_prompt_token_j=0.002, per_output_token_j=0.04, measured="test figures")


@dataclass
class Scores:
    scores: dict[str, float]


SMALL_BY_THRESHOLDS = Scores({"search": 0.1, "small": 0.8, "large": 0.1})


def test_the_same_tokens_get_the_same_estimate_however_busy_the_machine_was() -> None:
    est = EnergyEstimator(EnergyConfig(work={"smol": SMALL}))
    idle, idle_cpu = est.work("smol", cpu_seconds=0.4, prompt_tokens=100, output_tokens=50)
    busy, busy_cpu = est.work("smol", cpu_seconds=1.6, prompt_tokens=100, output_tokens=50)
    assert idle.energy_wh == busy.energy_wh  # the estimate is the work's
    assert busy_cpu == pytest.approx(4 * idle_cpu)  # the cross-check still shows the contention
    joules = 0.5 + 0.002 * 100 + 0.04 * 50
    c = est.config
    assert idle.energy_wh.value == pytest.approx(joules / 3600 * c.pue)
    assert idle.energy_wh.min == pytest.approx(joules / 3600 * c.watts_min / c.watts_per_thread * c.pue_min)
    assert idle.energy_wh.max == pytest.approx(joules / 3600 * c.watts_max / c.watts_per_thread * c.pue_max)
    assert idle.energy_wh.min < idle.energy_wh.value < idle.energy_wh.max
    assert idle_cpu == pytest.approx(est.local(0.4).energy_wh.value)
    longer, _ = est.work("smol", cpu_seconds=0.4, prompt_tokens=100, output_tokens=51)
    assert longer.energy_wh.value == pytest.approx(idle.energy_wh.value + 0.04 / 3600 * c.pue)


def test_work_nobody_measured_falls_back_to_cpu_time() -> None:
    est = EnergyEstimator(EnergyConfig())
    estimate, cross_check = est.work("some-unmeasured-model", cpu_seconds=2.0, prompt_tokens=10, output_tokens=10)
    assert estimate.energy_wh == est.local(2.0).energy_wh and cross_check == estimate.energy_wh.value
    assert est.expected_local("some-unmeasured-model", prompt_tokens=10, output_tokens=10) is None


def test_configured_work_overrides_the_shipped_measurements_and_is_reported_in_the_method() -> None:
    name = next(iter(MEASURED_WORK), "smol")
    est = EnergyEstimator(EnergyConfig(work={name: SMALL}))
    assert est.config.work_cost(name) == SMALL
    assert est.method()["local"]["measured_work"][name]["per_output_token_j"] == 0.04
    assert "cross_check" in est.method()["local"]


def test_the_shipped_measurements_cover_the_shipped_components_with_provenance() -> None:
    names = {"tantivy", "classifier:static", "SmolLM2-135M-Instruct.Q4_1"}  # search, default classifier, small
    assert names <= set(MEASURED_WORK), f"measure them with `frugal calibrate-energy`: {names - set(MEASURED_WORK)}"
    for name, cost in MEASURED_WORK.items():
        assert cost.measured and "calibrate-energy" in cost.measured, name
    llm = [cost for name, cost in MEASURED_WORK.items() if cost.per_output_token_j > 0]
    assert llm and all(cost.per_output_token_j > cost.per_prompt_token_j for cost in llm)  # decode costs more


def test_running_median_keeps_a_window_and_ignores_non_positive_values() -> None:
    median = RunningMedian(window=3, default=300)
    assert median.value == 300 and median.count == 0
    for value in (10, 0, -5, 30, 20):
        median.add(value)
    assert median.count == 3 and median.value == 20
    median.add(100)  # drops the 10
    assert median.value == 30


def test_expected_output_is_the_tiers_median_capped_by_max_tokens() -> None:
    est = EnergyEstimator(EnergyConfig(default_output_tokens=300))
    for tokens in (40, 60, 50):
        est.observe_small_output(tokens)
    assert est.expected_output_tokens("small", None) == 50
    assert est.expected_output_tokens("small", 16) == 16
    assert est.expected_output_tokens("large", None) == 50  # no large answer seen: as long as a small one
    est.observe_large_output(400)
    assert est.expected_output_tokens("large", None) == 400 and est.expected_output_tokens("large", 64) == 64


def test_before_any_large_answer_the_counterfactual_writes_the_answer_returned() -> None:
    est = EnergyEstimator(EnergyConfig(default_output_tokens=300))
    gpt = est.config.counterfactual

    def wh(tokens: int) -> float:
        return est.remote(gpt, prompt_tokens=10, completion_tokens=tokens, latency_s=None).energy_wh.value

    assert est.counterfactual(10, answer_tokens=40).energy_wh.value == pytest.approx(wh(40))
    assert est.counterfactual(10).energy_wh.value == pytest.approx(wh(300))  # length unknown: the default
    assert est.counterfactual(10, max_tokens=16).energy_wh.value == pytest.approx(wh(16))
    est.observe_large_output(120)
    assert est.counterfactual(10, answer_tokens=40).energy_wh.value == pytest.approx(wh(120))  # the median
    assert est.counterfactual(10, answer_tokens=40, max_tokens=64).energy_wh.value == pytest.approx(wh(64))
    assert "answer returned" in est.method()["counterfactual"]["output_tokens_rule"]


def test_expected_wh_prices_each_available_tier_from_the_request() -> None:
    est = EnergyEstimator(EnergyConfig(work={"smol": SMALL, "tantivy": WorkCost(per_call_j=0.001)}))
    accounting = Accounting(est)
    request = CompletionRequest(messages=[Message("user", "x" * 400)], max_tokens=20)
    expected = accounting.expected_wh(request, {"search": "tantivy", "small": "smol"}, large=True)
    assert set(expected) == {"search", "small", "large"}
    assert expected["small"] == pytest.approx((0.5 + 0.002 * 101 + 0.04 * 20) / 3600 * est.config.pue)
    assert expected["search"] < expected["small"]
    assert expected["large"] == pytest.approx(est.expected_remote(est.config.counterfactual, prompt_tokens=101,
                                                                  output_tokens=20).value)
    assert "large" not in accounting.expected_wh(request, {"small": "smol"}, large=False)
    assert "small" not in accounting.expected_wh(request, {"small": "unmeasured"}, large=True)


def test_energy_objective_sends_a_costlier_small_answer_to_the_large_tier() -> None:
    decision = Policy(objective="energy").decide(SMALL_BY_THRESHOLDS, {"small": 0.03, "large": 0.02})
    assert decision.tier == "large" and decision.flag == OBJECTIVE_ENERGY_FLAG
    assert "expected Wh: small 0.03, large 0.02" in decision.reason and "policy.objective=energy" in decision.reason


def test_local_first_keeps_it_local_and_says_so() -> None:
    decision = Policy(objective="local-first").decide(SMALL_BY_THRESHOLDS, {"small": 0.03, "large": 0.02})
    assert decision.tier == "small" and decision.flag is None
    assert "costs more than the large model" in decision.reason and "local-first" in decision.reason


def test_a_cheaper_small_answer_or_no_large_figure_keeps_the_thresholds_choice() -> None:
    policy = Policy()
    cheaper = policy.decide(SMALL_BY_THRESHOLDS, {"small": 0.001, "large": 0.02})
    assert cheaper.tier == "small" and cheaper.flag is None and "expected Wh: small 0.001" in cheaper.reason
    assert policy.decide(SMALL_BY_THRESHOLDS, {"small": 0.03}).tier == "small"  # large unavailable
    assert policy.decide(SMALL_BY_THRESHOLDS).tier == "small"
    large = Scores({"search": 0.1, "small": 0.2, "large": 0.7})
    assert policy.decide(large, {"small": 0.0001, "large": 0.02}).tier == "large"  # only ever moves up
    search = Scores({"search": 0.95, "small": 0.04, "large": 0.01})
    assert policy.decide(search, {"search": 1e-7, "small": 0.03, "large": 0.02}).tier == "search"


def test_unknown_objectives_are_refused_by_the_policy_and_the_settings() -> None:
    from pydantic import ValidationError

    from router.settings import Settings

    assert OBJECTIVES == ("energy", "local-first")
    with pytest.raises(UnprocessableError, match="local-first"):
        Policy(objective="cheapest")
    with pytest.raises(ValidationError, match="local-first"):
        Settings(policy={"objective": "cheapest"})
    assert Settings().policy.objective == "energy"


def test_nnls_fit_recovers_per_call_and_per_token_costs() -> None:
    truth = (0.01, 0.0001, 0.004)
    samples = [WorkSample(p, o, truth[0] + truth[1] * p + truth[2] * o)
               for p in (50, 200, 600) for o in (8, 64, 200)]
    per_call, per_prompt, per_output, residual = fit_per_unit(samples)
    assert (per_call, per_prompt, per_output) == pytest.approx(truth, rel=1e-6)
    assert residual < 1e-6
    with pytest.raises(FrugalError, match="at least 3"):
        fit_per_unit(samples[:2])


def test_a_migrated_ledger_backfills_the_first_tier_from_the_attempts(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from sqlalchemy import text

    from router.ledger.migrations import MIGRATIONS, migrate
    from router.ledger.row import LedgerRow
    from router.ledger.store import Ledger

    ledger = Ledger.open(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    row = LedgerRow(request_id="a", created_at=datetime(2026, 5, 1, 10, tzinfo=UTC), requested_model="frugal-auto",
                    route="small", forced=False, status=200, client_key_id=None, escalations=1,
                    attempts=[{"tier": "search", "energy_wh": 1e-6}, {"tier": "small", "energy_wh": 1e-3}],
                    latency_ms=1.0, prompt_tokens=10, completion_tokens=10)
    ledger.record(row)
    with ledger.engine.begin() as conn:  # pretend this ledger predates migration 0006
        conn.execute(text("ALTER TABLE requests DROP COLUMN first_tier"))
        conn.execute(text("ALTER TABLE requests DROP COLUMN cpu_energy_wh"))
        conn.execute(text("DELETE FROM frugal_migrations WHERE name = '0006_work_columns'"))
    assert migrate(ledger.engine, MIGRATIONS) == ["0006_work_columns"]
    with ledger.engine.begin() as conn:
        first, cpu = conn.execute(text("SELECT first_tier, cpu_energy_wh FROM requests")).one()
    assert first == "search" and cpu is None  # older rows: their energy_wh was the CPU-time figure itself
    assert json.loads(json.dumps(row.attempts))[0]["tier"] == first
    ledger.close()


@pytest.mark.parametrize("objective", ["energy", "local-first"])
def test_the_objective_routes_and_records_a_small_answer_expected_to_cost_more(tmp_path: Path, objective: str) -> None:
    from fastapi.testclient import TestClient

    from router.app import create_app
    from tests.conftest import echo_settings

    settings = echo_settings(tmp_path, thresholds={"route.large": 1.0, "route.search": 1.0},
                             policy={"objective": objective},
                             energy={"work": {"echo-small": {"per_output_token_j": 1000.0}}})
    with TestClient(create_app(settings)) as client:
        body = client.post("/v1/chat/completions", json={
            "model": "frugal-auto", "messages": [{"role": "user", "content": "rewrite this politely: come here"}],
        }).json()
        rows = list(client.app.state.services.ledger.rows())
    frugal = body["frugal"]
    assert "expected Wh: " in frugal["decision_reason"] and "small " in frugal["decision_reason"]
    [row] = rows
    assert row.cpu_energy_wh is not None and row.cpu_energy_wh > 0
    if objective == "energy":
        assert frugal["route"] == "large" and OBJECTIVE_ENERGY_FLAG in frugal["flags"]
        assert row.first_tier == "large" and OBJECTIVE_ENERGY_FLAG in row.flags
    else:
        assert frugal["route"] == "small" and OBJECTIVE_ENERGY_FLAG not in frugal.get("flags", [])
        assert row.first_tier == "small" and "local-first" in frugal["decision_reason"]
