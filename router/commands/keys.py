"""``frugal keys hash|new``: admin and client keys (no config, data or model needed)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from router.commands.common import ConfigOpt, DataDirOpt, echo_json, fail

keys_app = typer.Typer(help="Make admin and client keys.", no_args_is_help=True)


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
        fail(ValueError("empty key"))
    typer.echo(hash_key(key))


@keys_app.command("new")
def keys_new(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Make a random key; print it (give it to the client or use it as the admin key) and its digest."""
    from router.auth import hash_key, new_key

    key = new_key()
    echo_json({"key": key, "sha256": hash_key(key)})
