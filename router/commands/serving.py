"""``frugal serve`` and ``frugal ask``: the whole pipeline, behind the API or for one request."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from router.commands.common import ConfigOpt, DataDirOpt, echo_json, fail, settings_from
from router.core.errors import FrugalError


def serve(
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    workers: Annotated[int | None, typer.Option(help="server processes sharing the port (default 1)")] = None,
    log_level: Annotated[str, typer.Option(help="log level")] = "info",
) -> None:
    """Start the OpenAI-compatible API."""
    import uvicorn

    from router.app import create_app
    from router.server import server_config

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides: dict[str, Any] = {"data_dir": data_dir, "host": host, "port": port, "workers": workers}
    try:
        settings = settings_from(config, data_dir, host=host, port=port, workers=workers)
        settings.check_safe_bind()
        prepare_demo_index(settings)
        if settings.workers > 1:
            prepare_ledger(settings)
    except FrugalError as exc:
        fail(exc)
    if settings.workers > 1:
        serve_workers(settings, config, overrides, log_level)
        return
    server = uvicorn.Server(server_config(create_app(settings), settings, log_level=log_level.lower()))
    server.run()
    if not server.started:  # e.g. the port is taken: exit non-zero, as uvicorn.run does
        raise typer.Exit(code=3)


def prepare_ledger(settings: Any) -> None:
    """Create and migrate the ledger once, before workers start (they would race to migrate it)."""
    from router.ledger.store import Ledger

    Ledger.open(settings.resolved_ledger_url()).close()


def serve_workers(settings: Any, config: Path | None, overrides: dict[str, Any], log_level: str) -> None:
    """Run ``settings.workers`` processes on one socket (uvicorn's supervisor restarts any that dies)."""
    import json
    import os

    from uvicorn.supervisors import Multiprocess

    from router.app import SERVE_ARGUMENTS_ENV
    from router.server import server_config

    given = {name: str(value) if isinstance(value, Path) else value
             for name, value in overrides.items() if value is not None}
    os.environ[SERVE_ARGUMENTS_ENV] = json.dumps({"config": str(config) if config else None, "overrides": given,
                                                  "log_level": log_level})
    uv_config = server_config("router.app:app_from_environment", settings, factory=True, workers=settings.workers,
                              log_level=log_level.lower())
    Multiprocess(uv_config, sockets=[uv_config.bind_socket()]).run()


def prepare_demo_index(settings: Any) -> None:
    """Build the demo index when the search tier has no index yet (the embedded default)."""
    if not settings.demo_index or settings.search.backend != "tantivy" or not settings.search.enabled:
        return
    from backends.search.ingest import build_demo_index

    build_demo_index(settings.index_dir())


def ask(
    text: Annotated[str, typer.Argument(help="the request")],
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    model: Annotated[str, typer.Option(help="frugal-auto or a forced tier (frugal-search|small|large)")] = "frugal-auto",
    as_json: Annotated[bool, typer.Option("--json", help="print the frugal object plus the answer as JSON")] = False,
) -> None:
    """Run one request through the whole pipeline without a server."""
    from router.oneshot import ask_once

    try:
        settings = settings_from(config, data_dir)
        prepare_demo_index(settings)
        outcome = asyncio.run(ask_once(settings, text, model))
    except FrugalError as exc:
        fail(exc)
    if as_json:
        echo_json({**outcome.frugal_object(), "answer": outcome.completion.text})
        return
    typer.echo(outcome.completion.text)
    energy = outcome.estimate.energy_wh
    typer.echo(
        f"\n[route={outcome.route} escalations={outcome.escalations} energy={energy.value:.3g} Wh "
        f"({energy.min:.3g}–{energy.max:.3g}) avoided={outcome.avoided_wh.value:.3g} Wh]", err=True,
    )
