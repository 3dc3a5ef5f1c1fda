"""Terminal (rich), JSON and CSV renderings of the report dict."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

CSV_HEADER = ("section", "key", "metric", "value", "min", "max")


def fmt(number: float | None, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, or an em dash for none."""
    if number is None:
        return "—"
    if number == 0:
        return "0"
    return f"{number:.{digits}g}"


def fmt_range(r: dict[str, float | None], unit: str = "") -> str:
    """``value (min–max) unit``."""
    suffix = f" {unit}" if unit else ""
    return f"{fmt(r['value'])} ({fmt(r['min'])}–{fmt(r['max'])}){suffix}"


def render_json(report: dict[str, Any]) -> str:
    """The report as indented JSON."""
    return json.dumps(report, indent=2, sort_keys=False)


def csv_rows(report: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """The report as long-format rows: section, key, metric, value, min, max."""

    def ranged(section: str, key: str, metric: str, r: dict[str, Any]) -> tuple[Any, ...]:
        return (section, key, metric, r["value"], r["min"], r["max"])

    if report["period"].get("client"):
        yield ("period", "", "client", report["period"]["client"], "", "")
    yield ("period", "", "first", report["period"]["first"], "", "")
    yield ("period", "", "last", report["period"]["last"], "", "")
    yield ("total", "", "requests", report["requests"], "", "")
    yield ("total", "", "failed", report.get("failed", 0), "", "")
    yield ("total", "", "degraded_requests", report["degraded"]["requests"], "", "")
    yield ("total", "", "escalations", report["escalations"]["total"], "", "")
    yield ("total", "", "escalated_requests", report["escalations"]["requests"], "", "")
    yield ("total", "", "unreturned_energy_wh", report["unreturned_energy_wh"], "", "")
    yield ranged("total", "", "energy_wh", report["energy_wh"])
    yield ranged("total", "", "co2e_g", report["co2e_g"])
    yield ("total", "", "cost_usd", report["cost_usd"], "", "")
    yield ranged("total", "", "requests_per_wh", report["requests_per_wh"])
    for tier, row in report["by_tier"].items():
        yield ("tier", tier, "requests", row["requests"], "", "")
        yield ("tier", tier, "share", row["share"], "", "")
        yield ranged("tier", tier, "energy_wh", row["energy_wh"])
        yield ranged("tier", tier, "co2e_g", row["co2e_g"])
        yield ("tier", tier, "cost_usd", row["cost_usd"], "", "")
    cf = report["counterfactual"]
    yield ranged("counterfactual", "", "energy_wh", cf["energy_wh"])
    yield ranged("counterfactual", "", "co2e_g", cf["co2e_g"])
    yield ("counterfactual", "", "cost_usd", cf["cost_usd"], "", "")
    av = report["avoided"]
    yield ("avoided", "", "large_calls", av["large_calls"], "", "")
    yield ("avoided", "", "large_calls_share", av["large_calls_share"], "", "")
    yield ranged("avoided", "", "energy_wh", av["energy_wh"])
    yield ranged("avoided", "", "co2e_g", av["co2e_g"])
    yield ("avoided", "", "cost_usd", av["cost_usd"], "", "")
    yield ("avoided", "", "energy_share", av["energy_share"], "", "")
    yield ("avoided", "", "energy_distinguishable_from_zero", av["energy_distinguishable_from_zero"], "", "")
    for day in report["daily"]:
        yield ("daily", day["date"], "requests", day["requests"], "", "")
        for tier, count in day["by_tier"].items():
            yield ("daily", day["date"], f"requests_{tier}", count, "", "")
        yield ranged("daily", day["date"], "energy_wh", day["energy_wh"])
        yield ranged("daily", day["date"], "counterfactual_energy_wh", day["counterfactual_energy_wh"])
        yield ranged("daily", day["date"], "avoided_energy_wh", day["avoided_energy_wh"])
        yield ranged("daily", day["date"], "co2e_g", day["co2e_g"])
        yield ("daily", day["date"], "cost_usd", day["cost_usd"], "", "")


def render_csv(report: dict[str, Any]) -> str:
    """The report as CSV (long format: section, key, metric, value, min, max)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(csv_rows(report))
    return out.getvalue()


def render_table(report: dict[str, Any]) -> Any:
    """The report as a rich renderable for the terminal."""
    from rich.console import Group
    from rich.table import Table

    period = report["period"]
    client = f"  client {period['client']}" if period.get("client") else ""
    summary = Table(title=f"Frugal savings report{client}  {period['first'] or '—'} → {period['last'] or '—'}",
                    show_header=True)
    summary.add_column("")
    summary.add_column("actual", justify="right")
    summary.add_column("all-large counterfactual", justify="right")
    summary.add_column("avoided", justify="right")
    cf, av = report["counterfactual"], report["avoided"]
    summary.add_row("energy (Wh)", fmt_range(report["energy_wh"]), fmt_range(cf["energy_wh"]), fmt_range(av["energy_wh"]))
    summary.add_row("CO2e (g)", fmt_range(report["co2e_g"]), fmt_range(cf["co2e_g"]), fmt_range(av["co2e_g"]))
    summary.add_row("cost (USD)", fmt(report["cost_usd"]), fmt(cf["cost_usd"]), fmt(av["cost_usd"]))
    summary.add_row("requests per Wh", fmt_range(report["requests_per_wh"]), fmt_range(cf["requests_per_wh"]), "")
    share = av["energy_share"]
    summary.caption = (
        f"{report['requests']} requests ({report.get('failed', 0)} failed); {av['large_calls']} large calls avoided "
        f"({av['large_calls_share']:.0%}); energy avoided {'—' if share is None else f'{share:.0%}'}; "
        f"{report['escalations']['requests']} escalated; {report['degraded']['requests']} degraded (not counted as "
        "avoided)" + ("" if av["energy_distinguishable_from_zero"] else "; energy avoided not distinguishable from zero")
    )
    tiers = Table(title="By tier")
    for name in ("tier", "requests", "share", "energy (Wh)", "CO2e (g)", "cost (USD)"):
        tiers.add_column(name, justify="left" if name == "tier" else "right")
    for tier, row in report["by_tier"].items():
        tiers.add_row(
            tier, str(row["requests"]), f"{row['share']:.1%}", fmt_range(row["energy_wh"]), fmt(row["co2e_g"]["value"]),
            fmt(row["cost_usd"]),
        )
    daily = Table(title="Daily")
    for name in ("date", "requests", "energy (Wh)", "counterfactual (Wh)", "avoided (Wh)", "cost (USD)"):
        daily.add_column(name, justify="left" if name == "date" else "right")
    for day in report["daily"][-31:]:
        daily.add_row(
            day["date"], str(day["requests"]), fmt(day["energy_wh"]["value"]), fmt(day["counterfactual_energy_wh"]["value"]),
            fmt(day["avoided_energy_wh"]["value"]), fmt(day["cost_usd"]),
        )
    return Group(summary, tiers, daily)
