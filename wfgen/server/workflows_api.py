"""Workflows API v1 (`workflows.googleapis.com`): create, get, list, patch,
delete, listRevisions, and the long-running operations every mutation returns.

`WorkflowsService` holds the logic on plain JSON resources (camelCase, as the
REST API speaks; the gRPC front converts); `WorkflowsRest` maps the REST paths
onto it. A definition the engine cannot run (YAML or syntax errors, unknown
keys, `next` to a missing step, limits, and the deploy-time checks of
wfgen.engine.deploy_checks: variable scope, `shared`, required arguments,
blocking calls in expressions) is refused as the service refuses it: the
operation ends with error code 3 (INVALID_ARGUMENT) whose message names line
and column, and nothing is deployed. Lint warnings never block a deploy.
Operations finish before the mutating call returns (a deploy is a parse)."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable
from typing import Any

from wfgen.engine import WorkflowSyntaxError, load_workflow
from wfgen.engine.runtime import compile_workflow
from wfgen.engine.tree import Workflow
from wfgen.local.loopback import ApiError, Request, Response
from wfgen.server import wire
from wfgen.server.store import Resource, Store

WORKFLOW_TYPE = "type.googleapis.com/google.cloud.workflows.v1.Workflow"
EMPTY_TYPE = "type.googleapis.com/google.protobuf.Empty"
METADATA_TYPE = "type.googleapis.com/google.cloud.workflows.v1.OperationMetadata"
# fields a client may set; everything else in a body is output-only and ignored
SETTABLE = ("description", "labels", "serviceAccount", "sourceContents", "callLogLevel",
            "userEnvVars", "cryptoKeyName", "executionHistoryLevel", "tags")
OUTPUT_ONLY = ("name", "state", "revisionId", "createTime", "updateTime",
               "revisionCreateTime", "stateError", "allKmsKeys", "allKmsKeysVersions",
               "cryptoKeyVersion")
# a new revision only when one of these changes (as the service does)
REVISION_FIELDS = ("sourceContents", "serviceAccount")
SNAKE = {"source_contents": "sourceContents", "service_account": "serviceAccount",
         "call_log_level": "callLogLevel", "user_env_vars": "userEnvVars",
         "crypto_key_name": "cryptoKeyName", "execution_history_level": "executionHistoryLevel"}

Deployed = Callable[[str], None]


def source_problem(source: str, workflow_id: str) -> str | Workflow:
    """Why Google would refuse this definition at deploy time, or the parsed
    definition when it would not."""
    try:
        wf = load_workflow(source, workflow_id)
        compile_workflow(wf)
        return wf
    except WorkflowSyntaxError as exc:
        problems = [(f"line {i.line}, column {i.column}: " if i.line else "") + i.message
                    for i in exc.issues[:5]]
        more = f"; and {len(exc.issues) - 5} more" if len(exc.issues) > 5 else ""
        return "failed to build: " + "; ".join(problems) + more


class WorkflowsService:
    """Workflow resources, their revisions and the operations that change them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()  # one mutation of the workflows at a time
        self._parsed: dict[str, Workflow] = {}  # source -> its definition (for line numbers)

    # -- reads -----------------------------------------------------------------
    def get(self, name: str, revision_id: str | None = None) -> Resource:
        workflow = self.store.get_workflow(name)
        if workflow is None:
            raise _not_found(name)
        if revision_id and revision_id != workflow["revisionId"]:
            revision = self.store.get_revision(name, revision_id)
            if revision is None:
                raise ApiError(404, f"Revision '{revision_id}' of workflow '{name}' was not "
                                    "found", resource=f"{name}@{revision_id}")
            return revision
        return workflow

    def list(self, parent: str, size: Any = None, token: str | None = None) -> Resource:
        wire.split_parent(parent)
        return wire.paged("workflows", parent, size, token,
                          lambda offset, count: self.store.list_workflows(parent, offset, count),
                          default=500)

    def list_revisions(self, name: str, size: Any = None, token: str | None = None
                       ) -> Resource:
        self.get(name)
        return wire.paged("workflows", name, size, token,
                          lambda offset, count: self.store.list_revisions(name, offset, count),
                          default=20, maximum=100)

    def parsed(self, source: str, workflow_id: str) -> Workflow:
        """The parsed definition of a deployed source (kept from its deploy)."""
        wf = self._parsed.get(source)
        if wf is None:  # deployed by an earlier serve
            wf = self._parsed[source] = load_workflow(source, workflow_id)
        return wf

    def _check(self, source: str, workflow_id: str) -> str | None:
        """The deploy-time refusal, if any; a good definition is kept for later."""
        outcome = source_problem(source, workflow_id)
        if isinstance(outcome, str):
            return outcome
        if len(self._parsed) >= 512:
            self._parsed.clear()
        self._parsed[source] = outcome
        return None

    def get_operation(self, name: str) -> Resource:
        operation = self.store.get_operation(name)
        if operation is None:
            raise ApiError(404, f"Operation '{name}' was not found", resource=name)
        return operation

    # -- mutations -------------------------------------------------------------
    def create(self, parent: str, workflow_id: str | None, body: Resource) -> Resource:
        project, _location = wire.split_parent(parent)
        if not workflow_id:
            raise ApiError(400, "workflow_id is required (the ?workflowId= query parameter)")
        if not wire.WORKFLOW_ID_RE.fullmatch(workflow_id):
            raise ApiError(400, f"Invalid workflow_id {workflow_id!r}: it must start with a "
                                "letter, hold only letters, digits, - and _, and end with a letter "
                                "or digit (at most 64)")
        name = f"{parent}/workflows/{workflow_id}"
        fields = _settable(body, project)
        if not fields.get("sourceContents"):
            raise ApiError(400, "source_contents is required: give the workflow definition")
        with self._lock:
            if self.store.get_workflow(name) is not None:
                raise ApiError(409, f"Resource '{name}' already exists", resource=name)
            operation = _operation(parent, name, "create")
            problem = self._check(fields["sourceContents"], workflow_id)
            if problem:
                return self._finish(operation, error=problem)
            _, stamp = wire.now()
            workflow = {"name": name, "state": "ACTIVE", "createTime": stamp,
                        "updateTime": stamp, **fields}
            workflow.setdefault("serviceAccount", _default_account(project))
            self._new_revision(workflow, 1, stamp)
            return self._finish(operation, response=workflow)

    def patch(self, name: str, body: Resource, mask: list[str] | None) -> Resource:
        parent = name.rsplit("/workflows/", 1)[0]
        project, _location = wire.split_parent(parent)
        paths = [SNAKE.get(p, p) for p in mask] if mask else None
        for path in paths or ():
            if path not in SETTABLE:
                raise ApiError(400, f"Invalid update_mask path {path!r}; settable fields: "
                                    f"{', '.join(SETTABLE)}")
        fields = _settable(body, project)
        with self._lock:
            workflow = self.store.get_workflow(name)
            if workflow is None:
                raise _not_found(name)
            operation = _operation(parent, name, "update")
            updated = dict(workflow)
            for path in paths if paths is not None else list(fields):
                if path in fields:
                    updated[path] = fields[path]
                else:
                    updated.pop(path, None)
            if not updated.get("sourceContents"):
                return self._finish(operation, error="source_contents may not be empty")
            updated.setdefault("serviceAccount", _default_account(project))
            problem = self._check(updated["sourceContents"], name.rsplit("/", 1)[-1])
            if problem:
                return self._finish(operation, error=problem)
            _, stamp = wire.now()
            updated["updateTime"] = stamp
            if any(updated.get(k) != workflow.get(k) for k in REVISION_FIELDS):
                seq = max(self.store.last_revision_seq(name),
                          int(workflow["revisionId"].split("-", 1)[0])) + 1
                self._new_revision(updated, seq, stamp)
            else:
                self.store.put_workflow(updated, None)
            return self._finish(operation, response=updated)

    def delete(self, name: str) -> Resource:
        with self._lock:
            if not self.store.delete_workflow(name):
                raise _not_found(name)
            operation = _operation(name.rsplit("/workflows/", 1)[0], name, "delete")
            return self._finish(operation, response=None)

    def deploy(self, name: str, source: str) -> tuple[Resource, bool]:
        """Create or update from a file (--workflows-dir); (operation, changed)."""
        current = self.store.get_workflow(name)
        if current is None:
            parent, _, workflow_id = name.rpartition("/workflows/")
            return self.create(parent, workflow_id, {"sourceContents": source}), True
        if current.get("sourceContents") == source:
            return {"done": True, "response": current}, False
        return self.patch(name, {"sourceContents": source}, ["sourceContents"]), True

    def _new_revision(self, workflow: Resource, seq: int, stamp: str) -> None:
        digest = hashlib.sha256(f"{workflow['sourceContents']}\0{workflow['serviceAccount']}"
                                f"\0{seq}".encode()).hexdigest()[:3]
        workflow["revisionId"] = f"{seq:06d}-{digest}"
        workflow["revisionCreateTime"] = stamp
        self.store.put_workflow(workflow, workflow)

    def _finish(self, operation: Resource, *, response: Resource | None = None,
                error: str | None = None) -> Resource:
        operation["done"] = True
        operation["metadata"]["endTime"] = wire.now()[1]
        if error is not None:
            operation["error"] = {"code": 3, "message": error}
        elif response is None:
            operation["response"] = {"@type": EMPTY_TYPE}
        else:
            operation["response"] = {"@type": WORKFLOW_TYPE, **response}
        self.store.put_operation(operation)
        return operation


