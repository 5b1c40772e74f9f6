"""How long `ohlora --help` takes (a fresh interpreter each run): JSON with every run and the median.

    python bench/cli_help.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    runs = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "ohlora.cli", "--help"], cwd=REPO, check=True, capture_output=True)
        runs.append(round(time.perf_counter() - t0, 3))
    print(json.dumps({"bench": "cli_help", "runs_s": runs, "median_s": statistics.median(runs)}))


if __name__ == "__main__":
    main()
