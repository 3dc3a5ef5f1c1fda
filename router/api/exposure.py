"""What an anonymous caller may see: ``/metrics`` and the API docs behind a key when configured, no paths in /healthz.

``/metrics`` and ``/openapi.json`` (with ``/docs`` and ``/redoc``) are open by default, as LiteLLM leaves its
``/metrics`` open unless ``require_auth_for_metrics_endpoint`` is set; ``auth.metrics_require_key`` and
``auth.docs_require_key`` put them behind a client key or the admin key. ``/healthz`` gives anyone states and
names; its details (index, spool and model paths, upstream URLs, error texts) go to an admin caller only.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from starlette.types import ASGIApp, Receive, Scope, Send

from router.api.errors import error_response
from router.core.errors import AuthenticationError, FrugalError
from router.settings import Settings

#: A browser opening a gated page is asked for credentials: any user name, a client key or the admin key as password.
CHALLENGE = {"www-authenticate": 'Basic realm="Frugal", charset="UTF-8"'}


def gated_paths(app: FastAPI, settings: Settings) -> dict[str, str]:
    """The paths that need a key, each with the setting that asks for it."""
    paths: dict[str, str] = {}
    if settings.auth.metrics_require_key:
        paths["/metrics"] = "auth.metrics_require_key"
    if settings.auth.docs_require_key:
        for path in (app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url):
            if path:
                paths[path] = "auth.docs_require_key"
    return paths


class KeyGate:
    """ASGI middleware: a request for a gated path needs a client key or the admin key (``KeyChecker.reader``)."""

    def __init__(self, app: ASGIApp, paths: dict[str, str]) -> None:
        self.app = app
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        setting = self.paths.get(scope.get("path", "")) if scope["type"] == "http" else None
        if setting is not None:
            request = Request(scope)
            try:
                request.app.state.services.keys.reader(request, setting)
            except FrugalError as exc:
                headers = CHALLENGE if isinstance(exc, AuthenticationError) else None
                await error_response(exc, headers)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def public_health(report: dict[str, Any]) -> dict[str, Any]:
    """``Services.health()`` reduced to states and names: no details, so no paths, URLs or error texts."""
    tiers = {tier: {key: state[key] for key in ("ready", "backend", "warming", "capabilities")
                   if key in state}
             for tier, state in report["tiers"].items()}
    ledger = report.get("ledger", {})
    return {"status": report["status"], "tiers": tiers, "classifier": {"ready": report["classifier"]["ready"]},
            "on_large_unavailable": report["on_large_unavailable"],
            "ledger": {key: ledger[key] for key in ("status", "spooling", "spooled_rows", "stalled_s") if key in ledger}}
