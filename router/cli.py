"""The ``frugal`` command line (typer). Every command takes ``--config`` and ``--data-dir``.

Commands build only what they need (``index`` never loads a model; ``classify`` never opens the
ledger), and print machine-readable JSON where the DESIGN contract says so.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from router.core.errors import FrugalError

app = typer.Typer(help="Frugal: answer each request with the cheapest sufficient tool.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
index_app = typer.Typer(help="Manage the search index.", no_args_is_help=True)
thresholds_app = typer.Typer(help="Show and change routing thresholds.", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(thresholds_app, name="thresholds")
keys_app = typer.Typer(help="Make admin and client keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

ConfigOpt = Annotated[Path | None, typer.Option("--config", envvar="FRUGAL_CONFIG", help="YAML config file")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", envvar="FRUGAL_DATA_DIR", help="data directory")]


def _settings(config: Path | None, data_dir: Path | None, **overrides: Any) -> Any:
    from router.settings import load_settings

    return load_settings(config, data_dir=data_dir, **overrides)


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


def _echo_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False, default=str))


@app.command()
def serve(
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    host: Annotated[str | None, typer.Option(help="bind address (default 127.0.0.1)")] = None,
    port: Annotated[int | None, typer.Option(help="port (default 8000)")] = None,
    log_level: Annotated[str, typer.Option(help="log level")] = "info",
) -> None:
    """Start the OpenAI-compatible API."""
    import uvicorn

    from router.app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = _settings(config, data_dir, host=host, port=port)
        settings.check_safe_bind()
        _prepare_demo_index(settings)
    except FrugalError as exc:
        _fail(exc)
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level.lower())


def _prepare_demo_index(settings: Any) -> None:
    """Build the demo index when the search tier has no index yet (the embedded default)."""
    if not settings.demo_index or settings.search.backend != "tantivy" or not settings.search.enabled:
        return
    from backends.search.ingest import build_demo_index

    build_demo_index(settings.index_dir())


@app.command()
def ask(
    text: Annotated[str, typer.Argument(help="the request")],
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    model: Annotated[str, typer.Option(help="frugal-auto or a forced tier (frugal-search|small|large)")] = "frugal-auto",
    as_json: Annotated[bool, typer.Option("--json", help="print the frugal object plus the answer as JSON")] = False,
) -> None:
    """Run one request through the whole pipeline without a server."""
    from router.oneshot import ask_once

    try:
        settings = _settings(config, data_dir)
        _prepare_demo_index(settings)
        outcome = asyncio.run(ask_once(settings, text, model))
    except FrugalError as exc:
        _fail(exc)
    if as_json:
        _echo_json({**outcome.frugal_object(), "answer": outcome.completion.text})
        return
    typer.echo(outcome.completion.text)
    energy = outcome.estimate.energy_wh
    typer.echo(
        f"\n[route={outcome.route} escalations={outcome.escalations} energy={energy.value:.3g} Wh "
        f"({energy.min:.3g}–{energy.max:.3g}) avoided={outcome.avoided_wh.value:.3g} Wh]", err=True,
    )


@app.command()
def classify(
    text: Annotated[str | None, typer.Argument(help="text to classify (or use --input)")] = None,
    input_file: Annotated[Path | None, typer.Option("--input", help="JSONL with `text` or `prompt` per line")] = None,
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
) -> None:
    """Print the tier and scores for each input as one JSON line."""
    from classifiers import load_classifier
    from classifiers.evaluation import classify_line
    from router.core.policy import Policy, all_specs, policy_values
    from router.thresholds import ThresholdStore

    if (text is None) == (input_file is None):
        _fail(ValueError("give either TEXT or --input FILE.jsonl"))
    try:
        settings = _settings(config, data_dir)
        from router.services import prepare_environment

        prepare_environment()
        classifier = load_classifier(settings.classifier)
        policy = Policy(policy_values(_live_thresholds(settings, ThresholdStore(all_specs(), settings.thresholds))))
        for line in [text] if text is not None else _jsonl_texts(input_file):  # type: ignore[arg-type]
            _echo_json(classify_line(classifier, policy, line))
    except FrugalError as exc:
        _fail(exc)


def _live_thresholds(settings: Any, store: Any) -> Any:
    """The thresholds in force: shared storage when the admin layer provides it, else config."""
    try:
        from router.admin.persistence import load_persisted_thresholds
    except ImportError:
        return store.values()
    return load_persisted_thresholds(settings, store)


def _read_jsonl(path: Path) -> list[tuple[int, Any]]:
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


def _jsonl_texts(path: Path) -> list[str]:
    texts = []
    for number, row in _read_jsonl(path):
        value = row.get("text", row.get("prompt")) if isinstance(row, dict) else None
        if not isinstance(value, str):
            raise FrugalError(f"{path}:{number}: needs a string `text` or `prompt` field")
        texts.append(value)
    return texts


@app.command()
def train(
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    seed_dir: Annotated[Path, typer.Option(help="our seed set")] = Path("classifiers/data"),
    shared_data: Annotated[Path, typer.Option(help="public datasets folder")] = Path("../shared/data"),
    out: Annotated[Path | None, typer.Option(help="output model directory (default: the shipped model)")] = None,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    encoder: Annotated[str | None, typer.Option(help="sentence-transformers model name or path")] = None,
    variant: Annotated[str | None, typer.Option(help="train one variant only: static or minilm")] = None,
    static_from: Annotated[Path | None, typer.Option(help="reuse this distilled static table")] = None,
    seed_only: Annotated[bool, typer.Option(help="train on the seed set alone (no public sets)")] = False,
) -> None:
    """Train the tier classifier (seeded, reproducible) and write it without pickle."""
    from classifiers.training import train as run_training
    from router.services import prepare_environment

    prepare_environment()
    from classifiers.config import shipped_model_dir

    try:
        manifest = run_training(seed_dir=seed_dir, shared_data_dir=None if seed_only else shared_data,
                                out_dir=out or shipped_model_dir(), seed=seed, encoder=encoder, variant=variant,
                                static_from=static_from)
    except (FrugalError, FileNotFoundError) as exc:
        _fail(exc)
    _echo_json(manifest)


@app.command("eval")
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="JSONL with `text` and `tier` per line (e.g. "
                                       "config/labelled.example.jsonl, which no training data holds)")],
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
) -> None:
    """Evaluate the classifier and policy on labelled data; print JSON metrics."""
    from classifiers import load_classifier
    from classifiers.evaluation import evaluate as run_eval
    from router.core.policy import Policy, all_specs, policy_values
    from router.services import prepare_environment
    from router.thresholds import ThresholdStore

    try:
        settings = _settings(config, data_dir)
        prepare_environment()
        rows = _labelled_rows(data)
        classifier = load_classifier(settings.classifier)
        policy = Policy(policy_values(_live_thresholds(settings, ThresholdStore(all_specs(), settings.thresholds))))
        _echo_json(run_eval(classifier, policy, rows))
    except FrugalError as exc:
        _fail(exc)


def _labelled_rows(path: Path) -> list[dict[str, str]]:
    rows = []
    for number, row in _read_jsonl(path):
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or row.get("tier") not in (
                "search", "small", "large"):
            raise FrugalError(f"{path}:{number}: needs `text` and `tier` (search|small|large)")
        rows.append(row)
    return rows


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
        settings = _settings(config, data_dir)
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise FrugalError(f"not found: {', '.join(missing)}")
        summary = ingest_paths(settings.index_dir(), paths, title_field=title_field, text_field=text_field,
                               progress=sys.stderr.isatty())
    except FrugalError as exc:
        _fail(exc)
    _echo_json(summary.to_dict())


@index_app.command("stats")
def index_stats_cmd(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Print statistics of the search index."""
    from backends.search.ingest import index_stats

    try:
        settings = _settings(config, data_dir)
        _echo_json(index_stats(settings.index_dir()))
    except FrugalError as exc:
        _fail(exc)


