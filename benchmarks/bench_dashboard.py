"""`wfgen serve`'s dashboard with 5,000 executions in its store: the time of
each page over HTTP (median and worst of 20 loads, keep-alive), from a serve
running in this process. Goal: every page under 100 ms.

The store is filled directly (5 workflows x 1,000 executions in every state,
each with a 4 KB result), as a serve that ran them would have it; the pages
read it through the same queries as always."""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wfgen.server.app import App, Options

PARENT = "projects/bench/locations/us-central1"
WORKFLOWS = 5
PER_WORKFLOW = 1000
STATES = ("SUCCEEDED", "FAILED", "CANCELLED", "SUCCEEDED", "ACTIVE")
LOADS = 20
GOAL_MS = 100.0
SOURCE = "main:\n  steps:\n" + "".join(
    f"    - step{i}:\n        call: sys.log\n        args: {{text: '{i}'}}\n" for i in range(200))


def fill(app: App) -> list[str]:
    """Deploy the workflows and store their executions; the last SUCCEEDED one of each."""
    names = []
    for w in range(WORKFLOWS):
        workflow = f"{PARENT}/workflows/bench-{w}"
        op = app.workflows.create(PARENT, f"bench-{w}", {"sourceContents": SOURCE})
        assert op.get("done") and "error" not in op, op
        for i in range(PER_WORKFLOW):
            state = STATES[i % len(STATES)]
            name = f"{workflow}/executions/{uuid.uuid4()}"
            execution = {"name": name, "state": state,
                         "startTime": "2026-12-07T06:00:00.000000Z",
                         "workflowRevisionId": "000001-abc",
                         "argument": json.dumps({"i": i})}
            if state != "ACTIVE":
                execution.update(endTime="2026-12-07T06:00:05.000000Z", duration="5.000000s")
            if state == "SUCCEEDED":
                execution["result"] = json.dumps({"output_tail": "x" * 4096, "status": "ok"})
            if state == "FAILED":
                execution["error"] = {"payload": json.dumps({"message": "boom",
                                                             "tags": ["ValueError"]}),
                                      "context": "ValueError: boom"}
            app.store.add_execution(execution)
            if state == "SUCCEEDED":
                last = name
        names.append(last)
    return names


def timed(conn: http.client.HTTPConnection, path: str) -> tuple[float, int]:
    started = time.perf_counter()
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status == 200, (path, response.status, body[:300])
    return elapsed, len(body)


def main() -> None:
    app = App(Options(port=0, grpc_port=None, data_dir=":memory:", on_host=True),
              log=lambda _line: None).start()
    try:
        names = fill(app)
        conn = http.client.HTTPConnection("127.0.0.1", app.http.port, timeout=30)
        ui = "/ui/workflows/bench/us-central1/bench-0"
        token = ""  # page 40's token, following each page's own "Older" link
        for _ in range(39):
            conn.request("GET", f"{ui}?page_token={token}" if token else ui)
            text = conn.getresponse().read().decode()
            token = text.split("page_token=", 1)[1].split('"', 1)[0]
        last = names[0].rsplit("/", 1)[-1]
        pages = {
            "home": "/ui/",
            "workflow": ui,
            "workflow ?state=FAILED": f"{ui}?state=FAILED",
            "workflow page 40": f"{ui}?page_token={token}",
            "execution": f"/ui/executions/bench/us-central1/bench-0/{last}",
            "pubsub": "/ui/pubsub",
        }
        executions = WORKFLOWS * PER_WORKFLOW
        print(f"dashboard pages with {executions:,} executions ({LOADS} loads each):")
        worst_all = 0.0
        for label, path in pages.items():
            times, size = [], 0
            for _ in range(LOADS):
                elapsed, size = timed(conn, path)
                times.append(elapsed)
            worst_all = max(worst_all, max(times))
            print(f"  {label:24s} median {statistics.median(times):6.1f} ms   "
                  f"worst {max(times):6.1f} ms   {size / 1024:6.1f} KB")
        verdict = "met" if worst_all < GOAL_MS else "MISSED"
        print(f"goal: every page under {GOAL_MS:.0f} ms: {verdict} (worst {worst_all:.1f} ms)")
    finally:
        app.stop()


if __name__ == "__main__":
    main()
