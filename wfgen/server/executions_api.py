"""Workflow Executions API v1 (`workflowexecutions.googleapis.com`): create,
get (BASIC/FULL), list (newest first), cancel and callbacks.list.

`ExecutionsService` works on the JSON resources the REST API returns (the gRPC
front converts them); `ExecutionsRest` maps the REST paths onto it. Running
executions live in memory and in the store (as ACTIVE); when one ends, the
store gets its final form (result as a JSON string; error.payload the raised
value as a JSON string, error.context a readable trace with step and line,
error.stackTrace) before the in-memory copy goes, so no GET ever misses it."""

from __future__ import annotations

import contextlib
import json
import threading
import uuid
from typing import Any, Protocol

from wfgen.backends.base import Execution
from wfgen.engine.tree import Step, Workflow
from wfgen.errors import WfgenError
from wfgen.local.loopback import ApiError, Request, Response
from wfgen.server import trace, wire
from wfgen.server.store import Resource, Store
from wfgen.server.workflows_api import WorkflowsService

BASIC_FIELDS = ("name", "startTime", "endTime", "duration", "state", "workflowRevisionId")
CREATE_FIELDS = {"argument", "callLogLevel", "labels", "executionHistoryLevel",
                 "disableConcurrencyQuotaOverflowBuffering", "name"}
RESTART_MESSAGE = ("wfgen serve stopped while this execution was running; it was marked "
                   "FAILED when serve started again")
MAX_ARGUMENT_BYTES = 32 * 1024  # the service's limit on an execution argument
# create waits this long for the new execution before it answers (ACTIVE either
# way): the execution's thread gets the interpreter at once, and a short workflow
# has ended by the client's first GET instead of costing a round of polls
HEAD_START_S = 0.010


class Runner(Protocol):
    """What runs executions (the local backend, or serve's own executor)."""

    def start_source(self, name: str, source: str, argument: Any, *, revision_id: str = "",
                     on_end: Any = None) -> Execution: ...

    def cancel(self, name: str) -> Any: ...

    def forget(self, name: str) -> None: ...


class _Live:
    def __init__(self, resource: Resource, source: str) -> None:
        self.resource = resource
        self.source = source  # its definition, for the line numbers of an error
        self.ended = threading.Event()
        # create writes the store after the head start: an execution over by then is
        # written once, in its final form (`final`), instead of twice
        self.lock = threading.Lock()
        self.stored = False
        self.final: Resource | None = None


