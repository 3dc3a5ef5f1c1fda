"""Slow clients against ``frugal serve`` (issue 25, item 2), and what the request deadlines cost.

Reproduction: ``--slow`` connections each send complete chat headers announcing a 1000-byte body and 3
bytes of it; then ``--requests`` normal chat requests (echo tiers) on a fresh connection; then what the
slow connections receive within the body timeout plus 5 s, and when a connection that sent half a request
line is closed. The limits are the shipped defaults unless ``--header-timeout``/``--body-timeout`` are given
(so the same program measures a checkout from before the fix, with ``--skip-overhead``).

Overhead: requests per second of uvicorn's ``HttpToolsProtocol`` (on uvloop, as ``frugal serve``) and of
``router.server.DeadlineProtocol`` (its subclass) on a
trivial ASGI app (so the protocol's share is what differs), server in its own process, one client, keep-alive
and one request per connection, alternating rounds. Writes ``bench/results/slow_clients.json``.
Run: ``python bench/slow_clients.py``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from served import frugal_served

ECHO = {"demo_index": False,
        "search": {"backend": "echo", "options": {"prefix": "search: "}},
        "small": {"backend": "echo", "options": {"prefix": "small: "}},
        "large": {"backend": "echo", "options": {"prefix": "large: "}}}
HEAD = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{\"m")
CHAT = {"model": "frugal-small", "messages": [{"role": "user", "content": "hello"}]}


def ready(url: str, process: subprocess.Popen) -> None:
    """Wait until /healthz answers and no tier is warming."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"frugal serve exited with {process.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).json().get("status") != "warming":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError("frugal serve did not become ready")


def first_status(sock: socket.socket, until: float) -> str:
    """The status code the server sends on ``sock`` before ``until``, or what happened instead."""
    sock.settimeout(max(0.01, until - time.monotonic()))
    try:
        data = sock.recv(4096)
    except TimeoutError:
        return "still open"
    except ConnectionResetError:
        return "reset"
    return data.split(b" ", 2)[1].decode() if data else "closed"


def reproduce(slow: int, requests: int, limits: dict[str, float]) -> dict[str, Any]:
    """The reproduction of the issue against a real ``frugal serve``."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "frugal.yaml"
        config.write_text(yaml.safe_dump({**ECHO, "data_dir": str(Path(tmp) / "data"),
                                          **({"limits": limits} if limits else {})}))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        with frugal_served(config, ready, env) as url:
            port = int(url.rsplit(":", 1)[1])
            socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(slow)]
            for sock in socks:
                sock.sendall(HEAD)
            time.sleep(1.0)
            statuses, took = [], []
            with httpx.Client(base_url=url, timeout=30) as client:
                for _ in range(requests):
                    started = time.perf_counter()
                    statuses.append(client.post("/v1/chat/completions", json=CHAT).status_code)
                    took.append(time.perf_counter() - started)
            wait_s = limits.get("body_timeout_s", 30.0) + 5
            until = time.monotonic() + wait_s
            slow_got: dict[str, int] = {}
            for sock in socks:
                status = first_status(sock, until)
                slow_got[status] = slow_got.get(status, 0) + 1
                sock.close()
            partial = socket.create_connection(("127.0.0.1", port), timeout=10)
            partial.sendall(b"POST /v1/chat/compl")
            started = time.monotonic()
            outcome = first_status(partial, started + limits.get("header_timeout_s", 10.0) + 10)
            partial.close()
    return {
        "slow_connections": slow, "limits": limits or "defaults",
        "normal_requests": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "normal_median_ms": round(statistics.median(took) * 1000, 2),
        f"slow_connections_within_{wait_s:g}_s": slow_got,
        "partial_request_line": {"outcome": outcome, "after_s": round(time.monotonic() - started, 1)},
    }


async def _trivial(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _serve_trivial(kind: str, port: int) -> None:
    import uvicorn

    from router.server import ServerConfig

    options: dict[str, Any] = {"port": port, "log_level": "warning", "lifespan": "off"}
    config = (uvicorn.Config(_trivial, http="httptools", loop="uvloop", **options) if kind == "httptools" else
              ServerConfig(_trivial, header_timeout_s=10, body_timeout_s=30, **options))
    uvicorn.Server(config).run()


def _rps(port: int, n: int, keep_alive: bool) -> float:
    request = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    sock = socket.create_connection(("127.0.0.1", port))
    started = time.perf_counter()
    for _ in range(n):
        if not keep_alive:
            sock.close()
            sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(request)
        data = b""
        while not data.endswith(b"ok"):
            data += sock.recv(4096)
    rate = n / (time.perf_counter() - started)
    sock.close()
    return rate


def overhead(rounds: int) -> dict[str, Any]:
    """Requests per second of both protocols, alternating which goes first."""
    from tests.fixtures.llama_server import free_port

    runs: dict[str, dict[str, list[float]]] = {k: {"keep_alive": [], "per_connection": []} for k in ("httptools", "deadline")}
    for round_ in range(rounds):
        for kind in ("httptools", "deadline") if round_ % 2 else ("deadline", "httptools"):
            port = free_port()
            process = multiprocessing.Process(target=_serve_trivial, args=(kind, port), daemon=True)
            process.start()
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port)).close()
                    break
                except OSError:
                    time.sleep(0.05)
            _rps(port, 500, True)  # warm-up
            runs[kind]["keep_alive"].append(_rps(port, 5000, True))
            runs[kind]["per_connection"].append(_rps(port, 2000, False))
            process.terminate()
            process.join()
    return {kind: {mode: {"median_rps": round(statistics.median(v)), "runs": [round(x) for x in v]}
                   for mode, v in modes.items()} for kind, modes in runs.items()}


def main() -> int:
    """Run the reproduction and the overhead measurement; write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", type=int, default=300, help="slow-body connections")
    parser.add_argument("--requests", type=int, default=20, help="normal chat requests sent meanwhile")
    parser.add_argument("--header-timeout", type=float, help="limits.header_timeout_s (default: the shipped one)")
    parser.add_argument("--body-timeout", type=float, help="limits.body_timeout_s (default: the shipped one)")
    parser.add_argument("--rounds", type=int, default=6, help="overhead rounds per protocol")
    parser.add_argument("--skip-overhead", action="store_true", help="reproduction only (a checkout before the fix)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/slow_clients.json")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 4 * args.slow + 1024:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4 * args.slow + 1024, hard), hard))
    limits = {name: value for name, value in (("header_timeout_s", args.header_timeout),
                                              ("body_timeout_s", args.body_timeout)) if value is not None}
    results: dict[str, Any] = {"reproduction": reproduce(args.slow, args.requests, limits)}
    if not args.skip_overhead:
        results["protocol_overhead"] = overhead(args.rounds)
    results["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
