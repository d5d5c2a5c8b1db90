#!/usr/bin/env python3
"""How fast the command-line entry points answer ``--help`` and ``--version``.

Target: under 1 s each. Prints the median (and max) wall time over N runs of each command,
next to a bare ``python -c pass`` run in the same process as the baseline, so the ratio
says what the project adds on top of starting Python on this (shared, noisy) machine.

    .venv/bin/python bench/cli_startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def _time(cmd: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        res = subprocess.run(cmd, capture_output=True, timeout=60)
        times.append(time.perf_counter() - t0)
        if res.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {res.returncode}: {res.stderr.decode()[-300:]}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7, help="runs per command (default 7)")
    args = parser.parse_args()
    baseline = statistics.median(_time([sys.executable, "-c", "pass"], args.runs))
    print(f"{'command':<28} {'median s':>9} {'max s':>7} {'vs python -c pass':>18}")
    print(f"{'python -c pass':<28} {baseline:>9.3f} {'':>7} {1.0:>17.1f}x")
    worst = 0.0
    for script in ("assistant", "ser-model"):
        for flag in ("--help", "--version"):
            times = _time([str(BIN / script), flag], args.runs)
            med = statistics.median(times)
            worst = max(worst, med)
            print(f"{script + ' ' + flag:<28} {med:>9.3f} {max(times):>7.3f} {med / baseline:>17.1f}x")
    print(f"\nslowest median: {worst:.3f} s (target < 1.0 s): {'OK' if worst < 1.0 else 'OVER'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
