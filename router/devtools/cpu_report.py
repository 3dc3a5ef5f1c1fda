"""One line on the CPU a test run is on and what the precision/runtime rule picks there (``make test`` prints it)."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_report() -> str:
    """The CPU model, its SIMD/bf16/AMX flags, and the runtime MiniLM's 'auto' settings resolve to."""
    from classifiers.encoders import BF16_FLAGS, cpu_has_bf16, resolve_precision, resolve_runtime

    try:
        lines = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    model = next((line.partition(":")[2].strip() for line in lines if line.startswith("model name")), "unknown")
    flags = set(next((line.partition(":")[2].split() for line in lines
                      if line.startswith(("flags", "Features"))), []))
    shown = sorted(f for f in flags if f.startswith(("avx2", "avx512f", "amx")) or f in BF16_FLAGS)
    precision = resolve_precision("auto")
    return (f"cpu: {model} ({platform.machine()}), flags: {' '.join(shown) or 'no avx2/avx-512/amx'}; "
            f"native bf16: {'yes' if cpu_has_bf16() else 'no'}; minilm 'auto' runs {precision} in "
            f"{resolve_runtime('auto', precision)}")


if __name__ == "__main__":
    print(cpu_report())
