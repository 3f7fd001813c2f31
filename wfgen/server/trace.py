"""What the dashboard shows of an execution that the Executions API's resource
has no field for: the call steps it ran, with their times (the engine's step
log), and its billed steps. Kept beside the execution in the store's resources
table (kind `execution.trace`), so the API's answers stay exactly Google's."""

from __future__ import annotations

from typing import Any

from wfgen.server.store import Resource, Store

KIND = "execution.trace"


def save(store: Store, name: str, runner: Any, billed: tuple[int, int]) -> None:
    """Keep an ended execution's step log (read from the runner before it forgets)."""
    try:
        entries, calls = runner.step_log(name)
    except Exception:  # a runner without a step log, or one that forgot already
        entries, calls = [], 0
    store.put_resource(KIND, {"name": name, "calls": calls,
                              "steps": [[t, routine, step] for t, routine, step in entries],
                              "billed": {"internal": billed[0], "external": billed[1]}},
                       name.split("/executions/")[0])


def load(store: Store, name: str, runner: Any) -> Resource:
    """The trace of an execution: live from the runner while it runs, else stored."""
    try:
        entries, calls = runner.step_log(name)
        return {"name": name, "calls": calls, "live": True,
                "steps": [list(entry) for entry in entries]}
    except Exception:  # not running here: ended (or serve restarted)
        return store.get_resource(KIND, name) or {"name": name, "calls": 0, "steps": []}
