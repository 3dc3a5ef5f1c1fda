"""``frugal calibrate-energy``: measure the J per call and per token of this host's local work."""

from __future__ import annotations

import platform
from typing import Annotated

import typer

from router.commands.common import ConfigOpt, DataDirOpt, echo_json, fail, settings_from
from router.core.errors import FrugalError


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def calibrate_energy(
    config: ConfigOpt = None, data_dir: DataDirOpt = None,
    repeats: Annotated[int, typer.Option(min=1, help="runs of each small-model shape; the least CPU time is kept")] = 3,
) -> None:
    """Measure J per call / prompt token / output token of the small model, search and classifier; prints JSON.

    Run it on a quiet host; paste the printed ``energy.work`` block into the config. Nothing is changed.
    """
    from router.commands.serving import prepare_demo_index
    from router.energy import work_calibration as wc
    from router.services import build_backends, prepare_environment

    try:
        settings = settings_from(config, data_dir)
        prepare_environment()
        prepare_demo_index(settings)
        watts = settings.energy.watts_per_thread
        cpu = f"{_cpu_name()}, {__import__('os').cpu_count()} CPUs"
        work: dict[str, dict[str, object]] = {}
        fits: dict[str, object] = {}
        problems: dict[str, str] = {}
        backends = build_backends(settings, problems)
        small = backends.get("small")
        if small is not None and small.work_name():
            samples = wc.run(wc.measure_model(small, repeats=repeats))
            per_call, per_prompt, per_output, residual = wc.fit_per_unit(samples)
            work[str(small.work_name())] = {
                "per_call_j": per_call * watts, "per_prompt_token_j": per_prompt * watts,
                "per_output_token_j": per_output * watts,
                "measured": wc.provenance(cpu, f"least CPU of {repeats} runs x {len(samples)} shapes, "
                                               f"NNLS fit, x {watts:g} W/thread"),
            }
            fits[str(small.work_name())] = {"median_relative_residual": residual,
                                            "samples": [s.__dict__ for s in samples]}
        search = backends.get("search")
        if search is not None and search.work_name():
            try:
                seconds = wc.run(wc.measure_search(search))
            except FrugalError as exc:
                problems["search"] = str(exc)
            else:
                work[str(search.work_name())] = {
                    "per_call_j": seconds * watts, "measured": wc.provenance(cpu, f"median CPU per lookup x {watts:g} W/thread")}
        from classifiers import load_classifier

        classifier = load_classifier(settings.classifier)
        seconds = wc.measure_calls(lambda text: classifier.predict([wc.Message("user", text)]))
        work[f"classifier:{classifier.variant}"] = {
            "per_call_j": seconds * watts, "measured": wc.provenance(cpu, f"median CPU per decision x {watts:g} W/thread")}
    except (FrugalError, ValueError) as exc:
        fail(exc)
    echo_json({"energy": {"work": work}, "fits": fits, "skipped": problems,
               "note": "joules at the machine before PUE; paste energy.work into the config (docs/ENERGY.md)"})
