"""``frugal whatif``: replay the ledger's logged decisions under proposed routing thresholds, before applying them.

The typer layer and the table only: the replay and its prediction model are ``router.admin.whatif``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

import typer

from router.commands.common import ConfigOpt, DataDirOpt, fail, live_thresholds, settings_from
from router.core.errors import FrugalError
from router.report.render import fmt, fmt_range


def _pct(share: float) -> str:
    return f"{share:.1%}"


def _row(label: str, now: str, then: str, change: str = "") -> str:
    return f"  {label:<30}{now:<28}{then:<28}{change}"


def _delta(now: Mapping[str, float], then: Mapping[str, float]) -> str:
    diff = then["value"] - now["value"]
    return ("+" if diff > 0 else "") + fmt(diff)


def render_text(result: Mapping[str, Any]) -> str:
    """The replay as a table: current (logged) and proposed figures side by side, then the moves and the risk."""
    now, then = result["current"], result["proposed"]
    period = result["period"]
    excluded = ", ".join(f"{n} {why.replace('_', ' ')}" for why, n in result["excluded"].items())
    span = ("the whole ledger" if period["since"] is None and period["until"] is None
            else f"{period['since'] or 'the start'} to {period['until'] or 'now'}")
    lines = [f"What-if replay of {result['replayed']:,} requests ({span}); left out: {excluded}",
             _row("", "current (logged)", "proposed", "change")]
    lines += [_row(name, fmt(value, 4), fmt(result["thresholds"]["proposed"][name], 4))
              for name, value in result["thresholds"]["current"].items()]
    for key, label in (("first_tier_shares", "first tier"), ("final_route_shares", "final route")):
        for tier, share in then[key].items():
            lines.append(_row(f"{label} {tier}", _pct(now[key].get(tier, 0.0)), _pct(share)))
    for key, label in (("energy_wh", "energy Wh"), ("counterfactual_energy_wh", "all-large Wh"),
                       ("net_avoided_energy_wh", "net avoided Wh"), ("avoided_large_calls", "avoided large calls")):
        lines.append(_row(label, fmt_range(now[key]), fmt_range(then[key]), _delta(now[key], then[key])))
    lines.append(_row("degraded (kept as logged)", str(now["degraded"]), str(then["degraded"])))
    lines.append(_row("escalated", fmt(now["escalated"]), fmt(then["escalated"])))
    moves = [f"{a} -> {b} {n:,}" for a, row in result["moved"].items() for b, n in row.items() if a != b and n]
    risk = result["under_routing"]
    share = _pct(risk["moved_off_large_share"])
    lines.append(f"moved: {', '.join(moves) or 'none'}")
    lines.append(f"moved off large: {risk['moved_off_large']:,} ({share}); under-routing not measurable: {risk['reason']}")
    lines += ["model:", *(f"  - {assumption}" for assumption in result["assumptions"])]
    return "\n".join(lines)


def whatif(
    assignments: Annotated[list[str], typer.Option("--set", help="NAME=VALUE routing threshold to replay, e.g. "
                                                   "route.large=0.3 (repeat for route.search)")],
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    since: Annotated[datetime | None, typer.Option(help="replay requests from (ISO date or datetime, UTC)")] = None,
    until: Annotated[datetime | None, typer.Option(help="replay requests before (ISO date or datetime, UTC)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the replay as JSON")] = False,
) -> None:
    """Replay logged decisions under proposed route.large/route.search: route mix, energy, net savings. Changes nothing."""
    from router.admin.commands import parse_assignments
    from router.admin.persistence import open_ledger
    from router.admin.whatif import proposed_thresholds, run_whatif
    from router.core.policy import all_specs
    from router.thresholds import ThresholdStore

    try:
        changes = parse_assignments(assignments)
        settings = settings_from(config, data_dir)
        current = live_thresholds(settings, ThresholdStore(all_specs(), settings.thresholds))
        proposed_thresholds(current, changes)  # bad names and values are refused before the ledger is opened
        ledger = open_ledger(settings)
        try:
            result = run_whatif(ledger, current, changes, since=since, until=until)
        finally:
            ledger.close()
    except FrugalError as exc:
        fail(exc)
    typer.echo(json.dumps(result, indent=2) if as_json else render_text(result))
