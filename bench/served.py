"""A real ``frugal serve`` process for a benchmark: started on a free loopback port, stopped afterwards."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def frugal_served(config: Path, ready: Callable[[str, subprocess.Popen], None],
                  env: dict[str, str]) -> Iterator[str]:
    """Serve ``config`` and yield its URL once ``ready(url, process)`` returns; on a failure print the log tail."""
    sys.path.insert(0, str(ROOT))
    from tests.fixtures.llama_server import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile(mode="w+") as log:
        process = subprocess.Popen([str(Path(sys.executable).parent / "frugal"), "serve", "--config", str(config),
                                    "--port", str(port), "--log-level", "warning"], env=env, cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            ready(url, process)
            yield url
        except Exception:
            log.seek(0)
            print(log.read()[-3000:], file=sys.stderr)
            raise
        finally:
            process.terminate()
            process.wait(timeout=60)
