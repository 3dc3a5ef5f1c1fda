"""Issue 25 item 4: Frugal is configured the same from any directory.

``config/frugal.yaml`` is found relative to the working directory, so outside the checkout only the built-in
defaults and the environment count. They used to differ from the shipped file (no ``gpt-4o-mini`` alias), and a
partial section (``FRUGAL_LARGE__MODEL`` alone) replaced a tier's defaults instead of merging into them:
``cd /tmp && FRUGAL_LARGE__MODEL=openai/x frugal serve`` stopped with "large.backend: Field required".
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from router.settings import load_settings
from tests.reliability.conftest import FRUGAL, ROOT, ServeProcess

#: One partial override per nested section (and one top-level dict), as an operator sets them.
OVERRIDES = [
    {},
    {"FRUGAL_LARGE__MODEL": "openai/x"},
    {"FRUGAL_LARGE__API_BASE": "http://127.0.0.1:9/v1"},
    {"FRUGAL_SMALL__TIMEOUT_S": "30"},
    {"FRUGAL_SEARCH__MAX_CONCURRENCY": "2"},
    {"FRUGAL_CLASSIFIER__THREADS": "2"},
    {"FRUGAL_ENERGY__ZONE": "FRA"},
    {"FRUGAL_LIMITS__TIER_QUEUE": "4"},
    {"FRUGAL_POLICY__OBJECTIVE": "local-first"},
    {"FRUGAL_AUTH__ADMIN_KEY": "anywhere-admin-key"},
    {"FRUGAL_ALIASES__CHEAP": "frugal-small"},
]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any FRUGAL_* setting of ours, plus ``extra``."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("FRUGAL_") or k == "FRUGAL_CACHE_DIR"}
    return {**kept, "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True", **extra}


@pytest.mark.parametrize("env", OVERRIDES, ids=lambda env: next(iter(env), "defaults"))
def test_settings_from_the_checkout_and_from_elsewhere_are_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name in [k for k in os.environ if k.startswith("FRUGAL_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT)
    in_checkout = load_settings()
    monkeypatch.chdir(tmp_path)
    elsewhere = load_settings()
    assert in_checkout.config_path == Path("config/frugal.yaml") and elsewhere.config_path is None
    assert elsewhere.model_dump() == in_checkout.model_dump()
    assert elsewhere.large.backend == "litellm" and elsewhere.small.max_concurrency == 1
    assert elsewhere.aliases["gpt-4o-mini"] == "frugal-auto"


def test_a_partial_tier_in_a_config_file_keeps_the_tier_defaults(tmp_path: Path) -> None:
    config = tmp_path / "mine.yaml"
    config.write_text("large:\n  model: openai/x\nsmall:\n  timeout_s: 30\naliases:\n  cheap: frugal-small\n")
    settings = load_settings(config)
    assert (settings.large.backend, settings.large.model, settings.large.max_concurrency) == ("litellm", "openai/x", 16)
    assert (settings.small.backend, settings.small.timeout_s, settings.small.max_concurrency) == ("llamacpp", 30, 1)
    assert settings.aliases == {"gpt-4o-mini": "frugal-auto", "gpt-3.5-turbo": "frugal-auto", "cheap": "frugal-small"}


@pytest.mark.slow
def test_frugal_serve_and_ask_run_from_another_directory_with_only_the_large_model_set(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = clean_env(FRUGAL_LARGE__MODEL="openai/x")
    server = ServeProcess(None, tmp_path / "data", env=env, cwd=elsewhere)
    server.env = env
    server.start(timeout=180)
    try:
        health = httpx.get(server.url + "/healthz", timeout=30).json()
        lookup = httpx.post(server.url + "/v1/chat/completions", timeout=60, json={  # a built-in alias
            "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Which port does frugal serve use?"}]})
        small = httpx.post(server.url + "/v1/chat/completions", timeout=120, json={
            "model": "frugal-small", "max_tokens": 8, "messages": [{"role": "user", "content": "Say hello."}]})
    finally:
        server.stop()
    assert health["tiers"]["search"]["ready"] and health["tiers"]["small"]["ready"], health
    assert health["tiers"]["large"]["backend"] == "litellm"
    assert lookup.status_code == 200 and lookup.headers["x-frugal-route"] == "search", lookup.text
    assert "8000" in lookup.json()["choices"][0]["message"]["content"]
    assert small.status_code == 200 and small.json()["choices"][0]["message"]["content"].strip(), small.text
    assert not (elsewhere / "data").exists()  # --data-dir was honoured; nothing landed in the working directory

    asked = subprocess.run([str(FRUGAL), "ask", "Which port does frugal serve use?", "--model", "frugal-search",
                            "--data-dir", str(tmp_path / "data"), "--json"], cwd=elsewhere, env=env,
                           capture_output=True, text=True, timeout=180, check=False)
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)["route"] == "search"
