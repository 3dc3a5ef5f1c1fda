"""Intelligence per watt-hour: correct answers per Wh of a mixed workload, Frugal vs all-small vs all-large.

A workload of our own making, drawn with a fixed seed from the public sets in ``../shared/data`` in stated
proportions (``PROPORTIONS``): factual lookups (SQuAD v1.1 dev questions, whose passages are indexed, and
NQ-open questions, against the same index plus the Wikipedia vital articles), transformations
(Self-Instruct user-oriented items our review labels ``small`` and that carry an input; Dolly "Classify …"
rows), maths (GSM8K) and code (HumanEval). Where the shipped classifier's training rows can be avoided
they are (the manifest names its seed and cap); HumanEval and the Self-Instruct items cannot: all of them
are training rows.

The same prompts, in the same order, go through three real ``frugal serve`` processes that differ only in
the model name the client sends: ``frugal-auto`` (the shipped classifier and default thresholds, nothing
tuned here), ``frugal-small`` and ``frugal-large`` (forced). Each arm has its own ledger; its figures come
from ``frugal report --format json`` over that ledger. The large tier is litellm model
``openai/gpt-4o-mini`` pointed at llama-cpp-python's OpenAI-compatible server running the shipped
SmolLM2 GGUF (a stand-in: there is no large model offline), so the ledger's large-tier energy is
EcoLogits' estimate for gpt-4o-mini at the stand-in's output length. **An answer from the large tier is
counted correct (assumed)**; every other answer is judged as returned: factual = a gold answer appears in it
(SQuAD normalisation, ``bench/search.py``), maths = its last number equals GSM8K's, code = HumanEval's
tests pass in a subprocess (no network, timeout). Transformations are not judged (no reference a
string match could use) and are left out of accuracy; their energy still counts.

    .venv/bin/python bench/mixed.py [--data ../shared/data] [--size 120] [--seed 0] [--quick]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

#: Share of the workload per source; the category each source stands for is in ``CATEGORY``.
PROPORTIONS: dict[str, float] = {
    "squad": 0.30, "nq_open": 0.10,  # factual lookups: 40 %
    "self_instruct": 0.15, "dolly_classify": 0.10,  # transformations: 25 %
    "gsm8k": 0.20,  # maths: 20 %
    "humaneval": 0.15,  # code: 15 %
}
CATEGORY = {"squad": "factual", "nq_open": "factual", "self_instruct": "transformation",
            "dolly_classify": "transformation", "gsm8k": "maths", "humaneval": "code"}
#: What the client asks for per category (``max_tokens``); every request is sent at temperature 0.
MAX_TOKENS = {"factual": 64, "transformation": 192, "maths": 256, "code": 320}
ARMS = {"frugal_auto": "frugal-auto", "all_small": "frugal-small", "all_large": "frugal-large"}
LARGE_MODEL = "openai/gpt-4o-mini"
CODE_TIMEOUT_S = 10.0
QUICK_SIZE = 12


@dataclass
class Item:
    """One prompt of the workload and what its answer is judged against."""

    id: str
    source: str
    prompt: str
    reference: Any = None
    training_text: str = ""  # the text as the classifier's training rows would hold it; default the prompt
    seen_in_training: bool = False
    category: str = field(init=False)

    def __post_init__(self) -> None:
        self.category = CATEGORY[self.source]
        self.training_text = self.training_text or self.prompt


# -- the workload ----------------------------------------------------------------------------------------

def require(path: Path, what: str) -> Path:
    """``path`` if it exists, else exit with a message that says what is missing and how to point at it."""
    if not path.exists():
        sys.exit(f"{what} not found at {path}: pass --data DIR, the folder of the public sets "
                 "(see ../shared/data/README.md)")
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (gzip when it ends in .gz)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:  # type: ignore[operator]
        return [json.loads(line) for line in handle if line.strip()]


def counts(size: int) -> dict[str, int]:
    """Prompts per source for a workload of ``size`` (largest remainder, so they add up to ``size``)."""
    exact = {source: share * size for source, share in PROPORTIONS.items()}
    out = {source: int(value) for source, value in exact.items()}
    for source in sorted(exact, key=lambda s: exact[s] - out[s], reverse=True)[: size - sum(out.values())]:
        out[source] += 1
    return out


def training_texts(data: Path) -> set[str]:
    """Texts of the public rows the shipped classifier was trained on (its manifest's seed and cap)."""
    from classifiers.config import shipped_model_dir
    from classifiers.datasets import load_public
    from classifiers.model import read_manifest

    manifest = read_manifest(shipped_model_dir())
    rows = load_public(data, seed=int(manifest["seed"]), cap=int(manifest["data"]["cap"]))
    return {row["text"] for row in rows}


def _squad(data: Path) -> list[Item]:
    """SQuAD v1.1 dev questions (their passages are in the index)."""
    rows = read_jsonl(require(data / "squad_v1.1_dev/questions.jsonl", "SQuAD questions"))
    return [Item(q["id"], "squad", q["question"].strip(), q["answers"]) for q in rows]


def _nq_open(data: Path) -> list[Item]:
    """NQ-open dev questions (open domain: the index seldom holds their answers)."""
    rows = read_jsonl(require(data / "nq_open/NQ-open.dev.jsonl", "NQ-open dev"))
    return [Item(f"nq:{n}", "nq_open", q["question"].strip(), q["answer"]) for n, q in enumerate(rows)]


def _gsm8k(data: Path) -> list[Item]:
    """GSM8K word problems with their final number."""
    rows = read_jsonl(require(data / "gsm8k/train.jsonl", "GSM8K train"))
    return [Item(f"gsm8k:{n}", "gsm8k", q["question"].strip(), q["answer"].split("####")[-1].strip().replace(",", ""))
            for n, q in enumerate(rows)]


def _humaneval(data: Path) -> list[Item]:
    """HumanEval stubs, asked as "complete this function", with their tests."""
    rows = read_jsonl(require(data / "humaneval/HumanEval.jsonl.gz", "HumanEval"))
    return [Item(q["task_id"], "humaneval", f"Complete this Python function.\n\n```python\n{q['prompt']}```",
                 {"prompt": q["prompt"], "test": q["test"], "entry_point": q["entry_point"]},
                 training_text=q["prompt"].strip()) for q in rows]


def _self_instruct(data: Path) -> list[Item]:
    """Self-Instruct user-oriented items our review labels ``small`` that carry an input."""
    from classifiers.datasets import LABELS_DIR

    small = {r["id"] for r in read_jsonl(LABELS_DIR / "self_instruct.jsonl") if r["tier"] == "small"}
    path = data / "self_instruct_user_oriented/user_oriented_instructions.jsonl"
    items = []
    for q in read_jsonl(require(path, "Self-Instruct user-oriented")):
        supplied = (q.get("instances") or [{}])[0].get("input", "").strip()
        if q["id"] in small and supplied:
            items.append(Item(q["id"], "self_instruct", f"{q['instruction'].strip()}\n\n{supplied}"))
    return items


def _dolly_classify(data: Path) -> list[Item]:
    """Dolly rows whose instruction starts with "Classify" (items listed in the request)."""
    path = data / "dolly_partial_no_category/dolly_first6400_instruction_response.jsonl"
    return [Item(f"dolly:{q['id']}", "dolly_classify", q["instruction"].strip()) for q in read_jsonl(require(path, "Dolly"))
            if q["instruction"].strip().lower().startswith("classify")]


#: Every source by name: the items it offers, in file order.
SOURCES: dict[str, Callable[[Path], list[Item]]] = {
    "squad": _squad, "nq_open": _nq_open, "self_instruct": _self_instruct, "dolly_classify": _dolly_classify,
    "gsm8k": _gsm8k, "humaneval": _humaneval,
}


def workload(data: Path, size: int, seed: int) -> list[Item]:
    """The seeded, shuffled workload: per source, items the classifier never saw first, then seen ones."""
    seen = training_texts(data)
    chosen: list[Item] = []
    for source, n in counts(size).items():
        rng = random.Random(f"{seed}:{source}")
        pool = SOURCES[source](data)
        for item in pool:
            item.seen_in_training = item.training_text in seen
        fresh = [i for i in pool if not i.seen_in_training]
        stale = [i for i in pool if i.seen_in_training]
        picked = rng.sample(fresh, min(n, len(fresh)))
        chosen += picked + rng.sample(stale, n - len(picked))
    random.Random(seed).shuffle(chosen)
    return chosen


# -- judging ---------------------------------------------------------------------------------------------

NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")
CODE_BLOCK = re.compile(r"```[ \t]*(?:python|py|Python)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def factual_correct(answer: str, golds: list[str]) -> bool:
    """A gold answer appears in the answer (without the search tier's source list)."""
    from search import answer_hit  # bench/search.py: the SQuAD normalisation every search bench uses

    return bool(answer_hit(answer.split("\n\nSources:")[0], golds))


def maths_correct(answer: str, gold: str) -> bool:
    """The answer's last number equals GSM8K's final answer."""
    numbers = NUMBER.findall(answer)
    if not numbers:
        return False
    try:
        return abs(float(numbers[-1].replace(",", "").rstrip(".")) - float(gold)) < 1e-6
    except ValueError:
        return False


def program_for(answer: str, ref: dict[str, str]) -> str:
    """HumanEval program: the stub, the answer's code (a whole function, or the body that follows) and the tests."""
    blocks = CODE_BLOCK.findall(answer)
    defines = re.compile(rf"def\s+{re.escape(ref['entry_point'])}\s*\(")
    code = next((b for b in blocks if defines.search(b)), max(blocks, key=len) if blocks else answer)
    body = f"{ref['prompt']}\n{code}" if defines.search(code) else ref["prompt"] + code
    return f"{body}\n\n{ref['test']}\n\ncheck({ref['entry_point']})\n"


def code_correct(answer: str, ref: dict[str, str], *, isolated: bool) -> bool:
    """HumanEval's tests pass: the program runs in a fresh interpreter (no network if ``isolated``), in time."""
    isolate = ["unshare", "-n"] if isolated else []
    with tempfile.TemporaryDirectory(prefix="frugal-mixed-code-") as tmp:
        script = Path(tmp) / "candidate.py"
        script.write_text(program_for(answer, ref), encoding="utf-8")
        try:
            done = subprocess.run([*isolate, sys.executable, "-I", str(script)], check=False, cwd=tmp,
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=CODE_TIMEOUT_S,
                                  env={"PATH": os.environ["PATH"]})
        except subprocess.TimeoutExpired:
            return False
    return done.returncode == 0


def network_isolation() -> bool:
    """Whether ``unshare -n`` can run a program without network here."""
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], check=False, capture_output=True).returncode == 0


