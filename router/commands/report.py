"""``frugal report``: the savings report from the ledger, as a table, JSON, CSV or HTML."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from router.commands.common import ConfigOpt, DataDirOpt, fail, settings_from
from router.core.errors import FrugalError


def report(
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    since: Annotated[datetime | None, typer.Option(help="start (ISO date or datetime)")] = None,
    until: Annotated[datetime | None, typer.Option(help="end (ISO date or datetime)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json | csv | html")] = "table",
    out: Annotated[Path | None, typer.Option(help="write to this file instead of stdout")] = None,
    client: Annotated[str | None, typer.Option(help="only this client key (its name in auth.client_keys, or id)")] = None,
) -> None:
    """The savings report: large-model calls, energy, CO2e and money avoided."""
    from router.energy.estimator import EnergyEstimator
    from router.ledger.store import Ledger
    from router.report import build_report, render_csv, render_html, render_table
    from router.services import prepare_environment

    if fmt not in {"table", "json", "csv", "html"}:
        fail(ValueError(f"unknown format {fmt!r}; valid: table, json, csv, html"))
    try:
        settings = settings_from(config, data_dir)
        prepare_environment()
        ledger = Ledger.open(settings.resolved_ledger_url())
        try:
            estimator = EnergyEstimator(settings.resolved_energy())
            estimator.remember(ledger)
            data = build_report(ledger, since=since, until=until, method=estimator.method(), client=client)
        finally:
            ledger.close()
    except FrugalError as exc:
        fail(exc)
    _warn_spooled(settings.data_dir)
    if fmt == "table" and out is None:
        from rich.console import Console

        Console().print(render_table(data))
        return
    text = {"json": lambda: json.dumps(data, indent=2, default=str), "csv": lambda: render_csv(data),
            "html": lambda: render_html(data), "table": lambda: _table_text(data)}[fmt]()
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)


def _warn_spooled(data_dir: Path) -> None:
    """Say on stderr when rows wait in the spool: the report cannot include them until they are replayed."""
    from router.ledger.spool_file import Spool

    pending = Spool(data_dir).pending()
    if pending:
        typer.echo(f"warning: {pending} ledger rows wait in the spool in {data_dir} and are not in this report: the "
                   "database was unavailable or is damaged (see /healthz 'ledger' and docs/RELIABILITY.md)", err=True)


def _table_text(data: dict[str, Any]) -> str:
    from rich.console import Console

    from router.report import render_table

    console = Console(record=True, width=120)
    with console.capture():
        console.print(render_table(data))
    return console.export_text()
