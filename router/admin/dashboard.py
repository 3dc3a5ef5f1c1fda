"""The ``/admin`` dashboard: one self-contained page (inline CSS, inline SVG charts drawn server-side by
pygal, one small inline script for the threshold form's Preview and Apply: ``router.admin.dashboard_script``),
so it works offline and loads nothing else.

Charts come from the ledger's hourly rollup: per hour over the last 72 hours or less, per day beyond.
The savings cards come from the report (``router.report.build_report``) over the same window. With
``?client=NAME`` every part shows one client key's requests; its charts then come from its raw rows
(the rollup has no client dimension), like its report.

The tier-health panel renders whatever ``Services.health()`` returns (the body of ``/healthz``) without
assuming its keys beyond ``status`` and ``tiers``, so facts added there show up here unchanged. Durations
are written for people (``human_duration``), and no cell ever shows Python's ``None``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import quote

from router.admin.dashboard_script import SCRIPT
from router.core import TIERS
from router.core.policy import POLICY_THRESHOLDS
from router.ledger.interface import DEGRADED, UNROUTED, HourRouteEnergy, LedgerStore
from router.report.render import fmt

TIER_COLOURS = {"search": "#2a9d8f", "small": "#e9c46a", "large": "#e76f51", "none": "#8d99ae"}
_PYGAL_EXTRAS = re.compile(r"<script[^>]*>.*?</script>|<!--.*?-->", re.DOTALL)  # its config script, its credits

#: Only what the page itself contains may run or load; fetches go to this server only.
CONTENT_SECURITY_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; "
                           "img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5rem auto;max-width:1200px;color:#1d2733;padding:0 1rem}
h1{margin-bottom:.2rem}.sub{color:#5c6b7a;margin-top:0}a{color:#1d5fa8}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(180px,1fr));gap:.8rem;margin:1.2rem 0}
.card{border:1px solid #d8dee4;border-radius:10px;padding:.8rem;background:#f8fafc}
.card .big{font-size:1.5rem;font-weight:600}.card .lbl{color:#5c6b7a;font-size:.85rem}.rng{color:#5c6b7a;font-size:.8rem}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:1rem}.chart{border:1px solid #e3e8ee;border-radius:10px;padding:.5rem}
table{border-collapse:collapse;width:100%;margin:.6rem 0;font-size:.9rem}th,td{border-bottom:1px solid #e3e8ee;padding:.3rem .5rem;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}input[type=number]{width:7rem}
form label{margin-right:1rem}#status{margin-left:1rem;font-weight:600}.ok{color:#1b7f3b}.err{color:#b3261e}
section{margin:1.8rem 0}code{background:#f1f3f5;padding:0 .2rem;border-radius:3px}
.badge{display:inline-block;padding:0 .45rem;border-radius:8px;font-size:.8rem;font-weight:600;border:1px solid;white-space:nowrap}
.b-ok{color:#1b7f3b;background:#e8f5ec}.b-warn{color:#8a5a00;background:#fff4d6}.b-err{color:#b3261e;background:#fdecea}
.b-info{color:#3d4b5c;background:#eef1f4}
#whatif{margin:.8rem 0;max-width:760px}#whatif table{margin:.3rem 0}
"""



def chart_series(ledger: LedgerStore, since: datetime, hourly: bool) -> dict[str, Any]:
    """Per-bucket requests by route and actual/counterfactual energy from the hourly rollup."""
    return _bucketed(ledger.hourly_route_energy(since), hourly)


def client_series(ledger: LedgerStore, since: datetime, hourly: bool, client: str) -> dict[str, Any]:
    """``chart_series`` for one client key id, from its raw rows (through the client index)."""
    return _bucketed(ledger.hourly_route_energy(since, client=client), hourly)


def degraded_count(ledger: LedgerStore, since: datetime, client: str | None = None) -> int:
    """Requests since ``since`` (of one client key id) that carry a ``degraded:…`` flag."""
    return ledger.degraded_request_count(since, client=client)


