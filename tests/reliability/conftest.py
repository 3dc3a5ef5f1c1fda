"""Reliability fixtures: a stoppable TCP proxy, `frugal serve` subprocesses, a dedicated PostgreSQL database."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
FRUGAL = ROOT / ".venv" / "bin" / "frugal"
PG_SERVER = os.environ.get("FRUGAL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ECHO_TIERS: dict[str, Any] = {
    "demo_index": False,
    "search": {"backend": "echo", "options": {"prefix": "search: ", "name": "echo-search"}},
    "small": {"backend": "echo", "options": {"prefix": "small: ", "name": "echo-small"}},
    "large": {"backend": "echo", "options": {"prefix": "large: ", "name": "echo-large"}},
}


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to a target; ``stop()`` closes the listener and every open connection.

    ``pause()`` is ``kill -STOP`` of a proxy: connections stay open and the kernel still accepts bytes, but
    nothing is forwarded (and no new connection reaches the target) until ``resume()``.
    """

    def __init__(self, target_port: int, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port or free_port()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._flowing = threading.Event()
        self._flowing.set()

    def pause(self) -> None:
        """Stop forwarding without closing anything: a silent, stalled peer."""
        self._flowing.clear()

    def resume(self) -> None:
        """Forward again, including what arrived while paused."""
        self._flowing.set()

    def start(self) -> TcpProxy:
        """Listen (again) on the same port."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Refuse new connections and cut the open ones, as a database that went away would."""
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept() (close alone does not)
            except OSError:
                pass
            listener.close()
        with self._lock:
            for sock in list(self._sockets):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self._flowing.wait()
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
                for sock in (client, upstream):  # as libpq and real proxies do: no Nagle delay on small writes
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.close()
                except OSError:
                    pass


def write_config(path: Path, **settings: Any) -> Path:
    """A YAML config file holding ``settings``."""
    path.write_text(yaml.safe_dump(settings))
    return path


class ServeProcess:
    """A `frugal serve` subprocess on a free loopback port, run in ``cwd`` (the checkout unless told)."""

    def __init__(self, config: Path | None, data_dir: Path, port: int | None = None, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> None:
        self.config, self.data_dir, self.cwd = config, data_dir, cwd or ROOT
        self.port = port or free_port()
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})}
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"serve-{self.port}.log"

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> ServeProcess:
        """Start and wait until /healthz answers and no tier is still loading ("warming")."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [str(FRUGAL), "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
                   *(["--config", str(self.config)] if self.config is not None else []), "--log-level", "warning"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"frugal serve exited with {self.process.returncode}: {self.log.read_text()[-3000:]}")
            try:
                health = httpx.get(self.url + "/healthz", timeout=2)
                if health.status_code in (200, 503) and health.json().get("status") != "warming":
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"frugal serve did not answer on {self.url}: {self.log.read_text()[-3000:]}")

    def kill9(self) -> None:
        """SIGKILL: no shutdown code runs."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def pg_database() -> Iterator[tuple[str, str]]:
    """A fresh PostgreSQL database ``frugal_replicas_test`` (dropped afterwards): (SQLAlchemy URL, libpq URL)."""
    from sqlalchemy import create_engine, text

    name = "frugal_replicas_test"
    admin = create_engine(PG_SERVER + "?connect_timeout=5", isolation_level="AUTOCOMMIT")

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    try:
        drop()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - PostgreSQL is part of this feature: fail, do not skip
        pytest.fail(f"PostgreSQL at {PG_SERVER} is unusable ({exc}); these tests fail rather than skip")
    base = PG_SERVER.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}", f"{base.replace('+psycopg', '')}/{name}"
    finally:
        drop()
        admin.dispose()


@contextmanager
def proxied_schema(prefix: str = "frugal_outage") -> Iterator[tuple[TcpProxy, str, str]]:
    """(proxy, ledger URL through the proxy, direct URL) in a fresh PostgreSQL schema, dropped afterwards."""
    from sqlalchemy import create_engine, text

    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    direct = create_engine(PG_SERVER + "?connect_timeout=5")
    with direct.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    proxy = TcpProxy(5432).start()
    options = f"options=-csearch_path%3D{schema}"
    via_proxy = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/test?connect_timeout=2&{options}"
    try:
        yield proxy, via_proxy, f"{PG_SERVER}?{options}"
    finally:
        proxy.resume()
        proxy.stop()
        with direct.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        direct.dispose()


@pytest.fixture
def proxied_pg() -> Iterator[tuple[TcpProxy, str, str]]:
    """``proxied_schema`` as a fixture; PostgreSQL is part of the feature, so an unusable one fails the test."""
    try:
        context = proxied_schema()
        proxied = context.__enter__()
    except Exception as exc:  # noqa: BLE001 - fail, do not skip
        pytest.fail(f"PostgreSQL at {PG_SERVER} is unusable ({exc})")
    try:
        yield proxied
    finally:
        context.__exit__(None, None, None)