class ExecutionsService:
    """Executions of deployed workflows, run by `runner`, kept in `store`."""

    def __init__(self, store: Store, workflows: WorkflowsService, runner: Runner,
                 hub: Any = None) -> None:
        self.store = store
        self.workflows = workflows
        self.runner = runner
        self.hub = hub  # the callbacks hub: an ended execution's endpoints go
        self._live: dict[str, _Live] = {}
        self._lock = threading.Lock()

    def fail_interrupted(self) -> list[str]:
        """Executions left ACTIVE by an earlier serve become FAILED (at start)."""
        names = []
        stamp = wire.now()
        for execution in self.store.executions_in_state("ACTIVE"):
            execution["state"] = "FAILED"
            execution["endTime"] = stamp[1]
            execution["duration"] = wire.duration(
                stamp[0] - wire.parse_timestamp(execution["startTime"]))
            execution["error"] = {
                "payload": _dump({"message": RESTART_MESSAGE, "tags": ["UnavailableError"]}),
                "context": f"UnavailableError: {RESTART_MESSAGE}"}
            execution.pop("status", None)
            self.store.update_execution(execution)
            names.append(execution["name"])
        return names

    # -- create ----------------------------------------------------------------
    def create(self, parent: str, body: Any) -> Resource:
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received: the body must be an Execution")
        unknown = sorted(set(body) - CREATE_FIELDS - {"call_log_level", "execution_history_level"})
        if unknown:
            raise ApiError(400, f'Invalid JSON payload received. Unknown name "{unknown[0]}": '
                                "Cannot find field.")
        workflow = self.workflows.get(parent)
        argument_text = body.get("argument")
        argument: Any = None
        if argument_text not in (None, ""):
            if not isinstance(argument_text, str):
                raise ApiError(400, "Invalid value at 'execution.argument': expected a string "
                                    "holding JSON")
            if len(argument_text.encode()) > MAX_ARGUMENT_BYTES:
                raise ApiError(400, "execution.argument is longer than 32 KB")
            try:
                argument = json.loads(argument_text)
            except ValueError as exc:
                raise ApiError(400, f"failed to parse the execution argument as JSON: {exc}"
                               ) from None
        _, start = wire.now()
        name = f"{parent}/executions/{uuid.uuid4()}"
        resource: Resource = {"name": name, "startTime": start, "state": "ACTIVE",
                              "workflowRevisionId": workflow["revisionId"],
                              "status": {"currentSteps": [{"routine": "main",
                                                           "step": "start"}]}}
        if argument_text:
            resource["argument"] = argument_text
        level = body.get("callLogLevel", body.get("call_log_level"))
        level = wire.enum_name("execution.call_log_level", level or 0, wire.CALL_LOG_LEVELS)
        if level == "CALL_LOG_LEVEL_UNSPECIFIED":
            level = workflow.get("callLogLevel", level)
        resource["callLogLevel"] = level
        history = body.get("executionHistoryLevel", body.get("execution_history_level"))
        history = wire.enum_name("execution.execution_history_level", history or 0,
                                 wire.HISTORY_LEVELS)
        if history != "EXECUTION_HISTORY_LEVEL_UNSPECIFIED":
            resource["executionHistoryLevel"] = history
        labels = body.get("labels") or workflow.get("labels")
        if labels:
            if not isinstance(labels, dict):
                raise ApiError(400, "Invalid value at 'execution.labels': expected a map")
            resource["labels"] = labels
        live = _Live(dict(resource), workflow["sourceContents"])
        with self._lock:
            self._live[name] = live
        try:
            self.runner.start_source(name, workflow["sourceContents"], argument,
                                     revision_id=workflow["revisionId"],
                                     on_end=self._ended)
        except Exception as exc:  # serve is stopping, or the runner refused
            with self._lock:
                self._live.pop(name, None)
            resource.update(state="FAILED", endTime=wire.now()[1], error={
                "payload": _dump({"message": str(exc), "tags": ["UnavailableError"]}),
                "context": f"UnavailableError: {exc}"})
            self.store.add_execution(resource)
            raise ApiError(503, f"the execution could not start: {exc}") from None
        live.ended.wait(HEAD_START_S)  # the answer is still the ACTIVE resource, as Google's
        with live.lock:
            self.store.add_execution(live.final or resource)
            live.stored = True
        if live.final is not None:
            self._gone(record_name=name, live=live)
        return resource

    def _ended(self, record: Execution) -> None:
        with self._lock:
            live = self._live.get(record.name)
        if live is None:
            return
        resource = dict(live.resource)
        resource.pop("status", None)
        end_t, end = wire.now()
        resource["state"] = record.state
        resource["endTime"] = record.end_time or end
        resource["duration"] = wire.duration(
            wire.parse_timestamp(resource["endTime"]) - wire.parse_timestamp(
                resource["startTime"])) if record.end_time else wire.duration(
            end_t - wire.parse_timestamp(resource["startTime"]))
        if record.state == "SUCCEEDED":
            resource["result"] = _dump(record.result)
        elif record.error is not None:
            resource["error"] = _error_resource(record, self.workflows.parsed(
                live.source, record.workflow.rsplit("/", 1)[-1]))
        trace.save(self.store, record.name, self.runner, record.steps)  # for the dashboard
        with live.lock:
            stored = live.stored
            if stored:
                self.store.update_execution(resource)
            else:  # still in its head start: create stores this final form
                live.final = resource
        if stored:
            self._gone(record.name, live)
        else:
            live.ended.set()

    def _gone(self, record_name: str, live: _Live) -> None:
        """An ended execution, now in the store, leaves memory."""
        with self._lock:
            self._live.pop(record_name, None)
        live.ended.set()
        self.runner.forget(record_name)  # the store has it now
        if self.hub is not None:
            self.hub.forget(record_name)

    # -- reads -----------------------------------------------------------------
    def get(self, name: str, view: Any = None) -> Resource:
        with self._lock:
            live = self._live.get(name)
        resource = dict(live.resource) if live else self.store.get_execution(name)
        if resource is None:
            raise ApiError(404, f"Resource '{name}' was not found", resource=name)
        if live is not None and resource.get("state") == "ACTIVE":
            with contextlib.suppress(Exception):  # an execution that just ended
                position = self.runner.position(name)
                if position is not None:
                    resource["status"] = {"currentSteps": [{"routine": position[0],
                                                            "step": position[1]}]}
        return _view(resource, view, "FULL")

    def list(self, parent: str, size: Any = None, token: str | None = None,
             view: Any = None) -> Resource:
        self.workflows.get(parent)

        def show(item: Resource) -> Resource:  # a running one as it is now
            with self._lock:
                live = self._live.get(item["name"])
            return _view(dict(live.resource) if live else item, view, "BASIC")

        return wire.paged("executions", parent, size, token,
                          lambda offset, count: self.store.list_executions(parent, offset,
                                                                           count),
                          default=100, maximum=10000, show=show)

    def cancel(self, name: str, wait: float = 10.0) -> Resource:
        with self._lock:
            live = self._live.get(name)
        if live is None:
            if self.store.get_execution(name) is None:
                raise ApiError(404, f"Resource '{name}' was not found", resource=name)
            raise ApiError(400, "execution is not active", code_name="FAILED_PRECONDITION")
        with contextlib.suppress(WfgenError):  # it ended meanwhile
            self.runner.cancel(name)
        live.ended.wait(wait)
        return self.get(name)

    def callbacks(self, name: str) -> Resource:
        self.get(name)
        return {"callbacks": self.hub.list_for(name) if self.hub is not None else []}

    def wait_all(self, timeout: float) -> None:
        """Wait (up to `timeout` s) until no execution is running (shutdown)."""
        with self._lock:
            lives = list(self._live.values())
        for live in lives:
            live.ended.wait(timeout)


