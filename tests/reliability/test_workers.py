"""``frugal serve --workers 2`` (``workers: 2``): two processes share the port and the data directory.

Every answered request has its ledger row once, whichever worker answered; a worker killed with
``kill -9`` is replaced by uvicorn's supervisor while the other keeps answering.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import httpx

from tests.reliability.conftest import ECHO_TIERS, ServeProcess, write_config


def workers_of(pid: int) -> list[int]:
    """The worker processes uvicorn's supervisor spawned (children running multiprocessing's spawn_main)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == pid and b"spawn_main" in command:
            found.append(int(entry.name))
    return sorted(found)


def ask_many(url: str, n: int, threads: int = 8) -> list[str]:
    ids: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(n // threads):
                response = client.post("/v1/chat/completions", json={
                    "model": "frugal-small", "messages": [{"role": "user", "content": f"hello {k}-{i}"}]})
                assert response.status_code == 200, response.text
                with lock:
                    ids.append(response.json()["id"])

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    return ids


def test_two_workers_answer_and_record_every_request_once(tmp_path: Path) -> None:
    config = write_config(tmp_path / "frugal.yaml", **ECHO_TIERS, workers=2)
    server = ServeProcess(config, tmp_path / "data").start()
    try:
        assert server.process is not None
        workers = workers_of(server.process.pid)
        assert len(workers) == 2, workers
        answered = ask_many(server.url, 64)
        os.kill(workers[0], signal.SIGKILL)  # one worker dies; the other answers while it is replaced
        answered += ask_many(server.url, 32)
        deadline = time.monotonic() + 60
        while len(workers_of(server.process.pid)) != 2 or workers[0] in workers_of(server.process.pid):
            assert time.monotonic() < deadline, "the killed worker was not replaced"
            time.sleep(0.2)
    finally:
        server.stop()
    with sqlite3.connect(tmp_path / "data" / "ledger.sqlite3") as conn:
        rows = [row[0] for row in conn.execute("SELECT request_id FROM requests WHERE status = 200")]
    assert len(answered) == 96 and sorted(rows) == sorted(answered)
