"""Cold-process time of `wfgen generate` on an example, next to `python -c pass`.

Target: under 0.3 s on the project's machine; the google-cloud libraries must not
load in this command."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 9


def _median_seconds(argv: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    example = str(ROOT / "examples" / "train-gpu.yaml")
    base = _median_seconds([sys.executable, "-c", "pass"])
    gen = _median_seconds([sys.executable, "-m", "wfgen", "generate", example])
    val = _median_seconds([sys.executable, "-m", "wfgen", "validate", "-q", example])
    loaded = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "wfgen", "generate", example],
        capture_output=True, text=True, cwd=ROOT).stderr
    google = "google.cloud" in loaded
    print(f"python -c pass          median of {RUNS}: {base * 1000:7.1f} ms")
    print(f"wfgen generate (cold)   median of {RUNS}: {gen * 1000:7.1f} ms   (target < 300 ms)")
    print(f"wfgen validate (cold)   median of {RUNS}: {val * 1000:7.1f} ms")
    print(f"google-cloud imported by generate: {'YES (regression)' if google else 'no'}")


if __name__ == "__main__":
    main()
