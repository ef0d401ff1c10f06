"""Start-up budget of `engine validate` (≤ 0.3 s wall for one playbook, interpreter included).

Runs the real console command N times and, in the same run, a bare interpreter start
as the baseline, and prints medians and the ratio. Usage:

    python bench/bench_validate.py [--runs 15] [PLAYBOOK]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

BUDGET_SECONDS = 0.3


def wall(cmd: list[str], runs: int) -> list[float]:
    """Wall-clock seconds of each run of ``cmd`` (output discarded)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("playbook", nargs="?", default="playbooks/smb-saas.yaml")
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    engine = shutil.which("engine") or str(Path(sys.executable).parent / "engine")
    wall([engine, "validate", args.playbook], 2)  # warm the file cache
    baseline = wall([sys.executable, "-c", "pass"], args.runs)
    imports = wall([sys.executable, "-c", "import engine.cli"], args.runs)
    validate = wall([engine, "validate", args.playbook], args.runs)
    b, i, v = (statistics.median(x) for x in (baseline, imports, validate))
    print(f"python -c pass         median {b * 1000:7.1f} ms")
    print(f"import engine.cli      median {i * 1000:7.1f} ms")
    print(f"engine validate        median {v * 1000:7.1f} ms  ({v / b:.1f}x bare interpreter)")
    verdict = "within" if v <= BUDGET_SECONDS else "OVER"
    print(f"budget {BUDGET_SECONDS * 1000:.0f} ms: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