def _not_found(name: str) -> ApiError:
    return ApiError(404, f"Resource '{name}' was not found", resource=name)


def _default_account(project: str) -> str:
    return f"projects/{project}/serviceAccounts/{project}-compute@developer.gserviceaccount.com"


def _settable(body: Any, project: str) -> Resource:
    """The client-settable fields of a Workflow body, normalised (enums as names)."""
    if not isinstance(body, dict):
        raise ApiError(400, "Invalid JSON payload received: the body must be a Workflow object")
    fields: Resource = {}
    for key, value in body.items():
        key = SNAKE.get(key, key)
        if key in OUTPUT_ONLY:
            continue
        if key not in SETTABLE:
            raise ApiError(400, f'Invalid JSON payload received. Unknown name "{key}": '
                                "Cannot find field.")
        fields[key] = value
    for key in ("description", "sourceContents", "serviceAccount", "cryptoKeyName"):
        if key in fields and not isinstance(fields[key], str):
            raise ApiError(400, f"Invalid value at 'workflow.{key}': expected a string")
    for key in ("labels", "userEnvVars", "tags"):
        if key in fields and not (isinstance(fields[key], dict) and all(
                isinstance(v, str) for v in fields[key].values())):
            raise ApiError(400, f"Invalid value at 'workflow.{key}': expected a map of strings")
    if "callLogLevel" in fields:
        fields["callLogLevel"] = wire.enum_name("workflow.call_log_level",
                                                fields["callLogLevel"], wire.CALL_LOG_LEVELS)
    if "executionHistoryLevel" in fields:
        fields["executionHistoryLevel"] = wire.enum_name(
            "workflow.execution_history_level", fields["executionHistoryLevel"],
            wire.HISTORY_LEVELS)
    account = fields.get("serviceAccount")
    if account is not None and account.startswith("projects/-/"):
        fields["serviceAccount"] = f"projects/{project}/" + account[len("projects/-/"):]
    for key in [k for k, v in fields.items() if v in ("", {}, None) and k != "sourceContents"]:
        del fields[key]  # proto3: an empty value is an unset one
    return fields


