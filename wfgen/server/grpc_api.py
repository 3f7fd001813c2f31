"""gRPC for the Workflows and Executions APIs (the Python ExecutionsClient
has no REST transport; it works over an insecure channel to this port).

Generic handlers per method, using the proto-plus classes shipped with
google-cloud-workflows to (de)serialise; each call turns the request into the
JSON the REST front takes, calls the same service object, and converts the
JSON answer back. An ApiError becomes the gRPC status of the same name."""

from __future__ import annotations

import json
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from google.longrunning import operations_pb2
from google.protobuf import empty_pb2
from google.rpc import status_pb2

from wfgen.backends.cloud import api_message_types
from wfgen.local.loopback import ApiError
from wfgen.server.apicheck import BodyChecker, Refused
from wfgen.server.discovery import routes
from wfgen.server.executions_api import CREATE_FIELDS, ExecutionsService
from wfgen.server.workflows_api import SETTABLE, WORKFLOW_TYPE, WorkflowsService

EXECUTIONS = "google.cloud.workflows.executions.v1.Executions"
WORKFLOWS = "google.cloud.workflows.v1.Workflows"
OPERATIONS = "google.longrunning.Operations"
wt, et = api_message_types()


def _code(error: ApiError) -> grpc.StatusCode:
    try:
        return grpc.StatusCode[error.code_name]
    except KeyError:
        return grpc.StatusCode.UNKNOWN