def _view(resource: Resource, view: Any, default: str) -> Resource:
    view = wire.enum_name("view", view or 0, wire.EXECUTION_VIEWS)
    if view == "EXECUTION_VIEW_UNSPECIFIED":
        view = default
    if view == "BASIC":
        return {k: resource[k] for k in BASIC_FIELDS if k in resource}
    return resource


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _find_step(steps: list[Step], name: str) -> Step | None:
    for step in steps:
        if step.name == name:
            return step
        children: list[Step] = list(step.steps)
        for cond in step.conditions:
            children.extend(cond.steps or [])
        if step.loop:
            children.extend(step.loop.steps)
        if step.parallel:
            for _branch, _line, branch_steps in step.parallel.branches or []:
                children.extend(branch_steps)
            if step.parallel.loop:
                children.extend(step.parallel.loop.steps)
        children.extend(step.try_body or [])
        children.extend(step.except_steps or [])
        found = _find_step(children, name)
        if found:
            return found
    return None


def _error_resource(record: Execution, workflow: Workflow) -> Resource:
    """error.{payload, context, stackTrace} as the service shows them."""
    error = record.error
    assert error is not None
    try:
        value = json.loads(error.payload)
    except ValueError:
        value = error.payload
    out: Resource = {"payload": error.payload}
    routine = error.subworkflow or "main"
    step = None
    if error.step:
        sub = workflow.subworkflows.get(routine)
        step = _find_step(sub.steps, error.step) if sub else None
        if step is None:
            for sub in workflow.subworkflows.values():
                step = _find_step(sub.steps, error.step)
                if step:
                    routine = sub.name
                    break
    tags = value.get("tags") if isinstance(value, dict) else None
    message = value.get("message") if isinstance(value, dict) else None
    kind = tags[0] if isinstance(tags, list) and tags else "Error"
    head = f"{kind}: {message if message is not None else error.payload}"
    if error.step:
        where = f'in step "{error.step}", routine "{routine}"'
        if step is not None:
            where += f", line: {step.line}"
            out["stackTrace"] = {"elements": [{
                "step": error.step, "routine": routine,
                "position": {"line": str(step.line), "column": str(step.column),
                             "length": str(len(error.step))}}]}
        out["context"] = f"{head}\n{where}"
    else:
        out["context"] = error.context or head
    return out


class ExecutionsRest:
    """The REST paths of the Executions API (callbacks.list included)."""

    def __init__(self, service: ExecutionsService) -> None:
        self.service = service

    def handle(self, request: Request) -> Response | None:
        path = request.path
        if not path.startswith("/v1/projects/") or "/executions" not in path:
            return None
        name = path[len("/v1/"):].rstrip("/")
        parts = name.split("/")
        if len(parts) < 7 or parts[2] != "locations" or parts[4] != "workflows":
            return None
        method = request.method
        if len(parts) == 7 and parts[6] == "executions":
            parent = "/".join(parts[:6])
            if method == "POST":
                return Response.of_json(self.service.create(parent, request.json()))
            if method == "GET":
                return Response.of_json(self.service.list(
                    parent, request.arg("pageSize"), request.arg("pageToken"),
                    request.arg("view")))
        elif len(parts) == 8 and parts[6] == "executions":
            execution, _, custom = name.partition(":")
            if custom == "cancel" and method == "POST":
                return Response.of_json(self.service.cancel(execution))
            if not custom and method == "GET":
                return Response.of_json(self.service.get(name, request.arg("view")))
            if custom:
                raise ApiError(404, f"Unknown method :{custom}")
        elif len(parts) == 9 and parts[8] == "callbacks" and method == "GET":
            return Response.of_json(self.service.callbacks("/".join(parts[:8])))
        else:
            return None
        raise ApiError(405, f"{method} is not allowed on {path}", code_name="UNIMPLEMENTED")