def judge(item: Item, answer: str, *, isolated: bool) -> bool | None:
    """Whether an answer is right, or None for the unjudged transformations."""
    if item.category == "factual":
        return factual_correct(answer, item.reference)
    if item.category == "maths":
        return maths_correct(answer, item.reference)
    if item.category == "code":
        return code_correct(answer, item.reference, isolated=isolated)
    return None


# -- the service -----------------------------------------------------------------------------------------

def frugal_bin() -> str:
    """The ``frugal`` command of this virtualenv."""
    return str(Path(sys.executable).parent / "frugal")


def service_env() -> dict[str, str]:
    """Offline environment; the dummy key satisfies litellm's openai provider for the loopback stand-in."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True", "OPENAI_API_KEY": "x"}


def write_config(path: Path, data_dir: Path, index_dir: Path, api_base: str) -> Path:
    """The shipped config/frugal.yaml with only the data directory, the index and the large tier set.

    The large tier's health probe is off: Frugal never probes a hosted ``openai/gpt-4o-mini`` (no
    ``api_base``), and the stand-in serves one request at a time, so a probe sent while it is generating
    times out and marks the tier unavailable (a first run lost 43 forced-large requests to that).
    """
    config = yaml.safe_load((ROOT / "config/frugal.yaml").read_text(encoding="utf-8"))
    config["data_dir"] = str(data_dir)
    config["demo_index"] = False
    config["search"].setdefault("options", {})["index_dir"] = str(index_dir)
    config["large"].update({"model": LARGE_MODEL, "api_base": api_base})
    config["large"].setdefault("options", {})["health_probe"] = False
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def build_index(config: Path, data: Path) -> dict[str, Any]:
    """``frugal index add`` the SQuAD dev passages and the vital articles into the shared index."""
    paths = [require(data / "squad_v1.1_dev/passages.jsonl", "SQuAD passages"),
             require(data / "wiki_vital_articles_en/summaries_en-us.json", "vital articles")]
    started = time.perf_counter()
    done = subprocess.run([frugal_bin(), "index", "add", *map(str, paths), "--config", str(config)],
                          capture_output=True, text=True, env=service_env(), check=True)
    return {**json.loads(done.stdout), "build_s": round(time.perf_counter() - started, 2)}


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 300.0) -> None:
    """Poll ``/healthz`` until every tier is ready."""
    deadline = time.monotonic() + timeout
    body: Any = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"frugal serve exited with {process.returncode}")
        try:
            body = httpx.get(f"{url}/healthz", timeout=5).json()
            if body.get("status") == "ok":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1.0)
    raise RuntimeError(f"frugal did not become healthy: {body}")


def ask(client: httpx.Client, url: str, model: str, item: Item) -> dict[str, Any]:
    """Send one prompt; the answer, its route and energy as the response reports them."""
    body = {"model": model, "messages": [{"role": "user", "content": item.prompt}],
            "max_tokens": MAX_TOKENS[item.category], "temperature": 0.0}
    started = time.perf_counter()
    response = client.post(f"{url}/v1/chat/completions", json=body)
    row: dict[str, Any] = {"id": item.id, "source": item.source, "category": item.category,
                           "seen_in_training": item.seen_in_training, "status": response.status_code,
                           "latency_s": round(time.perf_counter() - started, 3)}
    if response.status_code != 200:
        return {**row, "answer": "", "route": None, "error": response.text[:300]}
    payload = response.json()
    frugal = payload.get("frugal", {})
    return {**row, "answer": payload["choices"][0]["message"]["content"] or "", "route": frugal.get("route"),
            "escalations": max(0, len(frugal.get("attempts", [])) - 1), "degraded": frugal.get("degraded"),
            "energy_wh": frugal.get("energy_wh", {}).get("value"),
            "completion_tokens": payload.get("usage", {}).get("completion_tokens")}


def run_arm(model: str, items: list[Item], config: Path) -> tuple[list[dict[str, Any]], float]:
    """Start ``frugal serve``, send every prompt in order under ``model``, stop it; the rows and the wall time."""
    from served import frugal_served

    with frugal_served(config, wait_healthy, service_env()) as url, httpx.Client(timeout=600) as client:
        rows: list[dict[str, Any]] = []
        started = time.perf_counter()
        for number, item in enumerate(items, start=1):
            rows.append(ask(client, url, model, item))
            print(f"[mixed] {model} {number}/{len(items)} {item.source:<14} -> {rows[-1]['route']} "
                  f"{rows[-1]['latency_s']:.1f}s", file=sys.stderr, flush=True)
        wall = time.perf_counter() - started
    return rows, wall


def report(config: Path) -> dict[str, Any]:
    """``frugal report --format json`` over an arm's ledger."""
    done = subprocess.run([frugal_bin(), "report", "--format", "json", "--config", str(config)],
                          capture_output=True, text=True, env=service_env(), check=True)
    return dict(json.loads(done.stdout))


