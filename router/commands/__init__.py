"""The typer layer of the ``frugal`` command line, one module per command group; ``router.cli`` wires them.

Each command parses its options, builds only what it needs and prints; the work itself lives in the
packages it calls (``router.admin.commands`` for thresholds and calibration, ``backends.search.ingest``
for the index, ``classifiers`` for training and evaluation). ``common`` holds the shared options and helpers.
"""
