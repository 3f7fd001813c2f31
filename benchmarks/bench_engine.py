"""Engine speed: a 20,000-iteration `for` loop summing into a variable.

Runs the same workflow file on wfgen's engine (in this process) and on the PyPI
package workflows-emulator (the only Python peer), which lives in its own
virtual environment, benchmarks/.venv-peer, created here on first use so that
it never becomes a dependency of wfgen. Both sides are timed the same way: load
the file, run it, check the sum; best of several runs. Prints both times and
the ratio (goal: wfgen at least 20 times faster).

Then the engine's own speed in simple steps per second: `assign` + `next`
loops (a counter, a jump test), in this process, best of runs by wall time and
by CPU time (on a shared machine the CPU figure is the steadier one). Goal:
at least 2 million steps per second."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ITERATIONS = 20_000
EXPECTED = ITERATIONS * (ITERATIONS + 1) // 2
HERE = Path(__file__).resolve().parent
PEER_VENV = HERE / ".venv-peer"
PEER_PACKAGE = "workflows-emulator"

WORKFLOW = f"""\
main:
  steps:
    - init:
        assign:
          - total: 0
    - loop:
        for:
          value: v
          range: [1, {ITERATIONS}]
          steps:
            - add:
                assign:
                  - total: ${{total + v}}
    - done:
        return: ${{total}}
"""

# Runs inside the peer's venv: time load + execute, best of `runs`, print JSON.
PEER_DRIVER = """
import json, sys, time, logging
logging.disable(logging.CRITICAL)
from workflows_emulator.main import load_workflow, execute_workflow
path, runs = sys.argv[1], int(sys.argv[2])
best, result = None, None
for _ in range(runs):
    t = time.perf_counter()
    config = load_workflow(path)
    result = execute_workflow(config, {})
    dt = time.perf_counter() - t
    best = dt if best is None else min(best, dt)
print(json.dumps({"seconds": best, "result": result}))
"""


def ensure_peer() -> Path | None:
    """The peer's interpreter, installing it into benchmarks/.venv-peer if needed."""
    py = PEER_VENV / "bin" / "python"
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        probe = subprocess.run([str(py), "-c", "import workflows_emulator"],
                               capture_output=True)
        if probe.returncode != 0:
            subprocess.run([str(py), "-m", "pip", "install", "--quiet", PEER_PACKAGE],
                           check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"bench_engine: cannot install {PEER_PACKAGE}: {exc}", file=sys.stderr)
        return None
    return py


def time_wfgen(path: Path, runs: int = 5) -> tuple[float, float]:
    """Best (load+run, run only) seconds for wfgen's engine."""
    from wfgen.engine import execute, load_workflow

    text = path.read_text()
    best_total = best_run = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        wf = load_workflow(text, str(path))
        t1 = time.perf_counter()
        res = execute(wf)
        t2 = time.perf_counter()
        if res.state != "SUCCEEDED" or res.result != EXPECTED:
            raise SystemExit(f"bench_engine: wrong result from wfgen: {res.result} {res.error}")
        best_total = min(best_total, t2 - t0)
        best_run = min(best_run, t2 - t1)
    return best_total, best_run


STEPS_LOOP = 40_000  # 2 steps an iteration: 80,002 steps, under the 100,000 quota
STEPS_WORKFLOW = f"""\
main:
  steps:
    - init:
        assign:
          - i: 0
    - step:
        assign:
          - i: ${{i + 1}}
        next: test
    - test:
        switch:
          - condition: ${{i < {STEPS_LOOP}}}
            next: step
    - done:
        return: ${{i}}
"""


def steps_per_second(runs: int = 15) -> tuple[float, float, int]:
    """(steps/s by best wall time, steps/s by best CPU time, steps) of the
    assign + next loop, run (not parsed) in this process."""
    from wfgen.engine import execute, load_workflow

    wf = load_workflow(STEPS_WORKFLOW, "steps.yaml")
    best_wall = best_cpu = float("inf")
    steps = 0
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        res = execute(wf)
        best_wall = min(best_wall, time.perf_counter() - w0)
        best_cpu = min(best_cpu, time.process_time() - c0)
        if res.state != "SUCCEEDED" or res.result != STEPS_LOOP:
            raise SystemExit(f"bench_engine: wrong result from the steps loop: {res.error}")
        steps = res.steps_internal
    return steps / best_wall, steps / best_cpu, steps


def time_peer(py: Path, path: Path, runs: int = 3) -> float | None:
    proc = subprocess.run([str(py), "-c", PEER_DRIVER, str(path), str(runs)],
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        print(f"bench_engine: {PEER_PACKAGE} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    if data["result"] != EXPECTED:
        print(f"bench_engine: {PEER_PACKAGE} returned {data['result']!r}", file=sys.stderr)
        return None
    return float(data["seconds"])


def main() -> dict[str, float | None]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sum_loop.workflows.yaml"
        path.write_text(WORKFLOW)
        ours_total, ours_run = time_wfgen(path)
        py = ensure_peer()
        peer = time_peer(py, path) if py is not None else None
    print(f"engine: {ITERATIONS:,}-iteration for loop summing into a variable "
          "(load + run, best of runs)")
    print(f"  wfgen engine        {ours_total * 1000:9.1f} ms"
          f"   (run only {ours_run * 1000:.1f} ms)")
    if peer is None:
        print(f"  {PEER_PACKAGE:<19} unavailable")
        ratio = None
    else:
        ratio = peer / ours_total
        print(f"  {PEER_PACKAGE:<19} {peer * 1000:9.1f} ms")
        print(f"  ratio               {ratio:9.1f}x faster (goal: >= 20x)")
    by_wall, by_cpu, steps = steps_per_second()
    print(f"engine: assign + next loop, {steps:,} steps, in this process (best of runs)")
    print(f"  {by_wall / 1e6:5.2f} million steps/s by wall time, {by_cpu / 1e6:5.2f} million by "
          "CPU time (goal: >= 2 million)")
    return {"wfgen_seconds": ours_total, "peer_seconds": peer, "ratio": ratio,
            "steps_per_s_wall": by_wall, "steps_per_s_cpu": by_cpu}


if __name__ == "__main__":
    main()
