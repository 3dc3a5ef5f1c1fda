"""Net savings with no large tier: the report counts degraded requests as degraded, never as avoided calls.

A new user's first server often has no large model. The mixed workload of ``bench/mixed.py`` (same sources,
proportions and seed) goes through a real ``frugal serve`` with the shipped config and **no large tier**
(``on_large_unavailable: degrade``): every request the classifier sends to the large tier, and every
escalation that would end there, is answered by a cheaper tier and marked degraded. The responses are
counted independently of the ledger, then ``frugal report --format json`` over the same ledger must agree:

- ``degraded.requests`` = N, the responses that carry ``frugal.degraded``;
- ``avoided.large_calls`` = the responses a cheaper tier answered sufficiently (its final attempt
  ``sufficient``) that are not degraded.

    .venv/bin/python bench/degraded.py [--size 60] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from local_energy import wait_small_ready
from mixed import MAX_TOKENS, Item, build_index, git_state, machine, report, service_env, workload
from served import frugal_served


def write_config(path: Path, data_dir: Path, index_dir: Path) -> Path:
    """The shipped config with its own data directory and index, and no large tier."""
    config = yaml.safe_load((ROOT / "config/frugal.yaml").read_text(encoding="utf-8"))
    config["data_dir"] = str(data_dir)
    config["demo_index"] = False
    config["search"].setdefault("options", {})["index_dir"] = str(index_dir)
    config["large"]["model"] = None
    config["on_large_unavailable"] = "degrade"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def ask(client: httpx.Client, url: str, item: Item) -> dict[str, Any]:
    """One ``frugal-auto`` request: its route, whether degraded and whether its final attempt was sufficient."""
    body = {"model": "frugal-auto", "messages": [{"role": "user", "content": item.prompt}],
            "max_tokens": MAX_TOKENS[item.category], "temperature": 0.0}
    response = client.post(f"{url}/v1/chat/completions", json=body)
    if response.status_code != 200:
        return {"id": item.id, "status": response.status_code, "route": None, "degraded": None, "sufficient": None}
    frugal = response.json()["frugal"]
    answered = [a for a in frugal["attempts"] if a["tier"] == frugal["route"]]
    return {"id": item.id, "source": item.source, "status": 200, "route": frugal["route"],
            "degraded": frugal.get("degraded"), "sufficient": bool(answered and answered[-1]["sufficient"]),
            "first_tier": frugal["attempts"][0]["tier"] if frugal["attempts"] else None}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Serve the workload with no large tier, count from the responses, then read the report."""
    items = workload(args.data.resolve(), args.size, args.seed)
    with tempfile.TemporaryDirectory(prefix="frugal-degraded-") as tmp:
        config = write_config(Path(tmp) / "frugal.yaml", Path(tmp) / "data", Path(tmp) / "index")
        build_index(config, args.data.resolve())
        started = time.perf_counter()
        with frugal_served(config, wait_small_ready, service_env()) as url, httpx.Client(timeout=600) as client:
            rows = []
            for number, item in enumerate(items, start=1):
                rows.append(ask(client, url, item))
                print(f"[degraded] {number}/{len(items)} {item.source:<14} -> {rows[-1]['route']} "
                      f"{rows[-1]['degraded'] or ''}", file=sys.stderr, flush=True)
        ledger_report = report(config)
    degraded = sum(1 for r in rows if r["degraded"])
    avoided = sum(1 for r in rows if r["status"] == 200 and r["route"] in ("search", "small")
                  and r["sufficient"] and not r["degraded"])
    figures = {
        "requests": len(rows), "answered": sum(r["status"] == 200 for r in rows),
        "degraded_from_responses": degraded, "degraded_in_report": ledger_report["degraded"]["requests"],
        "avoided_from_responses": avoided, "avoided_in_report": ledger_report["avoided"]["large_calls"],
        "first_tier_large": sum(r.get("first_tier") == "large" for r in rows),
        "report_avoided_energy_wh": ledger_report["avoided"]["energy_wh"],
        "report_avoided_distinguishable_from_zero": ledger_report["avoided"].get("energy_distinguishable_from_zero"),
        "report_degraded_energy_wh": ledger_report["degraded"]["energy_wh"],
    }
    figures["agree"] = (figures["degraded_from_responses"] == figures["degraded_in_report"]
                        and figures["avoided_from_responses"] == figures["avoided_in_report"])
    return {"benchmark": "degraded", "when": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": "python bench/degraded.py " + " ".join(sys.argv[1:]), "machine": machine(),
            "git": git_state(), "size": len(items), "seed": args.seed,
            "wall_s": round(time.perf_counter() - started, 1), "figures": figures, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--size", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/degraded.json")
    args = parser.parse_args()
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["figures"], indent=2))
    return 0 if result["figures"]["agree"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
