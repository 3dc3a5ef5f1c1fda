"""Shared fixtures: settings with echo tiers (fast, deterministic), the app in process, a live server."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Self

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# files Frugal derives on a machine (the ONNX export of MiniLM) go to a scratch folder, not ~/.cache
os.environ.setdefault("FRUGAL_CACHE_DIR", tempfile.mkdtemp(prefix="frugal-test-cache-"))

pytest_plugins = ["tests.fixtures.llama_server"]

ESCALATE = "PLEASE-ESCALATE"


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
        yield test_client


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """A uvicorn server running the app in a background thread on 127.0.0.1."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
