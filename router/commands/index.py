"""``frugal index add|stats``: the search tier's index."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from router.commands.common import ConfigOpt, DataDirOpt, echo_json, fail, settings_from
from router.core.errors import FrugalError

index_app = typer.Typer(help="Manage the search index.", no_args_is_help=True)


@index_app.command("add")
def index_add(
    paths: Annotated[list[Path], typer.Argument(help="files or folders: JSONL, JSON, Markdown, text, HTML")],
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    title_field: Annotated[str, typer.Option(help="JSONL field holding the title")] = "title",
    text_field: Annotated[str, typer.Option(help="JSONL field holding the text")] = "text",
) -> None:
    """Ingest documents into the search index."""
    from backends.search.ingest import ingest_paths

    try:
        settings = settings_from(config, data_dir)
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise FrugalError(f"not found: {', '.join(missing)}")
        summary = ingest_paths(settings.index_dir(), paths, title_field=title_field, text_field=text_field,
                               progress=sys.stderr.isatty())
    except FrugalError as exc:
        fail(exc)
    echo_json(summary.to_dict())


@index_app.command("stats")
def index_stats_cmd(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Print statistics of the search index."""
    from backends.search.ingest import index_stats

    try:
        settings = settings_from(config, data_dir)
        echo_json(index_stats(settings.index_dir()))
    except FrugalError as exc:
        fail(exc)
