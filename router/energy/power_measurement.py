"""Measure this host's watts per busy thread with codecarbon (optional ``power`` extra).

The default 4 W (2-10 W) per busy thread is a stated assumption; on a host where codecarbon can read
real counters (Intel RAPL, AMD energy, NVML) this replaces it with a measurement: energy while one
thread spins minus energy while idle, over the same time. Without such counters codecarbon falls back
to a TDP-based guess, which is no better than the default: the result says which mode it used.
"""

from __future__ import annotations

import importlib.util
import logging
import time
from pathlib import Path
from typing import Any

from router.core.errors import FrugalError

log = logging.getLogger(__name__)
RAPL = Path("/sys/class/powercap")
INSTALL_HINT = "codecarbon is not installed; install the optional extra: pip install 'frugal-router[power]'"


def _tracker(country_iso_code: str) -> Any:
    try:
        from codecarbon import OfflineEmissionsTracker
    except ImportError as exc:
        raise FrugalError(INSTALL_HINT) from exc
    return OfflineEmissionsTracker(
        country_iso_code=country_iso_code, measure_power_secs=1, tracking_mode="machine", save_to_file=False,
        log_level="error",
    )


def _energy_kwh(seconds: float, busy: bool, country_iso_code: str) -> tuple[float, str]:
    tracker = _tracker(country_iso_code)
    tracker.start()
    deadline = time.perf_counter() + seconds
    if busy:
        x = 0
        while time.perf_counter() < deadline:
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
    else:
        time.sleep(seconds)
    tracker.stop()
    data = tracker.final_emissions_data
    energy = getattr(data, "cpu_energy", None) or getattr(data, "energy_consumed", None) or 0.0
    cpu = str(getattr(tracker, "_conf", {}).get("cpu_model", "unknown cpu"))
    return float(energy), cpu


def counter_mode() -> str:
    """Whether codecarbon can read real CPU energy counters here (``rapl``) or falls back to a TDP guess."""
    for path in sorted(RAPL.glob("intel-rapl:*/energy_uj")):
        try:
            path.read_text()
        except OSError:
            continue
        return "rapl"
    return "tdp-estimate"


def calibrate_power(seconds: float = 10.0, *, country_iso_code: str = "USA") -> dict[str, Any]:
    """Watts drawn by one busy thread on this host: (busy energy - idle energy) / time, via codecarbon."""
    if importlib.util.find_spec("codecarbon") is None:  # fail before measuring anything
        raise FrugalError(INSTALL_HINT)
    if seconds < 2:
        raise FrugalError(f"calibration needs at least 2 seconds per phase, got {seconds}")
    idle_kwh, cpu = _energy_kwh(seconds, False, country_iso_code)
    busy_kwh, _ = _energy_kwh(seconds, True, country_iso_code)
    watts = (busy_kwh - idle_kwh) * 3.6e6 / seconds
    log.info("calibration: idle %.3g kWh, busy %.3g kWh over %.1f s each -> %.2f W per thread", idle_kwh, busy_kwh,
             seconds, watts)
    return {
        "watts_per_thread": watts,
        "idle_watts": idle_kwh * 3.6e6 / seconds,
        "busy_watts": busy_kwh * 3.6e6 / seconds,
        "seconds_per_phase": seconds,
        "cpu": cpu,
        "mode": counter_mode(),
        "note": "set energy.watts_per_thread to this value only if codecarbon read real counters (RAPL/NVML), "
        "not its TDP fallback; keep watts_min/watts_max around it",
    }
