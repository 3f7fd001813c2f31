"""Whole-process times of the commands people wait for, each next to `python -c
pass` and, where it has one, the same thing done by the PyPI peer
workflows-emulator (benchmarks/.venv-peer, as bench_engine installs it).

Rounds alternate the commands (one run of each per round) so that a machine
shared with other work slows all of them alike; each figure is the median of
the rounds, wall time and the child's CPU time (user + system: less disturbed
by other processes). wfgen's bytecode is compiled first, as an installed
package has it (PYTHONDONTWRITEBYTECODE would otherwise recompile every run).

Goals (issue 35): --help <= 0.05 s; run --local of a one-step workflow <= 0.08 s;
generate of the example job <= 0.08 s; the 20,000-iteration loop, whole
process, >= 20x faster than the peer."""

from __future__ import annotations

import compileall
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ROUNDS = 9
PEER_ROUNDS = 3  # the peer's loop takes seconds a run

ONE_STEP = "main:\n  steps:\n    - done:\n        return: 1\n"
LOOP = """\
main:
  steps:
    - init:
        assign:
          - total: 0
    - loop:
        for:
          value: v
          range: [1, 20000]
          steps:
            - add:
                assign:
                  - total: ${total + v}
    - done:
        return: ${total}
"""


def _timed(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, child CPU) seconds of one run; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   cwd=cwd)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _rounds(commands: dict[str, list[str]], rounds: int, cwd: Path) -> dict[str, list[float]]:
    """Medians [wall, cpu] of each command over alternating rounds."""
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, argv in commands.items():
            runs[name].append(_timed(argv, cwd))
    return {name: [statistics.median(w for w, _ in r), statistics.median(c for _, c in r)]
            for name, r in runs.items()}


def _peer() -> Path | None:
    sys.path.insert(0, str(HERE))
    from bench_engine import ensure_peer

    return ensure_peer()


def main() -> dict[str, object]:
    compileall.compile_dir(str(ROOT / "wfgen"), quiet=1)
    py = sys.executable
    peer_py = _peer()
    with tempfile.TemporaryDirectory(prefix="wfgen-bench-startup-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "one.yaml").write_text(ONE_STEP)
        (tmp / "loop.yaml").write_text(LOOP)
        (tmp / "none.env").write_text("")
        example = str(ROOT / "examples" / "hello.yaml")
        ours = {
            "pass": [py, "-c", "pass"],
            "help": [py, "-m", "wfgen", "--help"],
            "one": [py, "-m", "wfgen", "run", "--local", str(tmp / "one.yaml")],
            "generate": [py, "-m", "wfgen", "generate", example],
        }
        peer_cmd: dict[str, list[str]] = {}
        if peer_py is not None:
            tool = str(peer_py.parent / "workflows-emulator")
            base = [tool, "--env-file", str(tmp / "none.env"), "--loglevel", "WARNING"]
            peer_cmd = {"peer pass": [str(peer_py), "-c", "pass"], "peer help": [tool, "--help"],
                        "peer one": [*base, "--source", str(tmp / "one.yaml"), "run"]}
        env_free = {**ours, **peer_cmd}
        figures = _rounds(env_free, ROUNDS, tmp)
        loops = {"loop": [py, "-m", "wfgen", "run", "--local", str(tmp / "loop.yaml")]}
        if peer_py is not None:
            loops["peer loop"] = [*base, "--source", str(tmp / "loop.yaml"), "run"]
        figures.update(_rounds(loops, PEER_ROUNDS, tmp))
    _print(figures)
    return figures


def _print(f: dict[str, list[float]]) -> None:
    base_wall, base_cpu = f["pass"]
    print(f"whole processes, median of {ROUNDS} alternating rounds ({PEER_ROUNDS} for the "
          f"loops); wall and CPU; python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} at the end")
    print(f"  {'':42} {'wall':>9} {'x pass':>6} {'CPU':>8} {'x pass':>6}   "
          f"{'workflows-emulator wall, CPU':>28} {'ratio':>5}   goal")
    rows = [("python -c pass", "pass", "peer pass", ""),
            ("wfgen --help", "help", "peer help", "<= 50 ms"),
            ("wfgen run --local, one-step workflow", "one", "peer one", "<= 80 ms"),
            ("wfgen generate examples/hello.yaml", "generate", None, "<= 80 ms"),
            ("wfgen run --local, 20,000-iteration loop", "loop", "peer loop",
             ">= 20x the peer")]
    for label, key, peer_key, goal in rows:
        wall, cpu = f[key]
        peer = f.get(peer_key) if peer_key else None
        if peer:  # the ratio of CPU times: wall times on a shared machine wander
            peer_text = f"{peer[0] * 1000:9.1f} ms, {peer[1] * 1000:8.1f} ms"
            ratio = f"{peer[1] / cpu:4.1f}x" if key != "pass" else ""
        else:
            peer_text, ratio = "-", ""
        print(f"  {label:42} {wall * 1000:6.1f} ms {wall / base_wall:5.1f}x "
              f"{cpu * 1000:5.1f} ms {cpu / base_cpu:5.1f}x   {peer_text:>28} {ratio:>5}   {goal}")

if __name__ == "__main__":
    main()