# -- figures ---------------------------------------------------------------------------------------------

def score(rows: list[dict[str, Any]], items: list[Item], *, isolated: bool) -> None:
    """Judge each answer as returned, then count a (non-degraded) large-tier answer correct: the assumption."""
    for row, item in zip(rows, items, strict=True):
        verdict = judge(item, row["answer"], isolated=isolated) if row["status"] == 200 else (
            None if item.category == "transformation" else False)
        assumed = verdict is not None and row["route"] == "large" and not row.get("degraded")
        row["correct_as_returned"] = verdict
        row["large_assumed_correct"] = assumed
        row["correct"] = True if assumed else verdict


def per_wh(correct: int, energy: dict[str, float]) -> dict[str, float | None]:
    """Correct answers per Wh with its range (min over the energy's max, max over its min)."""
    def div(wh: float) -> float | None:
        return round(correct / wh, 3) if wh > 0 else None

    return {"value": div(energy["value"]), "min": div(energy["max"]), "max": div(energy["min"])}


def by_category(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Requests, routes, judged and correct answers and energy (from the responses) per category."""
    out: dict[str, dict[str, Any]] = {}
    for category in MAX_TOKENS:
        mine = [r for r in rows if r["category"] == category]
        judged = [r for r in mine if r["correct"] is not None]
        out[category] = {
            "requests": len(mine), "routes": dict(Counter(str(r["route"]) for r in mine)),
            "judged": len(judged), "correct": sum(bool(r["correct"]) for r in judged),
            "correct_as_returned": sum(bool(r["correct_as_returned"]) for r in judged),
            "energy_wh": round(sum(r.get("energy_wh") or 0.0 for r in mine), 6),
        }
    return out


def summarise(rows: list[dict[str, Any]], rep: dict[str, Any], wall: float) -> dict[str, Any]:
    """One arm's figures: energy and routes from its ledger report, correctness from the judged answers."""
    judged = [r for r in rows if r["correct"] is not None]
    correct = sum(bool(r["correct"]) for r in judged)
    as_returned = sum(bool(r["correct_as_returned"]) for r in judged)
    energy = rep["energy_wh"]
    requests = int(rep["requests"])
    return {
        "requests": requests, "succeeded": rep.get("succeeded"), "failed": rep.get("failed"),
        "energy_wh": energy, "wh_per_request": energy["value"] / requests if requests else None,
        "route_mix": {tier: block["requests"] for tier, block in rep["by_tier"].items()},
        "escalations": rep["escalations"],
        "avoided_large_calls": rep["avoided"]["large_calls"], "degraded_requests": rep["degraded"]["requests"],
        "avoided_energy_wh_vs_counterfactual": rep["avoided"]["energy_wh"],
        "counterfactual_energy_wh": rep["counterfactual"]["energy_wh"],
        "unreturned_energy_wh": rep.get("unreturned_energy_wh"),
        "judged": len(judged), "correct": correct,
        "correct_by_assumption": sum(bool(r["large_assumed_correct"]) for r in judged),
        "accuracy": round(correct / len(judged), 4) if judged else None,
        "correct_per_wh": per_wh(correct, energy),
        "correct_as_returned": as_returned,
        "correct_as_returned_per_wh": per_wh(as_returned, energy),
        "by_category": by_category(rows),
        "median_latency_s": sorted(r["latency_s"] for r in rows)[len(rows) // 2],
        "wall_s": round(wall, 1),
    }


def compare(arms: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Frugal against all-large and all-small: ratios of correct answers per Wh and net energy."""
    auto, small, large = arms["frugal_auto"], arms["all_small"], arms["all_large"]

    def ratio(a: dict[str, Any], b: dict[str, Any]) -> float | None:
        x, y = a["correct_per_wh"]["value"], b["correct_per_wh"]["value"]
        return round(x / y, 3) if x is not None and y else None

    wh = {name: arm["energy_wh"]["value"] for name, arm in arms.items()}
    return {
        "correct_per_wh_frugal_over_all_large": ratio(auto, large),
        "correct_per_wh_frugal_over_all_small": ratio(auto, small),
        "net_wh_frugal_minus_all_large": round(wh["frugal_auto"] - wh["all_large"], 6),
        "frugal_wh_share_of_all_large": round(wh["frugal_auto"] / wh["all_large"], 4) if wh["all_large"] else None,
        "net_wh_frugal_minus_all_small": round(wh["frugal_auto"] - wh["all_small"], 6),
        "all_large_wh_from_frugal_counterfactual": auto["counterfactual_energy_wh"],
    }


def machine() -> dict[str, Any]:
    """CPU model, cores, platform and load of this machine."""
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8") if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor())
    return {"cpu_model": model, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "load_avg_at_start": os.getloadavg()}


def git_state() -> dict[str, Any]:
    """The commit measured and the files that differed from it (others may be editing the tree)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], check=False, cwd=ROOT, capture_output=True, text=True).stdout

    changed = [line[3:] for line in git("status", "--porcelain").splitlines() if line.strip()]
    return {"commit": git("rev-parse", "HEAD").strip(), "uncommitted_files": changed}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Build the workload and the index, run the three arms, judge and summarise."""
    from tests.fixtures.llama_server import smollm2_path, start_llama_server, stop_process

    data = require(args.data.resolve(), "public data folder")
    host, tree = machine(), git_state()
    isolated = network_isolation()
    items = workload(data, args.size, args.seed)
    started = time.perf_counter()
    arms: dict[str, dict[str, Any]] = {}
    rows_by_arm: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="frugal-mixed-") as tmp:
        stand_in, api_base = start_llama_server(smollm2_path())
        try:
            configs = {arm: write_config(Path(tmp) / f"{arm}.yaml", Path(tmp) / arm, Path(tmp) / "index", api_base)
                       for arm in ARMS}
            index = build_index(configs["frugal_auto"], data)
            for arm, model in ARMS.items():
                rows, wall = run_arm(model, items, configs[arm])
                score(rows, items, isolated=isolated)
                ledger_report = report(configs[arm])
                arms[arm] = {**summarise(rows, ledger_report, wall), "report": ledger_report}
                rows_by_arm[arm] = rows
        finally:
            stop_process(stand_in)
    return {
        "command": "python bench/mixed.py " + " ".join(sys.argv[1:]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**host, "load_avg_at_end": os.getloadavg()},
        "git": tree,
        "settings": {
            "size": len(items), "seed": args.seed, "proportions": PROPORTIONS, "category_of_source": CATEGORY,
            "prompts_per_source": dict(Counter(i.source for i in items)),
            "prompts_seen_in_classifier_training": dict(Counter(i.source for i in items if i.seen_in_training)),
            "max_tokens_per_category": MAX_TOKENS, "temperature": 0.0,
            "arms": ARMS, "large_model": LARGE_MODEL,
            "large_stand_in": "SmolLM2-135M-Instruct Q4_1 behind llama_cpp.server on 127.0.0.1 (not a large model)",
            "large_correctness": "assumed: every non-degraded answer whose final tier is large counts as correct",
            "transformations": "unjudged: left out of accuracy; their energy is counted",
            "index": index, "code_timeout_s": CODE_TIMEOUT_S, "code_network_isolated": isolated,
            "config": "config/frugal.yaml with data_dir, search index_dir, large.model/api_base set and "
                      "large.options.health_probe false (a hosted model is never probed; see write_config)",
        },
        "arms": arms,
        "comparison": compare(arms),
        "rows": {arm: [{k: v for k, v in r.items() if k != "answer"} for r in rows]
                 for arm, rows in rows_by_arm.items()},
        "answers": {arm: [r["answer"] for r in rows] for arm, rows in rows_by_arm.items()},
        "wall_s": round(time.perf_counter() - started, 1),
    }


def main() -> int:
    """Run the benchmark and write its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data",
                        help="folder of the public sets (default ../shared/data)")
    parser.add_argument("--size", type=int, default=120, help="prompts in the workload")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help=f"a smoke run: {QUICK_SIZE} prompts, JSON to /tmp")
    parser.add_argument("--out", type=Path, default=None, help="default bench/results/mixed.json")
    parser.add_argument("--answers", type=Path, default=None,
                        help="also write every arm's answer texts here (kept out of the results JSON)")
    args = parser.parse_args()
    if args.quick:
        args.size = QUICK_SIZE
    out = args.out or (Path(tempfile.gettempdir()) / "frugal-mixed-quick.json" if args.quick
                       else ROOT / "bench/results/mixed.json")
    result = run(args)
    answers = result.pop("answers")
    if args.answers:
        args.answers.write_text(json.dumps(answers, indent=1) + "\n", encoding="utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    brief = {arm: {k: v for k, v in block.items() if k not in ("report", "by_category")}
             for arm, block in result["arms"].items()}
    print(json.dumps({"arms": brief, "comparison": result["comparison"], "wall_s": result["wall_s"]}, indent=2))
    for arm, block in result["arms"].items():
        if block["failed"] or block["degraded_requests"]:
            print(f"WARNING: {arm}: {block['failed']} failed and {block['degraded_requests']} degraded requests; "
                  "the comparison is not like for like", file=sys.stderr)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
