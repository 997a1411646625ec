"""Start-up cost of quick commands: wall time and number of modules imported.

    python bench/startup.py [--runs 15] [--out FILE]

Prints (and writes) JSON: for each command, the median/min/max wall time of `--runs`
fresh processes and the modules imported (from `python -X importtime`).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {"kitt --help": ["--help"], "kitt plugins list": ["plugins", "list"],
            "kitt --version": ["--version"]}
HEAVY = ("docker", "lm_eval", "numpy", "aiohttp", "torch", "rich", "psycopg", "gguf")


def wall_times(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "kitt", *args], capture_output=True, check=True)
        times.append((time.perf_counter() - start) * 1000)
    return times


def imported_modules(args: list[str]) -> list[str]:
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "kitt", *args],
                          capture_output=True, text=True, check=True)
    return [line.split("|")[-1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:") and "imported package" not in line][1:]


def measure(runs: int) -> dict:
    # Warm the file cache before timing anything.
    subprocess.run([sys.executable, "-m", "kitt", "--help"], capture_output=True, check=True)
    python_only = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        python_only.append((time.perf_counter() - start) * 1000)
    results = {}
    for label, args in COMMANDS.items():
        times = wall_times(args, runs)
        modules = imported_modules(args)
        results[label] = {
            "median_ms": round(statistics.median(times), 1),
            "min_ms": round(min(times), 1),
            "max_ms": round(max(times), 1),
            "modules_imported": len(modules),
            "heavy_modules_imported": sorted({m.split(".")[0] for m in modules} & set(HEAVY)),
        }
    return {
        "benchmark": "startup",
        "runs": runs,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {platform.processor() or 'unknown cpu'}",
        "python_startup_median_ms": round(statistics.median(python_only), 1),
        "commands": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--out", type=Path)
    options = parser.parse_args()
    text = json.dumps(measure(options.runs), indent=2)
    print(text)
    if options.out:
        options.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
