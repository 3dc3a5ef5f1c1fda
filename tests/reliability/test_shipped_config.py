"""`make serve`'s path: `frugal serve` on the shipped config/frugal.yaml, demo index built, real small model."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.reliability.conftest import ROOT, ServeProcess

pytestmark = pytest.mark.slow


def ask(server: ServeProcess, text: str) -> httpx.Response:
    return httpx.post(server.url + "/v1/chat/completions", timeout=180, json={
        "model": "frugal-auto", "messages": [{"role": "user", "content": text}]})


def test_the_shipped_config_serves_the_readme_examples(tmp_path: Path) -> None:
    server = ServeProcess(ROOT / "config" / "frugal.yaml", tmp_path / "data")
    server.env = {k: v for k, v in server.env.items() if not k.startswith("FRUGAL_")}  # the embedded defaults only
    server.start(timeout=180)
    try:
        health = httpx.get(server.url + "/healthz", timeout=10).json()
        lookup = ask(server, "Which port does frugal serve use by default?")
        unknown = ask(server, "Who invented the telephone?")
    finally:
        server.stop()
    assert lookup.status_code == 200, lookup.text
    assert lookup.headers["x-frugal-route"] == "search"
    assert "8000" in lookup.json()["choices"][0]["message"]["content"]
    assert lookup.json()["frugal"]["sources"]
    assert unknown.status_code == 200, unknown.text
    frugal = unknown.json()["frugal"]
    assert unknown.headers["x-frugal-degraded"] == "large-unavailable"
    assert frugal["route"] == "small" and frugal["attempts"][0]["tier"] == "search"
    assert unknown.json()["choices"][0]["message"]["content"].strip()
    assert health["tiers"]["search"]["ready"] and health["tiers"]["small"]["ready"]
    assert not health["tiers"]["large"]["ready"]
