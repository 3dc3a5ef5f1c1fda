"""The admin API under ``/admin``: live thresholds, calibration, reports, recent requests and the dashboard.

Every route needs the admin key (``KeyChecker.admin``): the JSON routes through the router-wide
dependency, the dashboard page itself so that it can answer with a Basic challenge a browser understands.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from router.admin.calibration import CalibrationRequest, run_calibration
from router.admin.dashboard import (
    CONTENT_SECURITY_POLICY,
    chart_series,
    client_series,
    degraded_count,
    render_dashboard,
    window_start,
)
from router.admin.persistence import ThresholdSync
from router.admin.whatif import run_whatif
from router.api.errors import error_response
from router.core.errors import AuthenticationError
from router.ledger.interface import LedgerStore

Tier = Literal["search", "small", "large"]


def require_admin(request: Request) -> str:
    """The admin key check; returns the actor recorded in the audit trail."""
    return str(request.app.state.services.keys.admin(request))


router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)], tags=["admin"])
dashboard_router = APIRouter(tags=["admin"])
Actor = Annotated[str, Depends(require_admin)]


#: Earliest and latest moments a period may name: a day inside datetime's range, so that converting to UTC and
#: stepping by an hour or a day around them cannot overflow.
_EARLIEST, _LATEST = datetime(1, 1, 2), datetime(9999, 12, 30)


def _representable(moment: datetime) -> datetime:
    """``moment`` if it lies between 0001-01-02 and 9999-12-30 in UTC (naive is UTC); else a 422 saying so."""
    try:
        utc = moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    except OverflowError:
        utc = None
    if utc is None or not _EARLIEST <= utc <= _LATEST:
        raise ValueError(f"{moment.isoformat()} is outside the supported range (0001-01-02 to 9999-12-30, UTC)")
    return moment


#: A period bound of the admin API: any ISO date or datetime the ledger can compare with.
Moment = Annotated[datetime, AfterValidator(_representable)]


class CSVResponse(Response):
    """A CSV body; also what the OpenAPI schema declares for the CSV report."""

    media_type = "text/csv"


class ThresholdUpdate(BaseModel):
    """Body of ``PUT /admin/thresholds``."""

    model_config = ConfigDict(extra="forbid")

    thresholds: dict[str, Any] = Field(min_length=1, description="threshold name -> new value")
    reason: str = Field(min_length=1, max_length=1000, description="why: kept in the audit trail")


class LabelledExample(BaseModel):
    """One labelled request for calibration."""

    model_config = ConfigDict(extra="ignore")

    text: str = Field(min_length=1)
    tier: Tier


class CalibrateBody(BaseModel):
    """Body of ``POST /admin/calibrate``: ``examples`` (labelled mode) or ``large_share`` (traffic mode)."""

    model_config = ConfigDict(extra="forbid")

    examples: list[LabelledExample] | None = None
    large_share: float | None = Field(default=None, ge=0.0, le=1.0)
    max_under_routing: float = Field(default=0.02, ge=0.0, le=1.0)
    since: Moment | None = None
    limit: int = Field(default=10_000, ge=1, le=1_000_000)
    energy_wh: dict[Tier, Annotated[float, Field(ge=0.0, allow_inf_nan=False)]] = Field(default_factory=dict)
    apply: bool = False
    reason: str | None = Field(default=None, max_length=1000)


class WhatIfBody(BaseModel):
    """Body of ``POST /admin/whatif``: proposed routing thresholds and the period of logged requests to replay."""

    model_config = ConfigDict(extra="forbid")

    thresholds: dict[str, Any] = Field(min_length=1, description="route.large and/or route.search -> proposed value")
    since: Moment | None = Field(default=None, description="replay requests from (inclusive; naive is UTC)")
    until: Moment | None = Field(default=None, description="replay requests before (exclusive)")


def _sync(request: Request) -> ThresholdSync:
    return request.app.state.threshold_sync  # type: ignore[no-any-return]


def thresholds_payload(services: Any, sync: ThresholdSync) -> dict[str, Any]:
    """Every threshold with its spec and current value, the version and the poll interval."""
    values = services.thresholds.values()
    return {
        "version": sync.version, "poll_s": sync.poll_s,
        "thresholds": {name: {**spec.to_dict(), "value": values[name]} for name, spec in services.thresholds.specs.items()},
    }


@router.get("/thresholds")
async def get_thresholds(request: Request) -> dict[str, Any]:
    """Every threshold the policy and the tier gates read, with range, default and current value."""
    return thresholds_payload(request.app.state.services, _sync(request))


@router.put("/thresholds")
async def put_thresholds(request: Request, body: ThresholdUpdate, actor: Actor) -> dict[str, Any]:
    """Change thresholds atomically in every worker and replica; a 422 changes nothing."""
    sync = _sync(request)
    change = await asyncio.to_thread(sync.apply, body.thresholds, actor=actor, reason=body.reason)
    return {**thresholds_payload(request.app.state.services, sync), "version": change.version,
            "change": change.to_dict()}


@router.get("/thresholds/history")
async def threshold_history(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    """The audit trail, newest first: who changed what, when, from what to what, and why."""
    changes = await asyncio.to_thread(_sync(request).ledger.threshold_history, limit)
    return {"history": [change.to_dict() for change in changes]}


@router.post("/calibrate")
async def calibrate(request: Request, body: CalibrateBody, actor: Actor) -> dict[str, Any]:
    """Propose route.large/route.search (dry run), or apply them with ``"apply": true``."""
    services = request.app.state.services
    sync = _sync(request)
    job = CalibrationRequest(
        examples=None if body.examples is None else [(e.text, e.tier) for e in body.examples],
        large_share=body.large_share, max_under_routing=body.max_under_routing, since=body.since,
        limit=body.limit, energy_wh={str(tier): wh for tier, wh in body.energy_wh.items()})
    result = await asyncio.to_thread(
        run_calibration, job, classifier=services.classifier, ledger=sync.ledger,
        estimator=services.estimator, current=services.thresholds.values())
    result["applied"] = None
    if body.apply:
        reason = body.reason or f"calibrate ({result['mode']})"
        change = await asyncio.to_thread(sync.apply, result["thresholds"], actor=actor, reason=reason)
        result["applied"] = change.to_dict()
    return result


@router.post("/whatif")
async def whatif(request: Request, body: WhatIfBody) -> dict[str, Any]:
    """Replay logged decisions under proposed routing thresholds: route mix, energy, net savings; changes nothing."""
    services = request.app.state.services
    return await asyncio.to_thread(run_whatif, services.ledger, services.thresholds.values(), body.thresholds,
                                   since=body.since, until=body.until)


def request_json(row: Any, store_text: bool) -> dict[str, Any]:
    """A ledger row for the admin API: numbers and ids, text only when ``store_text`` is on."""
    scores = None if row.score_large is None else {
        "search": row.score_search, "small": row.score_small, "large": row.score_large}
    data = {
        "request_id": row.request_id, "created_at": row.created_at.astimezone(UTC).isoformat(),
        "requested_model": row.requested_model, "route": row.route, "forced": row.forced, "status": row.status,
        "error_code": row.error_code, "escalations": row.escalations, "scores": scores,
        "latency_ms": row.latency_ms, "energy_wh": row.energy_wh, "cf_energy_wh": row.cf_energy_wh,
        "co2e_g": row.co2e_g, "cost_usd": row.cost_usd, "client_key_id": row.client_key_id, "flags": row.flags,
    }
    if store_text:
        data.update(prompt_text=row.prompt_text, answer_text=row.answer_text)
    return data


@router.get("/requests")
async def recent_requests(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
    """The most recent requests, newest first (prompt text only when ``store_text`` is enabled)."""
    services = request.app.state.services
    rows = await asyncio.to_thread(services.ledger.recent, limit)
    return {"requests": [request_json(row, services.settings.store_text) for row in rows]}


ClientFilter = Annotated[str | None, Query(max_length=128, description="one client key's name or id; all if absent")]


async def _report(request: Request, since: datetime | None, until: datetime | None,
                  client: str | None = None) -> dict[str, Any]:
    from router.report import build_report

    services = request.app.state.services
    return await asyncio.to_thread(build_report, services.ledger, since=since, until=until,
                                   method=services.estimator.method(), client=client)


@router.get("/report.json")
async def report_json(request: Request, since: Moment | None = None, until: Moment | None = None,
                      client: ClientFilter = None) -> JSONResponse:
    """The savings report as JSON (DESIGN's report contract)."""
    return JSONResponse(await _report(request, since, until, client))


@router.get("/report.csv", response_class=CSVResponse)
async def report_csv(request: Request, since: Moment | None = None, until: Moment | None = None,
                     client: ClientFilter = None) -> Response:
    """The savings report as CSV."""
    from router.report import render_csv

    return CSVResponse(render_csv(await _report(request, since, until, client)), media_type="text/csv; charset=utf-8",
                       headers={"content-disposition": 'attachment; filename="frugal-report.csv"'})


@router.get("/report.html", response_class=HTMLResponse)
async def report_html(request: Request, since: Moment | None = None, until: Moment | None = None,
                      client: ClientFilter = None) -> HTMLResponse:
    """The savings report as one self-contained HTML page."""
    from router.report import render_html

    return HTMLResponse(render_html(await _report(request, since, until, client)))


@dashboard_router.get("/admin", response_class=HTMLResponse)
async def dashboard(request: Request, hours: Annotated[int, Query(ge=1, le=24 * 365)] = 48,
                    client: ClientFilter = None) -> Response:
    """The dashboard page (a browser sends the admin key as the password of the Basic challenge)."""
    services = request.app.state.services
    try:
        services.keys.admin(request)
    except AuthenticationError as exc:
        return error_response(exc, {"www-authenticate": 'Basic realm="Frugal admin", charset="UTF-8"'})
    health, parts = await asyncio.gather(  # /healthz's facts, gathered while the ledger is read
        services.health(), asyncio.to_thread(_dashboard_parts, services, _sync(request), hours, client))
    page = await asyncio.to_thread(render_dashboard, **parts, health=health)
    return HTMLResponse(page, headers={"content-security-policy": CONTENT_SECURITY_POLICY,
                                       "cache-control": "no-store"})


def _dashboard_parts(services: Any, sync: ThresholdSync, hours: int, client: str | None) -> dict[str, Any]:
    """What the dashboard shows from the ledger and the thresholds (``render_dashboard``'s arguments)."""
    from router.report import build_report

    ledger: LedgerStore = services.ledger
    since = window_start(hours)
    hourly = hours <= 72
    series = chart_series(ledger, since, hourly) if client is None else client_series(ledger, since, hourly, client)
    store_text = services.settings.store_text
    return {
        "report": build_report(ledger, since=since.replace(tzinfo=UTC), method={}, client=client),
        "series": series,
        "thresholds": thresholds_payload(services, sync),
        "history": [change.to_dict() for change in sync.ledger.threshold_history(10)],
        "requests": [{**request_json(row, store_text), "attempts": row.attempts}
                     for row in ledger.recent(20, client=client)],
        "degraded": degraded_count(ledger, since, client),
        "store_text": store_text, "hours": hours, "client": client,
        "clients": sorted(services.settings.auth.client_keys),
    }