class _Junk:
    """A request message that did not parse (grpcio would answer INTERNAL)."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _tolerant(parse: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception as exc:  # DecodeError and friends: the client's bytes are junk
            return _Junk(exc)
    return deserialize


# the gRPC methods whose request carries a resource, checked against the same
# Discovery document as the REST call: (method id, the request field with the body)
CHECKED = {"CreateExecution": ("workflowexecutions.projects.locations.workflows.executions."
                               "create", "execution"),
           "CreateWorkflow": ("workflows.projects.locations.workflows.create", "workflow"),
           "UpdateWorkflow": ("workflows.projects.locations.workflows.patch", "workflow")}


def _check(name: str, request: Any) -> None:
    """Refused (INVALID_ARGUMENT) when the REST check would refuse the same body."""
    if name not in CHECKED:
        return
    method_id, field = CHECKED[name]
    method = routes().method(method_id)
    if method is None:
        return
    message = getattr(request, field)
    try:
        body = json.loads(type(message).to_json(message, use_integers_for_enums=True))
        BodyChecker(method).check(body)
    except Refused as exc:
        raise ApiError(400, exc.message) from None


def _wrap(fn: Callable[[Any], Any], name: str = "") -> Callable[[Any, grpc.ServicerContext],
                                                                Any]:
    def call(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, _Junk):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"Invalid request message: {type(request.error).__name__}")
        try:
            _check(name, request)
            return fn(request)
        except ApiError as exc:
            context.abort(_code(exc), exc.message)
    return call


def _execution(resource: dict[str, Any]) -> et.Execution:
    return et.Execution.from_json(json.dumps(resource), ignore_unknown_fields=True)


def _workflow(resource: dict[str, Any]) -> wt.Workflow:
    body = {k: v for k, v in resource.items() if k != "@type"}
    return wt.Workflow.from_json(json.dumps(body), ignore_unknown_fields=True)


def _operation(resource: dict[str, Any]) -> operations_pb2.Operation:
    op = operations_pb2.Operation(name=resource["name"], done=bool(resource.get("done")))
    metadata = {k: v for k, v in resource.get("metadata", {}).items() if k != "@type"}
    op.metadata.Pack(wt.OperationMetadata.pb(wt.OperationMetadata.from_json(
        json.dumps(metadata), ignore_unknown_fields=True)))
    if "error" in resource:
        op.error.CopyFrom(status_pb2.Status(code=resource["error"]["code"],
                                            message=resource["error"]["message"]))
    elif "response" in resource:
        if resource["response"].get("@type") == WORKFLOW_TYPE:
            op.response.Pack(wt.Workflow.pb(_workflow(resource["response"])))
        else:
            op.response.Pack(empty_pb2.Empty())
    return op


def _fields(message: Any, cls: Any, allowed: Any) -> dict[str, Any]:
    data = json.loads(cls.to_json(message, use_integers_for_enums=True))
    return {k: v for k, v in data.items() if k in allowed}


class _Executions:
    def __init__(self, service: ExecutionsService) -> None:
        self.service = service

    def create(self, req: et.CreateExecutionRequest) -> et.Execution:
        body = _fields(req.execution, et.Execution, CREATE_FIELDS - {"name"})
        return _execution(self.service.create(req.parent, body))

    def get(self, req: et.GetExecutionRequest) -> et.Execution:
        return _execution(self.service.get(req.name, int(req.view)))

    def cancel(self, req: et.CancelExecutionRequest) -> et.Execution:
        return _execution(self.service.cancel(req.name))

    def list(self, req: et.ListExecutionsRequest) -> et.ListExecutionsResponse:
        page = self.service.list(req.parent, req.page_size, req.page_token, int(req.view))
        return et.ListExecutionsResponse(
            executions=[_execution(e) for e in page["executions"]],
            next_page_token=page.get("nextPageToken", ""))


class _Workflows:
    def __init__(self, service: WorkflowsService) -> None:
        self.service = service

    def create(self, req: wt.CreateWorkflowRequest) -> operations_pb2.Operation:
        body = _fields(req.workflow, wt.Workflow, SETTABLE)
        return _operation(self.service.create(req.parent, req.workflow_id, body))

    def get(self, req: wt.GetWorkflowRequest) -> wt.Workflow:
        return _workflow(self.service.get(req.name, req.revision_id or None))

    def list(self, req: wt.ListWorkflowsRequest) -> wt.ListWorkflowsResponse:
        page = self.service.list(req.parent, req.page_size, req.page_token)
        return wt.ListWorkflowsResponse(workflows=[_workflow(w) for w in page["workflows"]],
                                        next_page_token=page.get("nextPageToken", ""))

    def update(self, req: wt.UpdateWorkflowRequest) -> operations_pb2.Operation:
        body = _fields(req.workflow, wt.Workflow, SETTABLE)
        mask = list(req.update_mask.paths) if req.update_mask else None
        return _operation(self.service.patch(req.workflow.name, body, mask or None))

    def delete(self, req: wt.DeleteWorkflowRequest) -> operations_pb2.Operation:
        return _operation(self.service.delete(req.name))

    def revisions(self, req: wt.ListWorkflowRevisionsRequest
                  ) -> wt.ListWorkflowRevisionsResponse:
        page = self.service.list_revisions(req.name, req.page_size, req.page_token)
        return wt.ListWorkflowRevisionsResponse(
            workflows=[_workflow(w) for w in page["workflows"]],
            next_page_token=page.get("nextPageToken", ""))

    def get_operation(self, req: operations_pb2.GetOperationRequest
                      ) -> operations_pb2.Operation:
        return _operation(self.service.get_operation(req.name))


def _proto_plus(fn: Callable[[Any], Any], req: Any, resp: Any, name: str = ""
                ) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        _wrap(fn, name), request_deserializer=_tolerant(req.deserialize),
        response_serializer=resp.serialize)


def _raw(fn: Callable[[Any], Any], req: Any, name: str = "") -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(
        _wrap(fn, name), request_deserializer=_tolerant(req.FromString),
        response_serializer=lambda m: m.SerializeToString())


def start_grpc(workflows: WorkflowsService, executions: ExecutionsService, host: str,
               port: int) -> tuple[grpc.Server, int]:
    """A started gRPC server for both APIs; (server, bound port)."""
    ex = _Executions(executions)
    wf = _Workflows(workflows)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler(EXECUTIONS, {
            "CreateExecution": _proto_plus(ex.create, et.CreateExecutionRequest, et.Execution,
                                           "CreateExecution"),
            "GetExecution": _proto_plus(ex.get, et.GetExecutionRequest, et.Execution),
            "CancelExecution": _proto_plus(ex.cancel, et.CancelExecutionRequest, et.Execution),
            "ListExecutions": _proto_plus(ex.list, et.ListExecutionsRequest,
                                          et.ListExecutionsResponse),
        }),
        grpc.method_handlers_generic_handler(WORKFLOWS, {
            "CreateWorkflow": _raw(wf.create, _ProtoPlusReq(wt.CreateWorkflowRequest),
                                   "CreateWorkflow"),
            "GetWorkflow": _proto_plus(wf.get, wt.GetWorkflowRequest, wt.Workflow),
            "ListWorkflows": _proto_plus(wf.list, wt.ListWorkflowsRequest,
                                         wt.ListWorkflowsResponse),
            "UpdateWorkflow": _raw(wf.update, _ProtoPlusReq(wt.UpdateWorkflowRequest),
                                   "UpdateWorkflow"),
            "DeleteWorkflow": _raw(wf.delete, _ProtoPlusReq(wt.DeleteWorkflowRequest)),
            "ListWorkflowRevisions": _proto_plus(wf.revisions, wt.ListWorkflowRevisionsRequest,
                                                 wt.ListWorkflowRevisionsResponse),
        }),
        grpc.method_handlers_generic_handler(OPERATIONS, {
            "GetOperation": _raw(wf.get_operation, operations_pb2.GetOperationRequest),
        }),
    ))
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpcio's way of saying the bind failed
        bound = 0
    if bound == 0:
        server.stop(None)
        raise OSError(f"cannot listen on {host}:{port} for gRPC (in use?)")
    server.start()
    return server, bound


class _ProtoPlusReq:
    """A proto-plus request class with the FromString of a raw message."""

    def __init__(self, cls: Any) -> None:
        self.FromString = cls.deserialize
