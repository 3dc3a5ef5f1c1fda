"""What every command shares: the ``--config``/``--data-dir`` options, settings, errors, JSON and JSONL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from router.core.errors import FrugalError
from router.core.tiers import TIERS

ConfigOpt = Annotated[Path | None, typer.Option("--config", envvar="FRUGAL_CONFIG", help="YAML config file")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", envvar="FRUGAL_DATA_DIR", help="data directory")]


def settings_from(config: Path | None, data_dir: Path | None, **overrides: Any) -> Any:
    """The validated settings: arguments over env over YAML over defaults."""
    from router.settings import load_settings

    return load_settings(config, data_dir=data_dir, **overrides)


def fail(exc: Exception) -> None:
    """Print ``error: …`` to stderr and exit 2."""
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


def echo_json(payload: Any) -> None:
    """Print ``payload`` as one JSON line."""
    typer.echo(json.dumps(payload, ensure_ascii=False, default=str))


def live_thresholds(settings: Any, store: Any) -> Any:
    """The thresholds in force: shared storage when the admin layer provides it, else config."""
    try:
        from router.admin.persistence import load_persisted_thresholds
    except ImportError:
        return store.values()
    return load_persisted_thresholds(settings, store)


def read_jsonl(path: Path) -> list[tuple[int, Any]]:
    """(line number, parsed object) for each line that is not blank or a ``#`` comment; clear errors otherwise."""
    if not path.exists():
        raise FrugalError(f"file {path} does not exist")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            rows.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise FrugalError(f"{path}:{number}: not valid JSON ({exc})") from exc
    return rows


def jsonl_texts(path: Path) -> list[str]:
    """The ``text`` (or ``prompt``) of every line of a JSONL file."""
    texts = []
    for number, row in read_jsonl(path):
        value = row.get("text", row.get("prompt")) if isinstance(row, dict) else None
        if not isinstance(value, str):
            raise FrugalError(f"{path}:{number}: needs a string `text` or `prompt` field")
        texts.append(value)
    return texts


def labelled_rows(path: Path) -> list[dict[str, str]]:
    """Every line of a labelled JSONL file, each with a string ``text`` and a ``tier``."""
    rows = []
    for number, row in read_jsonl(path):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or row.get("tier") not in TIERS:
            raise FrugalError(f"{path}:{number}: needs `text` and `tier` ({'|'.join(TIERS)})")
        rows.append(row)
    return rows
