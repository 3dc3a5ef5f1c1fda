"""``frugal thresholds show|set|history``, ``frugal calibrate`` and ``frugal calibrate-power``.

The typer layer only: the work is in ``router.admin.commands`` (thresholds, calibration runs) and
``router.energy.power_measurement`` (watts per busy thread).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from router.commands.common import (
    ConfigOpt,
    DataDirOpt,
    echo_json,
    fail,
    labelled_rows,
    live_thresholds,
    settings_from,
)
from router.core.errors import FrugalError

thresholds_app = typer.Typer(help="Show and change routing thresholds.", no_args_is_help=True)


@thresholds_app.command("show")
def thresholds_show(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Print every threshold with its current value and valid range."""
    from router.core.policy import all_specs
    from router.thresholds import ThresholdStore

    try:
        settings = settings_from(config, data_dir)
        store = ThresholdStore(all_specs(), settings.thresholds)
        values = live_thresholds(settings, store)
    except FrugalError as exc:
        fail(exc)
    echo_json({name: {**spec.to_dict(), "value": values[name]} for name, spec in store.specs.items()})


@thresholds_app.command("set")
def thresholds_set(
    assignments: Annotated[list[str], typer.Argument(help="NAME=VALUE pairs, e.g. route.large=0.3")],
    reason: Annotated[str, typer.Option(help="why: kept in the audit trail")],
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
) -> None:
    """Change thresholds in the shared database (all at once or none); servers pick it up within a poll."""
    from router.admin.commands import set_thresholds

    try:
        change = set_thresholds(settings_from(config, data_dir), assignments, reason)
    except FrugalError as exc:
        fail(exc)
    echo_json(change.to_dict())


@thresholds_app.command("history")
def thresholds_history(
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="how many changes")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per change")] = False,
) -> None:
    """Print the audit trail, newest first: version, when, who, old -> new, why."""
    from router.admin.commands import threshold_history

    try:
        changes = threshold_history(settings_from(config, data_dir), limit)
    except FrugalError as exc:
        fail(exc)
    for change in changes:
        data = change.to_dict()
        if as_json:
            echo_json(data)
            continue
        diff = ", ".join(f"{name} {c['old']} -> {c['new']}" for name, c in data["changes"].items())
        typer.echo(f"v{data['version']}  {data['changed_at'][:19]}  {data['actor']}  {diff}  ({data['reason']})")


def calibrate(
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    data: Annotated[Path | None, typer.Option("--data", help="labelled JSONL (`text`, `tier`)")] = None,
    outcomes: Annotated[Path | None, typer.Option(
        help="bench/outcomes.py records from your tiers: --data rows they cover take the measured label "
             "(the cheapest tier that was right) instead of theirs")] = None,
    large_share: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="target large-tier share of logged traffic")] = None,
    max_under_routing: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="largest share of large-labelled requests sent to a cheaper tier")] = 0.02,
    since: Annotated[datetime | None, typer.Option(help="traffic mode: only requests since")] = None,
    limit: Annotated[int, typer.Option(min=1, help="traffic mode: most recent requests to use")] = 10_000,
    energy_wh: Annotated[list[str] | None, typer.Option("--energy-wh", help="TIER=WH energy per request override")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="change the live thresholds (default: dry run)")] = False,
    reason: Annotated[str | None, typer.Option(help="audit-trail reason when applying")] = None,
) -> None:
    """Choose route.large/route.search from labelled data (least energy within an under-routing bound) or traffic."""
    from router.admin.calibration import CalibrationRequest
    from router.admin.commands import calibrate as run
    from router.admin.commands import parse_assignments

    try:
        settings = settings_from(config, data_dir)
        overrides = {tier: float(wh) for tier, wh in parse_assignments(energy_wh or []).items()}
        examples = None if data is None else [(row["text"], row["tier"]) for row in labelled_rows(data)]
        measured = 0
        if outcomes is not None:
            from classifiers.datasets import outcome_labels_by_text, text_key

            if examples is None:
                raise FrugalError("--outcomes relabels the rows of --data: give both")
            by_text = outcome_labels_by_text(outcomes)
            measured = sum(1 for text, _ in examples if text_key(text) in by_text)
            examples = [(text, by_text.get(text_key(text), tier)) for text, tier in examples]
        job = CalibrationRequest(examples=examples, large_share=large_share, max_under_routing=max_under_routing,
                                 since=since, limit=limit, energy_wh=overrides)
        result = run(settings, job, apply=apply, reason=reason)
        if outcomes is not None:
            result["outcome_labels"] = measured
    except (FrugalError, ValueError) as exc:
        fail(exc)
    typer.echo(json.dumps(result, indent=2, default=str))
    for label in ("current", "proposed"):
        o = result[label]
        typer.echo(f"{label:>8}: route.large={o['thresholds']['route.large']:.4g} route.search="
                   f"{o['thresholds']['route.search']:.4g} shares={ {t: round(v, 3) for t, v in o['shares'].items()} } "
                   f"Wh/request={o['energy_wh_per_request']:.3g} under={o['under_routing']} over={o['over_routing']}",
                   err=True)


def calibrate_power(
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    seconds: Annotated[float, typer.Option(min=2.0, help="seconds of each phase (idle, then one busy thread)")] = 10.0,
    country: Annotated[str, typer.Option(help="ISO country code codecarbon needs (carbon is not used here)")] = "USA",
) -> None:
    """Measure watts per busy thread with codecarbon (optional `power` extra); prints JSON, changes nothing."""
    from router.energy.power_measurement import calibrate_power as measure

    try:
        settings = settings_from(config, data_dir)
        result = measure(seconds, country_iso_code=country)
    except (FrugalError, ValueError) as exc:
        fail(exc)
    result["configured"] = {"watts_per_thread": settings.energy.watts_per_thread,
                            "watts_min": settings.energy.watts_min, "watts_max": settings.energy.watts_max}
    echo_json(result)