@thresholds_app.command("show")
def thresholds_show(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Print every threshold with its current value and valid range."""
    from router.core.policy import all_specs
    from router.thresholds import ThresholdStore

    try:
        settings = _settings(config, data_dir)
        store = ThresholdStore(all_specs(), settings.thresholds)
        values = _live_thresholds(settings, store)
    except FrugalError as exc:
        _fail(exc)
    _echo_json({name: {**spec.to_dict(), "value": values[name]} for name, spec in store.specs.items()})


@thresholds_app.command("set")
def thresholds_set(
    assignments: Annotated[list[str], typer.Argument(help="NAME=VALUE pairs, e.g. route.large=0.3")],
    reason: Annotated[str, typer.Option(help="why: kept in the audit trail")],
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
) -> None:
    """Change thresholds in the shared database (all at once or none); servers pick it up within a poll."""
    from router.admin.commands import set_thresholds

    try:
        change = set_thresholds(_settings(config, data_dir), assignments, reason)
    except FrugalError as exc:
        _fail(exc)
    _echo_json(change.to_dict())


@thresholds_app.command("history")
def thresholds_history(
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    limit: Annotated[int, typer.Option(min=1, help="how many changes")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per change")] = False,
) -> None:
    """Print the audit trail, newest first: version, when, who, old -> new, why."""
    from router.admin.commands import threshold_history

    try:
        changes = threshold_history(_settings(config, data_dir), limit)
    except FrugalError as exc:
        _fail(exc)
    for change in changes:
        data = change.to_dict()
        if as_json:
            _echo_json(data)
            continue
        diff = ", ".join(f"{name} {c['old']} -> {c['new']}" for name, c in data["changes"].items())
        typer.echo(f"v{data['version']}  {data['changed_at'][:19]}  {data['actor']}  {diff}  ({data['reason']})")


@app.command()
def calibrate(
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    data: Annotated[Path | None, typer.Option("--data", help="labelled JSONL (`text`, `tier`)")] = None,
    large_share: Annotated[float | None, typer.Option(
        min=0.0, max=1.0, help="target large-tier share of logged traffic")] = None,
    max_under_routing: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="largest share of large-labelled requests sent to a cheaper tier")] = 0.02,
    since: Annotated[datetime | None, typer.Option(help="traffic mode: only requests since")] = None,
    limit: Annotated[int, typer.Option(min=1, help="traffic mode: most recent requests to use")] = 10_000,
    energy_wh: Annotated[list[str] | None, typer.Option("--energy-wh", help="TIER=WH energy per request override")] = None,
    apply: Annotated[bool, typer.Option("--apply", help="change the live thresholds (default: dry run)")] = False,
    reason: Annotated[str | None, typer.Option(help="audit-trail reason when applying")] = None,
) -> None:
    """Choose route.large/route.search from labelled data (least energy within an under-routing bound) or traffic."""
    from router.admin.calibration import CalibrationRequest
    from router.admin.commands import calibrate as run
    from router.admin.commands import parse_assignments

    try:
        settings = _settings(config, data_dir)
        overrides = {tier: float(wh) for tier, wh in parse_assignments(energy_wh or []).items()}
        examples = None if data is None else [(row["text"], row["tier"]) for row in _labelled_rows(data)]
        job = CalibrationRequest(examples=examples, large_share=large_share, max_under_routing=max_under_routing,
                                 since=since, limit=limit, energy_wh=overrides)
        result = run(settings, job, apply=apply, reason=reason)
    except (FrugalError, ValueError) as exc:
        _fail(exc)
    typer.echo(json.dumps(result, indent=2, default=str))
    for label in ("current", "proposed"):
        o = result[label]
        typer.echo(f"{label:>8}: route.large={o['thresholds']['route.large']:.4g} route.search="
                   f"{o['thresholds']['route.search']:.4g} shares={ {t: round(v, 3) for t, v in o['shares'].items()} } "
                   f"Wh/request={o['energy_wh_per_request']:.3g} under={o['under_routing']} over={o['over_routing']}",
                   err=True)


@app.command("calibrate-power")
def calibrate_power(
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    seconds: Annotated[float, typer.Option(min=2.0, help="seconds of each phase (idle, then one busy thread)")] = 10.0,
    country: Annotated[str, typer.Option(help="ISO country code codecarbon needs (carbon is not used here)")] = "USA",
) -> None:
    """Measure watts per busy thread with codecarbon (optional `power` extra); prints JSON, changes nothing."""
    from router.energy.calibrate import calibrate_power as measure

    try:
        settings = _settings(config, data_dir)
        result = measure(seconds, country_iso_code=country)
    except (FrugalError, ValueError) as exc:
        _fail(exc)
    result["configured"] = {"watts_per_thread": settings.energy.watts_per_thread,
                            "watts_min": settings.energy.watts_min, "watts_max": settings.energy.watts_max}
    _echo_json(result)


@keys_app.command("hash")
def keys_hash(
    key: Annotated[str | None, typer.Argument(help="the key; omit to type it or pipe it in")] = None,
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
) -> None:
    """Print the sha256 digest of a client key, for auth.client_key_hashes (needs no config or data)."""
    from router.auth import hash_key

    if key is None:
        key = typer.prompt("key", hide_input=True) if sys.stdin.isatty() else sys.stdin.readline()
    key = key.strip()
    if not key:
        _fail(ValueError("empty key"))
    typer.echo(hash_key(key))


@keys_app.command("new")
def keys_new(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Make a random key; print it (give it to the client or use it as the admin key) and its digest."""
    from router.auth import hash_key, new_key

    key = new_key()
    _echo_json({"key": key, "sha256": hash_key(key)})


@app.command()
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
        _fail(ValueError(f"unknown format {fmt!r}; valid: table, json, csv, html"))
    try:
        settings = _settings(config, data_dir)
        prepare_environment()
        ledger = Ledger.open(settings.resolved_ledger_url())
        try:
            estimator = EnergyEstimator(settings.resolved_energy())
            estimator.remember(ledger)
            data = build_report(ledger, since=since, until=until, method=estimator.method(), client=client)
        finally:
            ledger.close()
    except FrugalError as exc:
        _fail(exc)
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


def _table_text(data: dict[str, Any]) -> str:
    from rich.console import Console

    from router.report import render_table

    console = Console(record=True, width=120)
    with console.capture():
        console.print(render_table(data))
    return console.export_text()


def main() -> None:
    """Console-script entry point."""
    app()
