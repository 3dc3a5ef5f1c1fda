"""The ``frugal`` command line (typer): the app and its wiring. Every command takes ``--config`` and ``--data-dir``.

Commands build only what they need (``index`` never loads a model; ``classify`` never opens the
ledger), and print machine-readable JSON where the DESIGN contract says so. The commands themselves
live in ``router.commands``, one module per group; this module only registers them, in help order.
"""

from __future__ import annotations

import typer

from router.commands import classifier, energy, report, serving, thresholds, whatif
from router.commands.index import index_app
from router.commands.keys import keys_app
from router.commands.thresholds import thresholds_app

app = typer.Typer(help="Frugal: answer each request with the cheapest sufficient tool.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
app.add_typer(index_app, name="index")
app.add_typer(thresholds_app, name="thresholds")
app.add_typer(keys_app, name="keys")

app.command()(serving.serve)
app.command()(serving.ask)
app.command()(classifier.classify)
app.command()(classifier.train)
app.command("eval")(classifier.evaluate)
app.command()(thresholds.calibrate)
app.command("calibrate-power")(thresholds.calibrate_power)
app.command("calibrate-energy")(energy.calibrate_energy)
app.command()(whatif.whatif)
app.command()(report.report)


def main() -> None:
    """Console-script entry point."""
    app()