def _bucketed(points: Sequence[HourRouteEnergy], hourly: bool) -> dict[str, Any]:
    """Per (hour, route) points summed per hour or day."""
    requests: dict[str, dict[str, int]] = defaultdict(dict)
    energy: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for point in points:
        bucket = point.hour if hourly else point.hour[:10]
        requests[bucket][point.route] = requests[bucket].get(point.route, 0) + point.requests
        energy[bucket][0] += point.energy_wh
        energy[bucket][1] += point.cf_energy_wh
    buckets = sorted(requests)
    return {"buckets": buckets, "requests": requests, "energy": energy}


def human_duration(ms: float | None) -> str:
    """Milliseconds for people: ``"3.4 ms"``, ``"412 ms"``, ``"3.2 s"``, ``"1 min 32 s"``, ``"2 h 5 min"``."""
    if ms is None:
        return "—"

    def short(value: float) -> str:
        return f"{value:.1f}".removesuffix(".0")

    if round(ms, 1) < 10:
        return f"{short(ms)} ms"
    if round(ms) < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if round(seconds, 1) < 10:
        return f"{short(seconds)} s"
    if round(seconds) < 60:
        return f"{seconds:.0f} s"
    if round(seconds) < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, rest = divmod(round(seconds / 60), 60)
    return f"{hours} h" + (f" {rest} min" if rest else "")


def _number(value: float | None) -> str:
    """``fmt`` without exponents for large values (``12,346``, not ``1.23e+04``)."""
    return f"{value:,.0f}" if value is not None and abs(value) >= 1000 else fmt(value)


