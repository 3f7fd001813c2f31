"""Split fan-out on the local runtime: for N trivial tasks (`true`) at
parallelism 100 (split by itself over child executions), the wall time, the
peak of VMs alive at once, the billed steps per task (parent and children
together, as the engine counted them), the CPU per task (the VMs' processes
included) and the resident memory of the process running them (the runner
serve uses: the local backend, in process).

Usage: python benchmarks/bench_split.py [N ...]   (default: 1000 10000)
Not a timed test: each task is a host process running the real startup script,
so it takes minutes on a small machine."""

from __future__ import annotations

import json
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOT_NAME = "projects/p/locations/us-central1/workflows/"


def run(count: int, parallelism: int = 100) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from wfgen.backends.local import LocalBackend
    from wfgen.job.render_split import render_split
    from wfgen.job.spec import load_spec

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(json.dumps({
            "name": "bench", "container": {"image": "alpine", "script": "true"},
            "timeout": "6h", "heartbeat": "10m", "retries": 0,
            "tasks": {"count": count, "parallelism": parallelism}}))
        split = render_split(load_spec(path))
        backend = LocalBackend(project="p", use_container_engine=False, on_host=True)
        backend.deploy(ROOT_NAME + "bench-shard", split.shard)
        backend.deploy(ROOT_NAME + "bench", split.parent)
        peak, stop = [0], threading.Event()

        def watch() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], len(backend.list_vms()))
                stop.wait(0.2)

        threading.Thread(target=watch, daemon=True).start()
        started = time.monotonic()
        parent = backend.wait(backend.start(ROOT_NAME + "bench").name, 24 * 3600)
        wall = time.monotonic() - started
        stop.set()
        children = backend.list(ROOT_NAME + "bench-shard", limit=100_000)
        steps = sum(sum(c.steps) for c in children) + sum(parent.steps)
        left = backend.shutdown()
        assert parent.state == "SUCCEEDED", parent.error
        assert parent.result["counts"] == {"succeeded": count, "failed": 0}
        assert not left
    return {"tasks": count, "wall_s": round(wall, 1), "peak_vms": peak[0],
            "children": len(children), "steps_per_task": round(steps / count, 1),
            "cpu_s_per_task": round(_cpu() / count, 3),
            "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def _cpu() -> float:
    """CPU seconds of this process and the VMs' processes it ran (children)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> int:
    for count in [int(a) for a in sys.argv[1:]] or [1000, 10_000]:
        print(json.dumps(run(count)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
