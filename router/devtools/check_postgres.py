"""Make sure the test PostgreSQL on 127.0.0.1:5432 answers; start the local cluster when it does not.

The ledger tests run against a real PostgreSQL and must fail loudly, not skip, when it is missing: this
check runs before the suite and exits non-zero with instructions when the server cannot be reached.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys
import time

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def reachable(url: str) -> str | None:
    """None when a connection succeeds, else the error text."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3) as connection:
            connection.execute("select 1")
        return None
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"; the text says why
        return str(exc).strip()


def start_local_cluster() -> None:
    """Start a Debian-managed local cluster, if this machine has one."""
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    if not versions:
        return
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
                   check=False, capture_output=True)


def main() -> int:
    """Exit 0 when PostgreSQL answers (starting it if needed), 1 otherwise."""
    url = os.environ.get("FRUGAL_TEST_POSTGRES_URL", DEFAULT_URL)
    error = reachable(url)
    if error is not None:
        start_local_cluster()
        for _ in range(20):
            time.sleep(0.5)
            error = reachable(url)
            if error is None:
                break
    if error is not None:
        print(f"PostgreSQL is not reachable at {url}: {error}\n"
              "The ledger tests need it. Start it (Debian: pg_ctlcluster <version> main start) or point "
              "FRUGAL_TEST_POSTGRES_URL at a server.", file=sys.stderr)
        return 1
    print(f"PostgreSQL reachable at {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
