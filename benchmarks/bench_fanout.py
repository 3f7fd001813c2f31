"""Fan-out on the local runtime: the wall time of 20 trivial tasks at parallelism 5
in one execution, next to 20 single-job executions run one after another; and
the billed steps per task (from the difference between a 1-task and a 6-task
run), next to the per-task figure wfgen's step limit assumes
(wfgen.job.budget.STEPS_PER_TASK).

Goal: the fan-out at parallelism 5 at least 3x faster than the sequential runs;
the measured steps per task at most the assumed figure."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TASKS = 20


def _spec(tmp: Path, tasks: dict[str, Any] | None, name: str = "bench") -> Path:
    path = tmp / f"{name}.yaml"
    spec: dict[str, Any] = {"name": name, "container": {"image": "alpine", "script": "true"},
                            "heartbeat": "10m", "timeout": "1h", "retries": 0}
    if tasks:
        spec["tasks"] = tasks
    path.write_text(json.dumps(spec))
    return path


def _run(spec_path: Path) -> tuple[int, float]:
    """(billed steps, wall seconds) of one execution of the job, VMs as host processes."""
    from wfgen.backends.local import LocalBackend
    from wfgen.job.render import render_workflow
    from wfgen.job.spec import load_spec

    spec = load_spec(spec_path)
    backend = LocalBackend(use_container_engine=False, on_host=True)
    name = "projects/p/locations/us-central1/workflows/bench/executions/e1"
    started = time.perf_counter()
    try:
        backend.start_source(name, render_workflow(spec))
        record = backend.wait(name)
    finally:
        backend.shutdown()
    wall = time.perf_counter() - started
    assert record.state == "SUCCEEDED", record.error
    return sum(record.steps), wall


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from wfgen.job.budget import STEPS_PER_TASK

    os.environ.setdefault("WFGEN_BACKOFF_MS", "200")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        _steps, fanout = _run(_spec(tmp, {"count": TASKS, "parallelism": 5}))
        single = _spec(tmp, None, "single")
        sequential = sum(_run(single)[1] for _ in range(TASKS))
        print(f"{TASKS} trivial tasks, parallelism 5, one execution: {fanout:6.2f} s")
        print(f"{TASKS} single-job executions one after another:    {sequential:6.2f} s   "
              f"({sequential / fanout:.1f}x; goal >= 3x)")

        one, _ = _run(_spec(tmp, {"count": 1}, "one"))
        six, _ = _run(_spec(tmp, {"count": 6, "parallelism": 6}, "six"))
        per_task = (six - one) / 5
        print(f"billed steps per task: {per_task:.1f} (1 task: {one} in total, 6 tasks: {six})"
              f"   (the step limit assumes {STEPS_PER_TASK}; goal: at most that)")


if __name__ == "__main__":
    main()
