"""Shared fixtures: settings with echo tiers (fast, deterministic), the app in process, a live server."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Self

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# files Frugal derives on a machine (the ONNX export of MiniLM) go to a scratch folder, not ~/.cache
os.environ.setdefault("FRUGAL_CACHE_DIR", tempfile.mkdtemp(prefix="frugal-test-cache-"))

pytest_plugins = ["tests.fixtures.llama_server"]

ESCALATE = "PLEASE-ESCALATE"


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Which CPU this run is on, and what the precision/runtime rule picks on it."""
    from router.devtools.cpu_report import cpu_report

    return [cpu_report()]


def echo_settings(tmp_path: Path, **overrides: object):
    """Settings whose three tiers are EchoBackends; the search and small echoes escalate on a marker."""
    from router.settings import load_settings

    base: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "demo_index": False,
        "search": {"backend": "echo", "options": {"prefix": "search: ", "insufficient_when": ESCALATE,
                                                  "name": "echo-search"}},
        "small": {"backend": "echo", "options": {"prefix": "small: ", "insufficient_when": ESCALATE + "-2",
                                                 "name": "echo-small"}},
        "large": {"backend": "echo", "options": {"prefix": "large: ", "name": "echo-large"}},
    }
    base.update(overrides)
    return load_settings(None, **base)


@pytest.fixture
def settings(tmp_path: Path):
    """Echo-tier settings in a temporary data directory."""
    return echo_settings(tmp_path)


@pytest.fixture
def client(settings) -> Iterator[object]:
    """The app in process, lifespan run (real classifier, real SQLite ledger, echo tiers)."""
    from fastapi.testclient import TestClient

    from router.app import create_app

    with TestClient(create_app(settings)) as test_client:
        until_warm(test_client.get)
        yield test_client


def until_warm(get: Callable[[str], Any], timeout_s: float = 300) -> dict[str, Any]:
    """Poll ``/healthz`` (with ``get``, e.g. a TestClient's) until no tier is still loading; its last report."""
    deadline = time.monotonic() + timeout_s
    while True:
        report: dict[str, Any] = get("/healthz").json()
        if report["status"] != "warming":
            return report
        if time.monotonic() > deadline:
            raise RuntimeError(f"the tiers were still warming after {timeout_s} s: {report}")
        time.sleep(0.05)


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """A uvicorn server running the app in a background thread on 127.0.0.1."""

    def __init__(self, app: object, *, wait_warm: bool = True) -> None:
        import uvicorn

        self.wait_warm = wait_warm  # return once /healthz no longer says "warming" (the tiers have loaded)
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        import httpx

        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        if self.wait_warm:
            until_warm(lambda path: httpx.get(self.url + path, timeout=30))
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
