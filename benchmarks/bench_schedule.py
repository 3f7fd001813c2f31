"""Schedules and triggers against a local `wfgen serve --test-clock`: the
cold-process time of `wfgen schedule` (create, then update) and `wfgen
trigger`; how long a Pub/Sub publish of 20 messages takes to answer (the
20 executions are created before it does) and until all 20 jobs ended; how
soon serve's scheduler fires a due job once its clock reaches the run time."""

from __future__ import annotations

import base64
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "local-project"
WORKFLOW = f"projects/{PROJECT}/locations/us-central1/workflows/bench-sched"
RUNS = 3


def main() -> None:
    from tests.cloud.serve_cli import Serve, job

    with tempfile.TemporaryDirectory() as tmp:
        serve = Serve(Path(tmp), "--test-clock").start()
        try:
            spec = job(Path(tmp) / "job.yaml", "bench-sched", "echo hi")
            figures = _commands(serve, spec)
            figures.update(_events(serve, spec))
        finally:
            serve.stop()
    print(json.dumps(figures, indent=2))


def _wfgen(serve: Any, *argv: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "wfgen", *argv], capture_output=True,
                          text=True, env=serve.env(), cwd=ROOT, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"wfgen {' '.join(argv)} failed: {done.stderr}")
    return time.perf_counter() - started


def _commands(serve: Any, spec: str) -> dict[str, float]:
    create = _wfgen(serve, "schedule", spec, "--cron", "0 3 * * *")
    update = [_wfgen(serve, "schedule", spec, "--cron", f"0 {h} * * *") for h in range(RUNS)]
    trigger = [_wfgen(serve, "trigger", spec, "--pubsub-topic",
                      f"projects/{PROJECT}/topics/bench") for _ in range(RUNS)]
    return {"schedule_create_s": round(create, 2),
            "schedule_update_s": round(statistics.median(update), 2),
            "trigger_s": round(statistics.median(trigger), 2)}


def _events(serve: Any, spec: str) -> dict[str, float]:
    executions = f"/v1/{WORKFLOW}/executions"

    def count() -> list[dict[str, Any]]:
        return serve.rest("GET", executions)["executions"]

    data = base64.b64encode(b'{"env": {"WHO": "bench"}}').decode()
    started = time.perf_counter()
    serve.rest("POST", f"/v1/projects/{PROJECT}/topics/bench:publish",
               {"messages": [{"data": data}] * 20})
    answered = time.perf_counter() - started
    serve.wait_for(lambda: len(count()) == 20 and all(e["state"] != "ACTIVE" for e in count()),
                   "20 executions to end", timeout=300)
    ended = time.perf_counter() - started
    job = serve.rest("GET", f"/v1/projects/{PROJECT}/locations/us-central1/jobs/bench-sched")
    before = len(count())
    started = time.perf_counter()
    serve.rest("POST", "/wfgen/test/clock", {"advanceTo": job["scheduleTime"]})
    while len(count()) == before:
        time.sleep(0.002)
    fired = time.perf_counter() - started
    return {"publish_20_answered_s": round(answered, 3), "publish_20_all_ended_s": round(ended, 1),
            "cron_due_to_execution_s": round(fired, 3)}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
