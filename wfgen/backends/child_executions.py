"""The Workflow Executions connector (`googleapis.workflowexecutions.v1.
projects.locations.workflows.executions.*`): a workflow starting, awaiting and
cancelling other executions, as Google's connector reference describes it.

- `create(parent, body)` returns at once with the new Execution resource
  (`body.argument` is a JSON string, at most 32 KB).
- `run(workflow_id, argument, location, project_id)` creates an execution and
  waits for it (default timeout 1800 s, `connector_params.timeout` up to one
  year; polling billed as the connectors' default policy polls: 1 s, x1.25,
  60 s at most). It returns the child's result, decoded; a child that FAILED or
  was CANCELLED raises OperationError "Execution failed or cancelled." whose
  `operation` is the child's Execution resource (its `error.payload` holds the
  child's raised value as JSON text).
- `get(name, view)` (`view: BASIC`: name, times, state and revision only, as
  the REST API answers), `cancel(name)`. An execution cancelling itself (a
  split job's child whose parent ended) is cancelled once the call returned,
  as it cannot wait for its own end.

A missing workflow or execution raises HttpError 404, a bad argument 400, as
the REST API answers. Who runs the children is a `ChildRunner`: the local
backend's own executions (`wfgen run --local`), or serve's Executions API (so
children show in `gcloud workflows executions list`).

As on Google, cancelling the execution waiting in `run` leaves the child it
waits for running: a split job's generated child watches its parent itself
(templates/parent_watch.yaml.j2) and stops when the parent has ended."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from typing import Any, Protocol

from wfgen.engine.connectors import ConnectorResult
from wfgen.engine.errors import make_error

PREFIX = "googleapis.workflowexecutions.v1.projects.locations.workflows.executions."
DEFAULT_TIMEOUT = 1800.0
MAX_TIMEOUT = 31536000.0
MAX_ARGUMENT_BYTES = 32 * 1024
ENDED_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")
VIEWS = ("EXECUTION_VIEW_UNSPECIFIED", "BASIC", "FULL")
BASIC_FIELDS = ("name", "startTime", "endTime", "duration", "state", "workflowRevisionId")
RUN_FAILED = "Execution failed or cancelled."


class ChildRunner(Protocol):
    """Executions as REST resources (dicts shaped as the Execution message)."""

    def create(self, parent: str, argument_text: str | None) -> dict[str, Any]: ...

    def get(self, name: str) -> dict[str, Any]: ...

    def cancel(self, name: str) -> dict[str, Any]: ...

    def wait(self, name: str, seconds: float) -> dict[str, Any]: ...


class NotFound(Exception):
    """A workflow or execution that does not exist (the connector's HttpError 404)."""


def polls_for(seconds: float, initial: float = 1.0, multiplier: float = 1.25,
              maximum: float = 60.0) -> int:
    """How many polls a wait of `seconds` costs under a polling policy."""
    polls, waited, delay = 1, 0.0, initial
    while waited < seconds:
        waited += delay
        polls += 1
        delay = min(delay * multiplier, maximum)
    return polls


def http_error(code: int, message: str) -> Exception:
    return make_error("HttpError", message, code=code,
                      body={"error": {"code": code, "message": message}})


class ExecutionsConnector:
    """The connector's functions over one ChildRunner."""

    def __init__(self, runner: ChildRunner) -> None:
        self.runner = runner

    def register(self, registry: Any) -> None:
        registry.register(PREFIX + "create", self.create)
        registry.register(PREFIX + "run", self.run)
        registry.register(PREFIX + "get", self.get)
        registry.register(PREFIX + "cancel", self.cancel)

    # -- the functions ---------------------------------------------------------
    def create(self, rt: Any, connector_params: Any = None, *, parent: str,
               body: Any = None, **_: Any) -> dict[str, Any]:
        body = body if body is not None else {}
        if not isinstance(body, dict):
            raise make_error("TypeError", "body: expected a map (an Execution)")
        argument = body.get("argument")
        if argument is not None and not isinstance(argument, str):
            raise http_error(400, "Invalid value at 'execution.argument' (TYPE_STRING)")
        return self._start(parent, argument)

    def run(self, rt: Any, connector_params: Any = None, *, workflow_id: str,
            argument: Any = None, location: str | None = None,
            project_id: str | None = None, **_: Any) -> Any:
        env = getattr(rt, "env", {}) or {}
        project = project_id or env.get("GOOGLE_CLOUD_PROJECT_ID", "")
        location = location or env.get("GOOGLE_CLOUD_LOCATION", "")
        if not isinstance(workflow_id, str) or not workflow_id:
            raise make_error("TypeError", "workflow_id: expected a non-empty string")
        try:
            text = None if argument is None else json.dumps(argument, ensure_ascii=False)
        except (TypeError, ValueError):
            raise make_error("TypeError", "argument: expected integer, float, bool, string, "
                                          "list or map") from None
        params = connector_params or {}
        timeout = float(params.get("timeout", DEFAULT_TIMEOUT))
        if not 0 < timeout <= MAX_TIMEOUT:
            raise make_error("ValueError", f"connector_params.timeout must be in (0, "
                                           f"{int(MAX_TIMEOUT)}] seconds")
        child = self._start(f"projects/{project}/locations/{location}/workflows/{workflow_id}",
                            text)
        if params.get("skip_polling"):
            return None
        started = time.monotonic()
        ended = self._await(child["name"], timeout, getattr(rt, "cancel_event", None))
        policy = params.get("polling_policy") or {}
        polls = polls_for(time.monotonic() - started, float(policy.get("initial_delay", 1.0)),
                          float(policy.get("multiplier", 1.25)),
                          float(policy.get("max_delay", 60.0)))
        if ended["state"] == "SUCCEEDED":
            result = ended.get("result")
            return ConnectorResult(json.loads(result) if result else None, polling_steps=polls)
        raise make_error("OperationError", RUN_FAILED, operation=ended)

    def get(self, rt: Any, connector_params: Any = None, *, name: str,
            view: Any = None, **_: Any) -> dict[str, Any]:
        if view is not None and view not in VIEWS:
            raise http_error(400, f"Invalid value at 'view' ({view!r}): expected one of "
                                  + ", ".join(VIEWS))
        try:
            resource = self.runner.get(name)
        except NotFound as exc:
            raise http_error(404, str(exc)) from None
        if view == "BASIC":
            return {k: resource[k] for k in BASIC_FIELDS if k in resource}
        return resource

    def cancel(self, rt: Any, connector_params: Any = None, *, name: str,
               body: Any = None, **_: Any) -> dict[str, Any]:
        try:
            if name == own_name(rt):
                # it cannot wait for its own end: the cancel goes on once this returns
                resource = self.runner.get(name)
                threading.Thread(target=self._cancel_quietly, args=(name,),
                                 name="wfgen-cancel-self", daemon=True).start()
                return resource
            return self.runner.cancel(name)
        except NotFound as exc:
            raise http_error(404, str(exc)) from None

    # -- helpers ---------------------------------------------------------------
    def _start(self, parent: str, argument_text: str | None) -> dict[str, Any]:
        if argument_text is not None and len(argument_text.encode()) > MAX_ARGUMENT_BYTES:
            raise http_error(400, "execution.argument is longer than 32 KB "
                                   f"({len(argument_text.encode())} bytes)")
        try:
            return self.runner.create(parent, argument_text)
        except NotFound as exc:
            raise http_error(404, str(exc)) from None

    def _cancel_quietly(self, name: str) -> None:
        with contextlib.suppress(Exception):  # it ended meanwhile
            self.runner.cancel(name)

    def _await(self, name: str, timeout: float,
               cancelled: threading.Event | None) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            if cancelled is not None and cancelled.is_set():  # the child runs on
                raise make_error("CancelledError", "the execution was cancelled")
            left = deadline - time.monotonic()
            if left <= 0:
                raise make_error("TimeoutError", f"execution {name} did not end within "
                                                 f"{timeout:g} seconds")
            resource = self.runner.wait(name, min(left, 0.2))
            if resource.get("state") in ENDED_STATES:
                return resource


def own_name(rt: Any) -> str:
    """The full name of the execution making a connector call (its env)."""
    env = getattr(rt, "env", None) or {}
    return (f"projects/{env.get('GOOGLE_CLOUD_PROJECT_ID', '')}/locations/"
            f"{env.get('GOOGLE_CLOUD_LOCATION', '')}/workflows/"
            f"{env.get('GOOGLE_CLOUD_WORKFLOW_ID', '')}/executions/"
            f"{env.get('GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID', '')}")


def resource_of(record: Any) -> dict[str, Any]:
    """A backend Execution record as the REST Execution resource."""
    out: dict[str, Any] = {"name": record.name, "state": record.state,
                           "startTime": record.start_time,
                           "workflowRevisionId": record.revision_id}
    if record.argument is not None:
        out["argument"] = json.dumps(record.argument, ensure_ascii=False)
    if record.end_time:
        out["endTime"] = record.end_time
    if record.state == "SUCCEEDED":
        out["result"] = json.dumps(record.result, ensure_ascii=False)
    elif record.error is not None:
        out["error"] = {"payload": record.error.payload, "context": record.error.context}
    return out


class LocalChildren:
    """Children as executions of the local backend (`wfgen run --local`)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend

    def create(self, parent: str, argument_text: str | None) -> dict[str, Any]:
        from wfgen.errors import UsageError

        argument = json.loads(argument_text) if argument_text else None
        try:
            record = self.backend.start(parent, argument)
        except UsageError:
            raise NotFound(f"Resource '{parent}' was not found") from None
        return resource_of(record)

    def get(self, name: str) -> dict[str, Any]:
        from wfgen.errors import UsageError

        try:
            return resource_of(self.backend.get(name))
        except UsageError:
            raise NotFound(f"Resource '{name}' was not found") from None

    def cancel(self, name: str) -> dict[str, Any]:
        from wfgen.errors import UsageError

        try:
            record = self.backend.get(name)
        except UsageError:
            raise NotFound(f"Resource '{name}' was not found") from None
        if record.state in ENDED_STATES:
            raise http_error(400, f"execution {name} has already ended "
                                   f"(state {record.state})")
        return resource_of(self.backend.cancel(name))

    def wait(self, name: str, seconds: float) -> dict[str, Any]:
        return resource_of(self.backend.wait(name, seconds))
