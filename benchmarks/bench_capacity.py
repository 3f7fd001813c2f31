"""GPU capacity on the local runtime: what a zone failover adds. The same Spot GPU
job with four zones (three in us-central1, then us-east1-c), run with none, one
and every us-central1 zone out of capacity (the stockout emulation of
wfgen.local.capacity; with the whole region out no error names a zone to jump
to, so the plan is walked in order: three failovers): billed steps and the
seconds until the VM that runs the job is created (median of 3 runs after a
warm-up), and the difference per failover.

Goal: the success path bills 11 steps as a plain job does; each failover a
bounded few (README "Getting GPUs" says 7) and well under a second here."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZONES = ["us-central1-a", "us-central1-b", "us-central1-c", "us-east1-c"]
REGION_OUT = ["us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"]


def _spec(tmp: Path) -> Path:
    path = tmp / "gpu.yaml"
    path.write_text(json.dumps({
        "name": "bench-gpu", "container": {"image": "alpine", "script": "true"},
        "machine": {"type": "n1-standard-8", "spot": True,
                    "accelerator": {"type": "nvidia-tesla-t4"}},
        "zone": ZONES, "regions": ["us-east1"], "heartbeat": "10m", "timeout": "1h",
        "retries": 0}))
    return path


def _run(spec_path: Path, out: list[str]) -> tuple[int, float, str]:
    """(billed steps, seconds to the VM, zone) of one execution with `out` stocked out."""
    from wfgen.backends.local import LocalBackend
    from wfgen.job.render import render_workflow
    from wfgen.job.spec import load_spec
    from wfgen.local.faults import Faults

    spec = load_spec(spec_path)
    faults = Faults.parse([f"stockout={zone}" for zone in out])
    created: list[float] = []

    def notify(message: str) -> None:
        if " created (attempt" in message:
            created.append(time.perf_counter())

    backend = LocalBackend(use_container_engine=False, faults=faults, notify=notify)
    name = "projects/p/locations/us-central1/workflows/bench/executions/e1"
    started = time.perf_counter()
    try:
        backend.start_source(name, render_workflow(spec))
        record = backend.wait(name)
    finally:
        backend.shutdown()
    wall = created[0] - started  # until the VM that runs the job exists
    assert record.state == "SUCCEEDED", record.error
    return sum(record.steps), wall, json.loads(json.dumps(record.result))["zone"]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("WFGEN_BACKOFF_MS", "200")
    with tempfile.TemporaryDirectory() as tmpdir:
        spec = _spec(Path(tmpdir))
        _run(spec, [])  # warm-up: imports, the template cache

        def median(out: list[str]) -> tuple[int, float, str]:
            runs = sorted((_run(spec, out) for _ in range(3)), key=lambda r: r[1])
            return runs[1]

        base_steps, base_wall, _ = median([])
        print(f"no stockout:          {base_steps:3d} billed steps, VM after {base_wall:5.3f} s")
        for label, out, failovers in (("us-central1-a out:", ["us-central1-a"], 1),
                                      ("all of us-central1 out:", REGION_OUT, 3)):
            steps, wall, zone = median(out)
            print(f"{label:22s}{steps:3d} billed steps, VM after {wall:5.3f} s  (ran in {zone}; "
                  f"per failover: {(steps - base_steps) / failovers:.1f} steps, "
                  f"{(wall - base_wall) * 1000 / failovers:+.0f} ms)")

if __name__ == "__main__":
    main()
