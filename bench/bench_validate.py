"""Start-up budget of `engine validate` (≤ 0.3 s wall for one playbook, interpreter included).

Runs the real console command N times and, in the same run, a bare interpreter start
as the baseline, and prints medians and the ratio. Usage:

    python bench/bench_validate.py [--runs 15] [--install] [PLAYBOOK]

``--install`` also times a plain ``pip install .`` into a fresh virtual environment —
how pre-commit installs a hook — beside the development (editable, dev-extras)
environment: the editable finder and the entry points of every dev package
(scanned by pydantic's plugin loader) cost start-up time a user never pays.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_evaluate import compile_bytecode  # noqa: E402

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
    parser.add_argument("--install", action="store_true",
                        help="also time a non-editable install in a fresh venv (takes ~1 min)")
    args = parser.parse_args()
    engine = shutil.which("engine") or str(Path(sys.executable).parent / "engine")
    # a stale .pyc of a changed module read 350 ms where 270 ms was true (compile_bytecode)
    compile_bytecode(HERE.parent)
    wall([engine, "validate", args.playbook], 2)  # warm the file cache
    baseline = wall([sys.executable, "-c", "pass"], args.runs)
    imports = wall([sys.executable, "-c", "import engine.cli"], args.runs)
    validate = wall([engine, "validate", args.playbook], args.runs)
    b, i, v = (statistics.median(x) for x in (baseline, imports, validate))
    print(f"python -c pass         median {b * 1000:7.1f} ms")
    print(f"import engine.cli      median {i * 1000:7.1f} ms")
    print(f"engine validate        median {v * 1000:7.1f} ms  ({v / b:.1f}x bare interpreter)")
    verdict = "within" if v <= BUDGET_SECONDS else "OVER"
    print(f"budget {BUDGET_SECONDS * 1000:.0f} ms (this environment): {verdict}")
    if args.install:
        with tempfile.TemporaryDirectory() as tmp:
            venv = Path(tmp) / "venv"
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(Path(__file__).parents[1])],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            installed = wall([str(venv / "bin" / "engine"), "validate", args.playbook], args.runs)
            fresh = wall([str(venv / "bin" / "python"), "-c", "pass"], args.runs)
        f, n = statistics.median(fresh), statistics.median(installed)
        print(f"fresh install: python  median {f * 1000:7.1f} ms")
        print(f"fresh install: validate median {n * 1000:7.1f} ms  ({n / f:.1f}x bare interpreter)")
        verdict = "within" if n <= BUDGET_SECONDS else "OVER"
        print(f"budget {BUDGET_SECONDS * 1000:.0f} ms (fresh install): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