def _operation(parent: str, target: str, verb: str) -> Resource:
    stamp = wire.now()
    op_id = (f"operation-{int(stamp[0] * 1000)}-{uuid.uuid4().hex[:13]}-"
             f"{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:8]}")
    return {"name": f"{parent}/operations/{op_id}",
            "metadata": {"@type": METADATA_TYPE, "createTime": stamp[1], "target": target,
                         "verb": verb, "apiVersion": "v1"},
            "done": False}


class WorkflowsRest:
    """The REST paths of the Workflows API (workflows and operations)."""

    def __init__(self, service: WorkflowsService) -> None:
        self.service = service

    def handle(self, request: Request) -> Response | None:
        path = request.path
        if not path.startswith("/v1/projects/") or "/executions" in path:
            return None
        name = path[len("/v1/"):].rstrip("/")
        parts = name.split("/")
        method = request.method
        if len(parts) == 5 and parts[2] == "locations" and parts[4] == "workflows":
            parent = "/".join(parts[:4])
            if method == "GET":
                return Response.of_json(self.service.list(
                    parent, request.arg("pageSize"), request.arg("pageToken")))
            if method == "POST":
                return Response.of_json(self.service.create(
                    parent, request.arg("workflowId"), request.json()))
            raise _method_not_allowed(request)
        if len(parts) == 6 and parts[2] == "locations" and parts[4] == "workflows":
            workflow, _, custom = name.partition(":")
            if custom == "listRevisions" and method == "GET":
                return Response.of_json(self.service.list_revisions(
                    workflow, request.arg("pageSize"), request.arg("pageToken")))
            if custom:
                raise ApiError(404, f"Unknown method :{custom}")
            if method == "GET":
                return Response.of_json(self.service.get(name, request.arg("revisionId")))
            if method == "PATCH":
                mask = request.arg("updateMask")
                paths = [p.strip() for p in mask.split(",") if p.strip()] if mask else None
                return Response.of_json(self.service.patch(name, request.json(), paths))
            if method == "DELETE":
                return Response.of_json(self.service.delete(name))
            raise _method_not_allowed(request)
        if len(parts) == 6 and parts[2] == "locations" and parts[4] == "operations":
            if method == "GET":
                return Response.of_json(self.service.get_operation(name))
            raise _method_not_allowed(request)
        return None


def _method_not_allowed(request: Request) -> ApiError:
    return ApiError(405, f"{request.method} is not allowed on {request.path}",
                    code_name="UNIMPLEMENTED")