def _text(value: Any) -> str:
    """A health value as escaped text: yes/no, a dash for none or empty, JSON for lists and objects."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return escape(json.dumps(value, default=str) if isinstance(value, (dict, list)) else str(value))


def _facts(part: Mapping[str, Any], shown: Sequence[str]) -> str:
    """The ``name: value`` pairs of a health entry not already ``shown``, empty ones left out."""
    return " · ".join(f'{escape(str(k).replace("_", " "))}: {_text(v)}' for k, v in part.items()
                      if k not in shown and v is not None and v != "")


_BADGE = {"ok": "b-ok", "ready": "b-ok", "warming": "b-warn", "degraded": "b-warn",
          "down": "b-err", "not ready": "b-err"}


def _badge(state: str) -> str:
    return f'<span class="badge {_BADGE.get(state, "b-info")}" data-state="{escape(state)}">{escape(state)}</span>'


def _state(part: Mapping[str, Any]) -> str:
    """``warming``, ``ready``, ``not ready``, or empty for a health entry that does not say."""
    if part.get("warming"):
        return "warming"
    return ("ready" if part["ready"] else "not ready") if "ready" in part else ""


def health_panel(health: Mapping[str, Any]) -> str:
    """The tier-health section: the facts of ``/healthz``, one row per tier and per other entry."""
    tiers = []
    for tier, part in (health.get("tiers") or {}).items():
        more = _facts(part, ("ready", "warming", "backend", "detail"))
        tiers.append(f'<tr data-tier="{escape(str(tier))}"><td><b>{escape(str(tier))}</b></td>'
                     f'<td>{_badge(_state(part) or "not ready")}</td><td>{_text(part.get("backend"))}</td>'
                     f'<td>{_text(part.get("detail"))} <span class="rng">{more}</span></td></tr>')
    others = []
    for name, value in health.items():
        if name in ("status", "tiers"):
            continue
        state = _state(value) if isinstance(value, Mapping) else ""
        facts = (_facts(value, ("ready", "warming")) or "—") if isinstance(value, Mapping) else _text(value)
        others.append(f'<tr data-part="{escape(str(name))}"><td>{escape(str(name).replace("_", " "))}</td>'
                      f'<td>{_badge(state) if state else ""}</td><td colspan="2">{facts}</td></tr>')
    return (f'<section id="health"><h2>Tier health {_badge(str(health.get("status", "unknown")))}</h2>'
            '<p class="sub">The facts of <code>/healthz</code>, checked when this page was made.</p>'
            '<table><thead><tr><th>tier</th><th>state</th><th>backend</th><th>detail</th></tr></thead>'
            f'<tbody>{"".join(tiers)}{"".join(others)}</tbody></table></section>')


def _charts(series: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(title, inline SVG) of the route-mix and energy charts."""
    import pygal
    from pygal.style import Style

    buckets: Sequence[str] = series["buckets"]
    labels = [b.replace("T", " ") + (":00" if "T" in b else "") for b in buckets]
    routes = [t for t in TIERS] + sorted({r for b in buckets for r in series["requests"][b]} - set(TIERS))
    common: dict[str, Any] = {"js": [], "disable_xml_declaration": True, "width": 560, "height": 330,
                              "x_label_rotation": 30, "show_minor_x_labels": False, "truncate_label": 16,
                              "truncate_legend": 30, "legend_at_bottom": True}
    mix = pygal.StackedBar(**common, style=Style(background="white", plot_background="white",
                                                 colors=tuple(TIER_COLOURS.get(r, "#264653") for r in routes)))
    mix.x_labels = labels
    mix.x_labels_major = labels[:: max(1, len(labels) // 8)]
    for route in routes:
        mix.add("not routed" if route == UNROUTED else route, [series["requests"][b].get(route, 0) for b in buckets])
    pair = Style(background="white", plot_background="white", colors=("#2a9d8f", "#e76f51"))
    energy = pygal.Line(**common, style=pair, y_title="Wh", fill=False)
    energy.x_labels = labels
    energy.x_labels_major = labels[:: max(1, len(labels) // 8)]
    energy.add("Frugal (actual)", [series["energy"][b][0] for b in buckets])
    energy.add("all large (counterfactual)", [series["energy"][b][1] for b in buckets])
    return [("Route mix (requests per tier)", mix.render(is_unicode=True)),
            ("Energy: actual vs all-large counterfactual", energy.render(is_unicode=True))]


def _cards(report: Mapping[str, Any], degraded: int) -> str:
    av, cf = report["avoided"], report["counterfactual"]

    def ranged(r: Mapping[str, Any], unit: str) -> str:
        return f'{_number(r["value"])} {unit} <span class="rng">({_number(r["min"])}–{_number(r["max"])})</span>'

    share = av["energy_share"]
    degraded_share = f' <span class="rng">({degraded / report["requests"]:.0%})</span>' if report["requests"] else ""
    cards = [
        ("Requests", str(report["requests"])),
        ("Degraded", f"{degraded}{degraded_share}"),
        ("Large-model calls avoided", f'{av["large_calls"]} <span class="rng">({av["large_calls_share"]:.0%})</span>'),
        ("Energy used", ranged(report["energy_wh"], "Wh")),
        ("All-large counterfactual", ranged(cf["energy_wh"], "Wh")),
        ("Energy avoided", ranged(av["energy_wh"], "Wh")
         + f' <span class="rng">{"—" if share is None else f"{share:.0%}"} of all-large</span>'),
        ("CO2e avoided", ranged(av["co2e_g"], "g")),
        ("Money avoided", f'{_number(av["cost_usd"])} USD'),
    ]
    return "".join(f'<div class="card" data-card="{escape(t)}"><div class="lbl">{escape(t)}</div>'
                   f'<div class="big">{v}</div></div>' for t, v in cards)


def _threshold_rows(thresholds: Mapping[str, Any]) -> str:
    rows = []
    for name, spec in thresholds.items():
        replayable = ' data-replayable="1"' if name in POLICY_THRESHOLDS else ""  # Preview replays these
        rows.append(
            f'<tr><td><code>{escape(name)}</code></td><td><input type="number" step="any" min="{spec["min"]}" '
            f'max="{spec["max"]}" value="{spec["value"]}" data-current="{spec["value"]}" '
            f'data-threshold="{escape(name)}"{replayable} aria-label="{escape(name)}"></td>'
            f'<td class="n">{spec["min"]:g} – {spec["max"]:g}</td><td class="n">{spec["default"]:g}</td>'
            f'<td>{escape(spec["description"])}</td></tr>')
    return "".join(rows)


def _history_rows(history: Sequence[Mapping[str, Any]]) -> str:
    if not history:
        return '<tr id="no-history"><td colspan="4">no changes yet: values come from the config file or the defaults</td></tr>'
    rows = []
    for change in history:
        diff = ", ".join(f'{escape(n)}: {fmt(c["old"], 4)} → {fmt(c["new"], 4)}' for n, c in change["changes"].items())
        rows.append(f'<tr><td class="n">{change["version"]}</td><td>{escape(change["changed_at"][:19])}</td>'
                    f'<td>{escape(change["actor"])}</td><td>{diff}<br><span class="rng">{escape(change["reason"])}</span></td></tr>')
    return "".join(rows)


def route_label(request: Mapping[str, Any]) -> str:
    """The route cell: the tier that answered, or why none did (``not routed (failed before any tier, …)``)."""
    forced = f'forced: {request["requested_model"]}' if request.get("forced") else ""
    if request.get("route"):
        return f'{request["route"]} (forced)' if forced else str(request["route"])
    tried = [str(a.get("tier")) for a in request.get("attempts") or [] if isinstance(a, Mapping)]
    why = f'no tier answered, tried {" → ".join(tried)}' if tried else "failed before any tier"
    return f"not routed ({why}{', ' + forced if forced else ''})"


def degraded_reasons(flags: Sequence[str] | None) -> list[str]:
    """The reasons of a ledger row's ``degraded:…`` flags (``large-unavailable``: a cheaper tier answered)."""
    return [flag.removeprefix(DEGRADED) for flag in flags or () if flag.startswith(DEGRADED)]


def _request_rows(requests: Sequence[Mapping[str, Any]], store_text: bool) -> str:
    if not requests:
        return f'<tr><td colspan="{11 if store_text else 10}">no requests yet</td></tr>'
    rows = []
    for r in requests:
        large = r["scores"]["large"] if r["scores"] else None
        text = f'<td>{escape((r.get("prompt_text") or "")[:200])}</td>' if store_text else ""
        code = f' <span class="rng">{escape(r["error_code"])}</span>' if r.get("error_code") else ""
        degraded = ", ".join(escape(reason) for reason in degraded_reasons(r.get("flags")))
        rows.append(
            f'<tr data-request="{escape(r["request_id"])}"><td>{escape(r["created_at"][:19])}</td>'
            f'<td><code>{escape(r["request_id"][-12:])}</code></td><td>{escape(r["requested_model"])}</td>'
            f'<td data-col="route">{escape(route_label(r))}</td><td class="n" data-col="status">{r["status"]}{code}</td>'
            f'<td data-col="degraded">{degraded}</td><td class="n">{r["escalations"]}</td>'
            f'<td class="n">{fmt(large)}</td><td class="n">{_number(r["energy_wh"])}</td>'
            f'<td class="n" data-col="latency">{human_duration(r["latency_ms"])}</td>{text}</tr>')
    return "".join(rows)


def _client_links(clients: Sequence[str], current: str | None, hours: int) -> str:
    """Links that show every client or one (links, not a form: the page's CSP allows no form action)."""
    if not clients and current is None:
        return ""
    names = [None, *clients] + ([current] if current is not None and current not in clients else [])
    links = []
    for name in names:
        label = escape(name) if name is not None else "all clients"
        href = f"/admin?hours={hours}" + (f"&amp;client={quote(name)}" if name is not None else "")
        links.append(f"<b>{label}</b>" if name == current else f'<a href="{href}">{label}</a>')
    return '<p class="sub" id="clients">Show: ' + " · ".join(links) + "</p>"


def render_dashboard(*, report: Mapping[str, Any], series: Mapping[str, Any], thresholds: Mapping[str, Any],
                     history: Sequence[Mapping[str, Any]], requests: Sequence[Mapping[str, Any]],
                     store_text: bool, hours: int, health: Mapping[str, Any], degraded: int = 0,
                     client: str | None = None, clients: Sequence[str] = ()) -> str:
    """The dashboard page (of one client key when ``client`` is given); ``health`` is ``Services.health()``."""
    charts = "".join(f'<div class="chart"><h3>{escape(title)}</h3>{_PYGAL_EXTRAS.sub("", svg)}</div>'
                     for title, svg in _charts(series))
    text_head = "<th>prompt</th>" if store_text else ""
    version = thresholds["version"]
    since = window_start(hours).replace(tzinfo=UTC).isoformat()
    data = json.dumps({"version": version, "since": since, "hours": hours}).replace("</", "<\\/")
    generated = datetime.now(UTC).replace(microsecond=0).isoformat()
    query = f"?client={quote(client)}" if client is not None else ""
    scope = f" · client <b>{escape(client)}</b>" if client is not None else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Frugal admin</title><style>{_CSS}</style></head><body>
<h1>Frugal admin</h1>
<p class="sub">Last {hours} hours{scope} · generated {escape(generated)} ·
reports: <a href="/admin/report.html{query}">HTML</a> · <a href="/admin/report.json{query}">JSON</a> · <a href="/admin/report.csv{query}">CSV</a></p>
{_client_links(clients, client, hours)}
{health_panel(health)}
<div class="cards">{_cards(report, degraded)}</div>
<section><h2>Over time</h2><div class="charts">{charts}</div></section>
<section id="thresholds"><h2>Thresholds</h2>
<p class="sub">Version <b id="version">{version}</b>; every worker and replica picks a change up within
{human_duration(thresholds["poll_s"] * 1000)}. Persisted values override the config file.</p>
<form id="threshold-form" autocomplete="off">
<table><tr><th>name</th><th>value</th><th>range</th><th>default</th><th>meaning</th></tr>
{_threshold_rows(thresholds["thresholds"])}</table>
<label>Reason <input id="reason" name="reason" required size="40" placeholder="why this change"></label>
<label>Admin key <input id="admin-key" name="admin-key" type="password" size="24"></label>
<button type="button" id="preview">Preview</button> <button type="submit" id="apply">Apply</button>
<span id="status" role="status"></span>
</form>
<div id="whatif" hidden><h3>Preview: every client's requests of the last {hours} hours replayed under the proposed routing thresholds</h3>
<table><thead><tr><th></th><th>current (logged)</th><th>proposed</th></tr></thead><tbody id="whatif-rows"></tbody></table>
<p class="sub" id="whatif-note"></p></div>
<h3>Recent changes</h3>
<table><thead><tr><th>version</th><th>when (UTC)</th><th>who</th><th>what and why</th></tr></thead>
<tbody id="history">{_history_rows(history)}</tbody></table>
</section>
<section><h2>Recent requests</h2>
<table><tr><th>when (UTC)</th><th>request</th><th>model</th><th>route</th><th>status</th><th>degraded</th>
<th>escalations</th><th>P(large)</th><th>energy (Wh)</th><th>latency</th>{text_head}</tr>
{_request_rows(requests, store_text)}</table></section>
<script type="application/json" id="frugal-dashboard">{data}</script>
<script>{SCRIPT}</script>
</body></html>
"""


def window_start(hours: int) -> datetime:
    """The start of the dashboard window, rounded down to the hour (naive UTC)."""
    now = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    return now - timedelta(hours=hours - 1)
