"""The local runtime: overhead of `wfgen run --local`, the time from the job's
exit to its VM being deleted (with a 30 s `toolbox` stand-in: nothing may wait
for it), and the billed steps of the success path and of each heartbeat.

Goals: exit -> deleted under 1 s; success path at most 15 steps; at most 3 steps
per heartbeat."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3


class _Quiet:
    """A Console that keeps timestamps of lifecycle lines instead of printing."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str]] = []

    def notify(self, message: str) -> None:
        self.events.append((time.time(), message))

    def output(self, vm: str, line: str) -> None:
        pass


def _spec(tmp: Path, script: str, heartbeat: str = "10m") -> Path:
    path = tmp / "job.yaml"
    path.write_text(json.dumps({"name": "bench", "container": {"image": "alpine",
                                "script": script}, "heartbeat": heartbeat, "timeout": "1h",
                                "retries": 0}))
    return path


def _run(spec_path: Path) -> tuple[tuple[int, int], _Quiet]:
    from wfgen.backends.local import LocalBackend
    from wfgen.job.render import render_workflow
    from wfgen.job.spec import load_spec

    spec = load_spec(spec_path)
    console = _Quiet()
    backend = LocalBackend(notify=console.notify, output=console.output, on_host=True)
    name = "projects/p/locations/us-central1/workflows/bench/executions/e1"
    try:
        backend.start_source(name, render_workflow(spec))
        record = backend.wait(name)
    finally:
        backend.shutdown()
    assert record.state == "SUCCEEDED", record.error
    return record.steps, console


def _count_heartbeats():
    """Count awaits that time out (each is one heartbeat) from now on."""
    from wfgen.engine.errors import WorkflowError
    from wfgen.local.callbacks import CallbackServer

    count = [0]
    original = CallbackServer.await_request

    def counting(self, callback, timeout, cancel=None):
        try:
            return original(self, callback, timeout, cancel)
        except WorkflowError as exc:
            if "TimeoutError" in exc.tags:
                count[0] += 1
            raise

    CallbackServer.await_request = counting  # type: ignore[method-assign]
    return lambda: count[0]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("WFGEN_BACKOFF_MS", "200")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        # 1. whole command, cold process, next to running the job's command directly
        spec = _spec(tmp, "true")
        walls = []
        for _ in range(RUNS):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "wfgen", "run", "--local", "--on-host",
                            str(spec)],
                           check=True, capture_output=True, cwd=ROOT)
            walls.append(time.perf_counter() - started)
        direct = []
        for _ in range(RUNS):
            started = time.perf_counter()
            subprocess.run(["sh", "-c", "true"], check=True)
            direct.append(time.perf_counter() - started)
        print(f"run --local, a job that does nothing  median of {RUNS}: "
              f"{statistics.median(walls):6.2f} s")
        print(f"the same command run directly          median of {RUNS}: "
              f"{statistics.median(direct) * 1000:6.1f} ms")

        # 2. job exit -> VM deleted, with toolbox taking 30 s in the background
        os.environ["WFGEN_STANDIN_SLOW"] = "toolbox=30"
        marker = tmp / "exited"
        spec = _spec(tmp, f"date +%s.%N > {marker}")
        gaps = []
        for _ in range(RUNS):
            _steps, console = _run(spec)
            exited = float(marker.read_text())
            deleted = next(t for t, m in console.events if m.endswith("deleted"))
            gaps.append(deleted - exited)
        del os.environ["WFGEN_STANDIN_SLOW"]
        print(f"job exit -> VM deleted (30 s toolbox)   median of {RUNS}: "
              f"{statistics.median(gaps):6.2f} s   (goal < 1 s)")

        # 3. billed steps: success path, and per heartbeat
        (internal, external), _ = _run(_spec(tmp, "true", heartbeat="10m"))
        base = internal + external
        beats = 4
        beats_seen = _count_heartbeats()
        (i1, e1), _ = _run(_spec(tmp, "sleep 0.2", heartbeat="1s"))
        n1 = beats_seen()
        (i2, e2), _ = _run(_spec(tmp, f"sleep {beats + 0.2}", heartbeat="1s"))
        n2 = beats_seen() - n1
        per_beat = (i2 + e2 - i1 - e1) / max(1, n2 - n1)
        print(f"billed steps, success path: {base} ({internal} internal, {external} external)"
              "   (goal <= 15)")
        print(f"billed steps per heartbeat: {per_beat:.1f}   (goal <= 3)")


if __name__ == "__main__":
    main()
