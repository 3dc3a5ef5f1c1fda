"""One self-contained HTML report that opens offline and reads well for a non-engineer.

Charts are inline SVG drawn by pygal with its JavaScript turned off (pygal otherwise links a CDN) and
its inline config script removed, so the file has no scripts and no external references at all. Every number shown carries ``data-key`` (its path in the
JSON report) and ``data-value`` (the exact figure), which the tests check against the JSON report.
"""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

from router.report.render import fmt

_PYGAL_SCRIPT = re.compile(r'<script type="text/javascript">.*?</script>', re.DOTALL)
TIER_COLOURS = {"search": "#2a9d8f", "small": "#e9c46a", "large": "#e76f51", "none": "#8d99ae"}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1d2733;padding:0 1rem}
h1{margin-bottom:.2rem}.sub{color:#5c6b7a;margin-top:0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:1rem;margin:1.5rem 0}
.card{border:1px solid #d8dee4;border-radius:10px;padding:1rem;background:#f8fafc}
.card .big{font-size:1.8rem;font-weight:600}.card .lbl{color:#5c6b7a;font-size:.9rem}.rng{color:#5c6b7a;font-size:.85rem}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{border-bottom:1px solid #e3e8ee;padding:.4rem .6rem;text-align:right}
th:first-child,td:first-child{text-align:left}.charts{display:grid;grid-template-columns:1fr 1fr;gap:1rem}
.chart{border:1px solid #e3e8ee;border-radius:10px;padding:.5rem}section{margin:2rem 0}
.method li{margin:.3rem 0}code{background:#f1f3f5;padding:0 .2rem;border-radius:3px}
"""


def _num(key: str, value: Any, unit: str = "") -> str:
    """A number tagged with its JSON path and exact value."""
    shown = fmt(value) if isinstance(value, int | float) or value is None else escape(str(value))
    exact = "" if value is None else escape(repr(value))
    suffix = f" {escape(unit)}" if unit else ""
    return f'<span data-key="{escape(key)}" data-value="{exact}">{shown}</span>{suffix}'


def _ranged(key: str, r: dict[str, Any], unit: str = "") -> str:
    return (
        f'{_num(key + ".value", r["value"], unit)} '
        f'<span class="rng">({_num(key + ".min", r["min"])}–{_num(key + ".max", r["max"])})</span>'
    )


def _percent(key: str, share: float | None) -> str:
    shown = "—" if share is None else f"{share:.0%}"
    exact = "" if share is None else repr(share)
    return f'<span data-key="{escape(key)}" data-value="{exact}">{shown}</span>'


def _charts(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(title, inline SVG) for each chart."""
    import pygal
    from pygal.style import Style

    tiers = [t for t, row in report["by_tier"].items() if row["requests"] or t in TIER_COLOURS and t != "none"]
    style = Style(background="white", plot_background="white", colors=tuple(TIER_COLOURS.get(t, "#264653") for t in tiers))
    common: dict[str, Any] = {"js": [], "disable_xml_declaration": True, "width": 520, "height": 340, "style": style}
    charts: list[tuple[str, str]] = []

    pie = pygal.Pie(inner_radius=0.45, **common)
    for tier in tiers:
        pie.add(tier, report["by_tier"][tier]["requests"])
    charts.append(("Route mix (requests per tier)", pie.render(is_unicode=True)))

    pair = Style(background="white", plot_background="white", colors=("#2a9d8f", "#e76f51", "#264653"))
    bars = pygal.Bar(**{**common, "style": pair}, y_title="Wh")
    cf = report["counterfactual"]["energy_wh"]
    for label, r in (("Frugal (actual)", report["energy_wh"]), ("all large (counterfactual)", cf)):
        bars.add(label, [{"value": r["value"], "ci": {"low": r["min"], "high": r["max"]}}])
    charts.append(("Energy: actual vs all-large counterfactual (bars show min–max)", bars.render(is_unicode=True)))

    days = report["daily"][-60:]
    line = pygal.Line(**{**common, "style": pair}, x_label_rotation=30, show_minor_x_labels=False, y_title="Wh")
    line.x_labels = [d["date"] for d in days]
    line.x_labels_major = line.x_labels[:: max(1, len(days) // 8)]
    line.add("actual", [d["energy_wh"]["value"] for d in days])
    line.add("counterfactual", [d["counterfactual_energy_wh"]["value"] for d in days])
    line.add("avoided", [d["avoided_energy_wh"]["value"] for d in days])
    charts.append(("Daily energy (Wh)", line.render(is_unicode=True)))

    stack = pygal.StackedBar(**common, x_label_rotation=30, show_minor_x_labels=False)
    stack.x_labels = [d["date"] for d in days]
    stack.x_labels_major = stack.x_labels[:: max(1, len(days) // 8)]
    for tier in tiers:
        stack.add(tier, [d["by_tier"].get(tier, 0) for d in days])
    charts.append(("Daily requests by tier", stack.render(is_unicode=True)))
    return charts


def _method(method: dict[str, Any]) -> str:
    def items(values: list[str]) -> str:
        return "".join(f"<li>{escape(str(v))}</li>" for v in values)

    versions = ", ".join(f"{escape(k)} {escape(str(v))}" for k, v in method.get("versions", {}).items())
    local = method.get("local", {})
    watts = local.get("watts_per_thread", {})
    pue = local.get("pue", {})
    cf = method.get("counterfactual", {})
    return f"""
<section class="method"><h2>How these figures are made</h2>
<p>Every figure is an <b>estimate with a range</b>. Work done on this machine (search, the small model and the
router's own classification) is measured in CPU seconds and converted with
<code>CPU seconds × {escape(str(watts.get('value', '?')))} W per busy thread ({escape(str(watts.get('min', '?')))}–{escape(str(watts.get('max', '?')))} W)
× PUE {escape(str(pue.get('value', '?')))} ({escape(str(pue.get('min', '?')))}–{escape(str(pue.get('max', '?')))})</code>.
Large-model answers are estimated with <b>EcoLogits</b> from the model's size, the tokens it wrote and the time it took.
EcoLogits tends to <b>lean high</b>: it assumes modest batching and rounds GPU counts up, so large-model figures (and
therefore the savings) are more likely over- than under-stated. CO2e uses EcoLogits' electricity mixes: zone
<code>{escape(str(method.get('zone', '?')))}</code> for local work, {escape(str(method.get('large_zone', '?')))} for remote models.
The counterfactual is <code>{escape(str(cf.get('model', '?')))}</code> answering every request with
{escape(str(cf.get('output_tokens', '?')))} output tokens ({escape(str(cf.get('output_tokens_rule', '')))}).</p>
<h3>Counted</h3><ul>{items(method.get('counted', []))}</ul>
<h3>Not counted</h3><ul>{items(method.get('not_counted', []))}</ul>
<h3>Caveats</h3><ul>{items(method.get('caveats', []))}</ul>
<h3>Sources</h3><ul>{items(method.get('sources', []))}</ul>
<p class="sub">Versions: {versions or '—'}</p></section>"""


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (inline CSS and SVG, no scripts, no network)."""
    period = report["period"]
    client_title = f" — client {period['client']}" if period.get("client") else ""
    av, cf = report["avoided"], report["counterfactual"]
    cards = [
        ("Requests", _num("requests", report["requests"])),
        ("Large-model calls avoided", (
            f'{_num("avoided.large_calls", av["large_calls"])} '
            f'<span class="rng">({_percent("avoided.large_calls_share", av["large_calls_share"])} of requests)</span>')),
        ("Energy avoided", _ranged("avoided.energy_wh", av["energy_wh"], "Wh")
         + f' <span class="rng">({_percent("avoided.energy_share", av["energy_share"])} of all-large)</span>'
         + ("" if av.get("energy_distinguishable_from_zero", True)
            else ' <span class="rng" data-key="avoided.not_distinguishable">not distinguishable from zero</span>')),
        ("Degraded answers", (
            f'{_num("degraded.requests", report["degraded"]["requests"])} '
            f'<span class="rng">(needed the large tier, answered by a cheaper one, using '
            f'{_num("degraded.energy_wh.value", report["degraded"]["energy_wh"]["value"], "Wh")}; '
            'not counted as avoided)</span>')),
        ("CO2e avoided", _ranged("avoided.co2e_g", av["co2e_g"], "g")),
        ("Money avoided", _num("avoided.cost_usd", av["cost_usd"], "USD")),
        ("Requests per Wh", _ranged("requests_per_wh", report["requests_per_wh"])),
    ]
    card_html = "".join(f'<div class="card"><div class="lbl">{escape(t)}</div><div class="big">{v}</div></div>' for t, v in cards)
    totals = f"""<table><tr><th></th><th>Frugal (actual)</th><th>all large (counterfactual)</th><th>avoided</th></tr>
<tr><td>Energy (Wh)</td><td>{_ranged("energy_wh", report["energy_wh"])}</td><td>{_ranged("counterfactual.energy_wh", cf["energy_wh"])}</td><td>{_ranged("avoided.energy_wh", av["energy_wh"])}</td></tr>
<tr><td>CO2e (g)</td><td>{_ranged("co2e_g", report["co2e_g"])}</td><td>{_ranged("counterfactual.co2e_g", cf["co2e_g"])}</td><td>{_ranged("avoided.co2e_g", av["co2e_g"])}</td></tr>
<tr><td>Cost (USD)</td><td>{_num("cost_usd", report["cost_usd"])}</td><td>{_num("counterfactual.cost_usd", cf["cost_usd"])}</td><td>{_num("avoided.cost_usd", av["cost_usd"])}</td></tr>
</table>"""
    tier_rows = "".join(
        f'<tr><td>{escape(t)}</td><td>{_num(f"by_tier.{t}.requests", r["requests"])}</td>'
        f'<td>{_percent(f"by_tier.{t}.share", r["share"])}</td><td>{_ranged(f"by_tier.{t}.energy_wh", r["energy_wh"])}</td>'
        f'<td>{_num(f"by_tier.{t}.co2e_g.value", r["co2e_g"]["value"])}</td><td>{_num(f"by_tier.{t}.cost_usd", r["cost_usd"])}</td></tr>'
        for t, r in report["by_tier"].items()
    )
    esc = report["escalations"]
    tiers = f"""<table><tr><th>tier</th><th>requests</th><th>share</th><th>energy (Wh)</th><th>CO2e (g)</th><th>cost (USD)</th></tr>
{tier_rows}</table><p>Escalations: {_num("escalations.total", esc["total"])} in {_num("escalations.requests", esc["requests"])} requests;
failed requests: {_num("failed", report.get("failed", 0))}; energy of work whose answer was not returned
(insufficient tries before an escalation, failed requests): {_num("unreturned_energy_wh", report["unreturned_energy_wh"], "Wh")}.</p>"""
    charts = "".join(
        f'<div class="chart"><h3>{escape(title)}</h3>{_PYGAL_SCRIPT.sub("", svg)}</div>' for title, svg in _charts(report)
    )
    data = json.dumps(report).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Frugal savings report{escape(client_title)}</title><style>{_CSS}</style></head><body>
<h1>Frugal savings report{escape(client_title)}</h1>
<p class="sub">Requests from {escape(str(period["first"] or "—"))} to {escape(str(period["last"] or "—"))} ({period["days"]} days).
Frugal answers each request with the cheapest tool that is good enough; this page compares what it spent with
sending every request to the large model.</p>
<div class="cards">{card_html}</div>
<section><h2>Totals</h2>{totals}</section>
<section><h2>Route mix</h2>{tiers}</section>
<section><h2>Charts</h2><div class="charts">{charts}</div></section>
{_method(report.get("method") or {})}
<script type="application/json" id="frugal-report">{data}</script>
</body></html>
"""
