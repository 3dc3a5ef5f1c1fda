"""The README's promises, checked as written: every `frugal` command it shows runs, and `make serve` takes HOST/PORT.

The commands run in a scratch folder that links to this checkout (and to ``../shared`` beside it), so what
they write (the data folder, ``savings.html``) never lands in the checkout. A command added to the README is
run here without editing this file.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "labelled.example.jsonl"


def readme_commands() -> list[str]:
    """The `.venv/bin/frugal …` lines of the README's bash blocks, in order."""
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(encoding="utf-8"), re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip().startswith(".venv/bin/frugal ")]


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """A folder laid out like the checkout (links to its entries) with ``../shared`` beside it."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in {"data", "savings.html"}:
            (checkout / entry.name).symlink_to(entry)
    shared = REPO.parent / "shared"
    assert (shared / "data").is_dir(), f"the README indexes ../shared/data; it is missing beside {REPO}"
    (tmp_path / "shared").symlink_to(shared)
    return checkout


def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one README line as a shell would (its trailing comment dropped), with no FRUGAL_* of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRUGAL_") or k == "FRUGAL_CACHE_DIR"}
    return subprocess.run(shlex.split(command, comments=True), cwd=cwd, env=env, check=False, capture_output=True,
                          text=True, timeout=900)


def check(command: str, done: subprocess.CompletedProcess[str], cwd: Path) -> None:
    """What each command promises beyond exiting 0."""
    words = shlex.split(command, comments=True)
    verb = words[1]
    if verb == "calibrate-power" and importlib.util.find_spec("codecarbon") is None:
        # the optional [power] extra is not installed by `make`: the command must say how to get it
        assert done.returncode == 2 and "frugal-router[power]" in done.stderr, done.stderr
        return
    assert done.returncode == 0, f"{command}\nstdout: {done.stdout[-2000:]}\nstderr: {done.stderr[-2000:]}"
    if verb == "ask":
        answer = json.loads(done.stdout)
        assert answer["answer"].strip() and answer["route"] in {"search", "small", "large"}
    elif verb == "classify":
        assert json.loads(done.stdout)["tier"] in {"search", "small", "large"}
    elif verb == "report":
        out = Path(cwd, words[words.index("--out") + 1]) if "--out" in words else None
        assert out is None or "<html" in out.read_text(encoding="utf-8").lower()
    elif verb == "eval":
        metrics = json.loads(done.stdout)
        rows = sum(1 for line in Path(cwd, words[words.index("--data") + 1]).read_text().splitlines()
                   if line.strip() and not line.startswith("#"))
        assert metrics["n"] == rows and 0 <= metrics["under_routing"] <= 1
    elif verb == "calibrate":
        result = json.loads(done.stdout)
        assert {"current", "proposed"} <= set(result) and "--apply" not in words
    elif verb == "whatif":
        assert "proposed" in done.stdout.lower(), done.stdout
    elif verb == "calibrate-energy":
        work = json.loads(done.stdout)["energy"]["work"]
        assert "tantivy" in work and any(cost.get("per_output_token_j", 0) > 0 for cost in work.values()), work


@pytest.mark.slow
def test_every_readme_command_without_a_server_runs_as_written(scratch: Path) -> None:
    commands = readme_commands()
    verbs = [shlex.split(c, comments=True)[1] for c in commands]
    assert {"ask", "classify", "index", "report", "whatif", "eval", "calibrate", "calibrate-energy"} <= set(verbs), verbs
    for command in commands:
        check(command, run(command, scratch), scratch)
    assert (scratch / "data" / "ledger.sqlite3").is_file()  # `ask` recorded its request where the README says


def test_readme_points_eval_and_calibrate_at_the_shipped_example() -> None:
    uses = [c for c in readme_commands() if " eval " in c or " calibrate " in c]
    assert uses and all("--data config/labelled.example.jsonl" in c for c in uses), uses
    assert EXAMPLE.is_file()


@pytest.mark.parametrize(("arguments", "expected"), [
    ([], ["serve"]),  # FRUGAL_HOST / FRUGAL_PORT and the YAML then decide
    (["HOST=0.0.0.0", "PORT=9123"], ["serve", "--host", "0.0.0.0", "--port", "9123"]),
    (["PORT=9124"], ["serve", "--port", "9124"]),
])
def test_make_serve_passes_host_and_port_given_on_its_command_line(arguments: list[str], expected: list[str]) -> None:
    env = {**os.environ, "HOST": "203.0.113.9", "PORT": "1"}  # exported by a shell for something else: ignored
    done = subprocess.run(["make", "-n", "-o", ".venv/.installed", "serve", *arguments], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60, check=True)
    serve = [line for line in done.stdout.splitlines() if "frugal serve" in line]
    assert len(serve) == 1 and shlex.split(serve[0])[1:] == expected, done.stdout


def test_frugal_port_in_the_environment_reaches_the_server_settings(tmp_path: Path) -> None:
    code = ("from router.commands.common import settings_from; s = settings_from(None, None); print(s.host, s.port)")
    env = {**os.environ, "FRUGAL_HOST": "127.0.0.2", "FRUGAL_PORT": "8123", "FRUGAL_DATA_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.split() == ["127.0.0.2", "8123"]
