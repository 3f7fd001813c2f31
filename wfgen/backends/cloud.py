"""Google Cloud behind the Backend interface: Workflows, Workflow Executions,
Compute Engine and Cloud Logging, or a `wfgen serve` that answers the same
APIs on loopback (WORKFLOWS_EMULATOR_HOST=HOST:PORT, anonymous credentials).

Which client does what, and why:
- workflows: WorkflowsClient over REST (works unchanged against serve);
- executions: ExecutionsClient over gRPC (it has no REST transport; against
  serve an insecure channel to the gRPC port serve announces);
- VM reads (aggregatedList, getSerialPortOutput) and Cloud Logging
  entries:list: plain authorized HTTP, because importing
  google.cloud.compute_v1 takes seconds and `wfgen status` must answer fast;
- schedules and triggers: CloudSchedulerClient and EventarcClient over REST
  (both work unchanged against serve);
- VM deletion: InstancesClient, waited on with ZoneOperationsClient.wait
  (ExtendedOperation.result() polls compute.googleapis.com whatever the
  endpoint, so it cannot be used against serve).
Every google.* import happens inside these modules (cloud*.py), at first use, so that the
other commands never pay for them."""


from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from typing import Any

from wfgen.backends.base import (
    ACTIVE,
    Backend,
    Execution,
    Revision,
)
from wfgen.backends.cloud_automation import CloudAutomation
from wfgen.backends.cloud_convert import (
    _account,
    _execution,
    _message,
    api_message_types,
    error_value,
    parse_time,
)
from wfgen.backends.cloud_types import (
    DEFAULT_LOCAL_PROJECT,
    EMULATOR_ENV,
    GRPC_ENV,
    NO_CREDENTIALS,
    ROLE_DEPLOY,
    ROLE_INVOKE,
    ROLE_VIEW,
    AccessError,
    CloudError,
    Schedule,
    Trigger,
)
from wfgen.backends.cloud_vms import CloudVms
from wfgen.errors import UsageError

__all__ = ["AccessError", "CloudBackend", "CloudError", "Schedule", "Trigger",
           "api_message_types", "connect", "error_value", "parse_time"]


def emulator_host() -> str | None:
    """HOST:PORT of a `wfgen serve` to use instead of Google Cloud, if set."""
    value = os.environ.get(EMULATOR_ENV, "").strip()
    if not value:
        return None
    value = re.sub(r"^https?://", "", value).rstrip("/")
    if not re.fullmatch(r"[^:/\s]+:\d{1,5}", value):
        raise UsageError(f"{EMULATOR_ENV}={value!r} must be HOST:PORT, e.g. 127.0.0.1:8787")
    return value


def default_project(given: str | None = None) -> str | None:
    return (given or os.environ.get("GOOGLE_CLOUD_PROJECT")
            or os.environ.get("CLOUDSDK_CORE_PROJECT") or None)


def connect(project: str | None, location: str) -> CloudBackend:
    """The backend for this environment: serve when WORKFLOWS_EMULATOR_HOST is
    set (never a call to google.auth.default() then), else Google Cloud with
    Application Default Credentials."""
    host = emulator_host()
    if host:
        from google.auth.credentials import AnonymousCredentials

        return CloudBackend(default_project(project) or DEFAULT_LOCAL_PROJECT, location,
                            AnonymousCredentials(), emulator=host)
    import google.auth
    from google.auth import exceptions as auth_exceptions

    try:
        credentials, adc_project = google.auth.default(
            scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except auth_exceptions.DefaultCredentialsError:
        raise AccessError(NO_CREDENTIALS) from None
    chosen = default_project(project) or adc_project
    if not chosen:
        raise UsageError("no Google Cloud project: pass --project, or set GOOGLE_CLOUD_PROJECT "
                         "(or `gcloud config set project ...`)")
    return CloudBackend(chosen, location, credentials)


def _grpc_target(host: str) -> str:
    """serve's gRPC address: WORKFLOWS_EMULATOR_GRPC_HOST when set, else the
    REST port + 1 (what `wfgen serve` listens on unless told otherwise)."""
    given = os.environ.get(GRPC_ENV, "").strip()
    if given:
        if not re.fullmatch(r"[^:/\s]+:\d{1,5}", given):
            raise UsageError(f"{GRPC_ENV}={given!r} must be HOST:PORT")
        return given
    name, port = host.rsplit(":", 1)
    return f"{name}:{int(port) + 1}"


class CloudBackend(CloudAutomation, CloudVms, Backend):
    """Workflows and their executions, VMs, consoles and logs on Google Cloud
    (or on serve). Clients are made at first use."""

    def __init__(self, project: str, location: str, credentials: Any, *,
                 emulator: str | None = None) -> None:
        self.project = project
        self.location = location
        self.credentials = credentials
        self.emulator = emulator
        base = f"http://{emulator}" if emulator else None
        self.compute_url = f"{base or 'https://compute.googleapis.com'}/compute/v1"
        self.logging_url = f"{base or 'https://logging.googleapis.com'}/v2"
        self._clients: dict[str, Any] = {}
        self._workflow_ids: dict[str, dict[str, str]] = {}  # location -> label -> name

    # -- names ---------------------------------------------------------------

    def workflow_name(self, workflow: str, location: str | None = None) -> str:
        if workflow.startswith("projects/"):
            return workflow
        return f"projects/{self.project}/locations/{location or self.location}/workflows/{workflow}"

    def execution_name(self, execution: str, workflow: str | None) -> str:
        """A full execution name from a full name, or an id and its workflow."""
        if execution.startswith("projects/"):
            if not re.fullmatch(r"projects/[^/]+/locations/[^/]+/workflows/[^/]+/executions/[^/]+",
                                execution):
                raise UsageError(f"{execution!r} is not an execution name "
                                 "(projects/P/locations/L/workflows/W/executions/ID)")
            return execution
        if not workflow:
            raise UsageError(f"{execution!r} is an execution id: give its workflow with "
                             "--workflow NAME (or the job spec), or the full execution name")
        return f"{self.workflow_name(workflow)}/executions/{execution}"

    @property
    def poll_interval(self) -> float:
        """Seconds between two looks at a running execution (serve is local)."""
        return 0.5 if self.emulator else 2.0

    @property
    def where(self) -> str:
        return f"wfgen serve at {self.emulator}" if self.emulator else "Google Cloud"

    # -- clients -------------------------------------------------------------

    def _client(self, kind: str) -> Any:
        if kind not in self._clients:
            self._clients[kind] = getattr(self, f"_make_{kind}")()
        return self._clients[kind]

    def _options(self) -> dict[str, Any] | None:
        return {"api_endpoint": f"http://{self.emulator}"} if self.emulator else None

    def _make_workflows(self) -> Any:
        from google.cloud.workflows_v1 import WorkflowsClient

        return WorkflowsClient(transport="rest", credentials=self.credentials,
                               client_options=self._options())

    def _make_executions(self) -> Any:
        from google.cloud.workflows.executions_v1 import ExecutionsClient

        if not self.emulator:
            return ExecutionsClient(credentials=self.credentials)
        import grpc
        from google.cloud.workflows.executions_v1.services.executions.transports import (
            ExecutionsGrpcTransport,
        )

        channel = grpc.insecure_channel(_grpc_target(self.emulator))
        return ExecutionsClient(transport=ExecutionsGrpcTransport(channel=channel))

    def _make_session(self) -> Any:
        from google.auth.transport.requests import AuthorizedSession

        return AuthorizedSession(self.credentials)

    def _make_instances(self) -> Any:
        from google.cloud.compute_v1 import InstancesClient

        return InstancesClient(transport="rest", credentials=self.credentials,
                               client_options=self._options())

    def _make_zone_operations(self) -> Any:
        from google.cloud.compute_v1 import ZoneOperationsClient

        return ZoneOperationsClient(transport="rest", credentials=self.credentials,
                                    client_options=self._options())

    def _make_scheduler(self) -> Any:
        from google.cloud.scheduler_v1 import CloudSchedulerClient

        return CloudSchedulerClient(transport="rest", credentials=self.credentials,
                                    client_options=self._options())

    def _make_eventarc(self) -> Any:
        from google.cloud.eventarc_v1 import EventarcClient

        return EventarcClient(transport="rest", credentials=self.credentials,
                              client_options=self._options())

    @contextlib.contextmanager
    def _calling(self, what: str, role: str) -> Iterator[None]:
        """Turn the client libraries' failures into one sentence for the user."""
        import requests
        from google.api_core import exceptions as api
        from google.auth import exceptions as auth

        try:
            yield
        except api.NotFound as exc:
            raise UsageError(f"{what}: not found ({_message(exc)})") from None
        except (api.Unauthenticated, auth.RefreshError, auth.DefaultCredentialsError):
            raise AccessError(NO_CREDENTIALS if not self.emulator else
                              f"{what}: {self.where} refused the request as unauthenticated"
                              ) from None
        except api.PermissionDenied as exc:
            raise AccessError(f"{what}: permission denied on project {self.project}; the "
                              f"account needs {role} ({_message(exc)})") from None
        except (api.ServiceUnavailable, api.DeadlineExceeded, requests.ConnectionError,
                requests.Timeout, auth.TransportError) as exc:
            raise CloudError(f"{what}: cannot reach {self.where} ({_message(exc)})"
                             + (f"; is `wfgen serve` running? ({EMULATOR_ENV} is set)"
                                if self.emulator else "")) from None
        except api.GoogleAPICallError as exc:
            raise CloudError(f"{what}: {_message(exc)}") from None

    def _http(self, method: str, url: str, **kwargs: Any) -> Any:
        """A plain authorized call; errors raised as the client libraries raise them."""
        from google.api_core import exceptions as api

        response = self._client("session").request(method, url, timeout=60, **kwargs)
        if response.status_code >= 400:
            raise api.from_http_response(response)
        return response.json() if response.content else {}

    # -- workflows -----------------------------------------------------------

    def deploy(self, workflow: str, source: str, *,
               service_account: str | None = None) -> Revision:
        from google.api_core import exceptions as api
        from google.cloud.workflows_v1 import Workflow
        from google.protobuf import field_mask_pb2

        client = self._client("workflows")
        what = f"deploying {workflow}"
        with self._calling(what, ROLE_DEPLOY):
            try:
                current = client.get_workflow(name=workflow)
            except api.NotFound:
                current = None
            try:
                if current is None:
                    parent, _, workflow_id = workflow.rpartition("/workflows/")
                    op = client.create_workflow(
                        parent=parent, workflow_id=workflow_id,
                        workflow=Workflow(source_contents=source,
                                          service_account=service_account or ""))
                else:
                    same_account = service_account is None or _account(
                        current.service_account) == _account(service_account)
                    if current.source_contents == source and same_account:
                        return Revision(current.name, current.revision_id, changed=False)
                    paths = ["source_contents"] + (["service_account"] if service_account else [])
                    op = client.update_workflow(
                        workflow=Workflow(name=workflow, source_contents=source,
                                          service_account=service_account or ""),
                        update_mask=field_mask_pb2.FieldMask(paths=paths))
                done = op.result(timeout=600)
            except (api.InvalidArgument, api.BadRequest) as exc:
                raise UsageError(f"{what}: the service refused the workflow: "
                                 f"{_message(exc)}") from None
        return Revision(done.name, done.revision_id, changed=True)

    def workflows(self, location: str | None = None) -> list[str]:
        """Full names of the workflows in a location."""
        parent = f"projects/{self.project}/locations/{location or self.location}"
        with self._calling(f"listing the workflows of {parent}", ROLE_VIEW):
            return [wf.name for wf in self._client("workflows").list_workflows(parent=parent)]

    # -- executions ----------------------------------------------------------

    def start(self, workflow: str, argument: Any = None) -> Execution:
        from google.cloud.workflows.executions_v1 import Execution as Pb

        body = Pb(argument=json.dumps(argument) if argument is not None else "")
        with self._calling(f"starting an execution of {workflow}", ROLE_INVOKE):
            return _execution(self._client("executions").create_execution(
                parent=workflow, execution=body))

    def get(self, execution: str) -> Execution:
        with self._calling(f"reading {execution}", ROLE_VIEW):
            return _execution(self._client("executions").get_execution(name=execution))

    def list(self, workflow: str, *, limit: int = 20) -> list[Execution]:
        from google.cloud.workflows.executions_v1 import ExecutionView

        out: list[Execution] = []
        with self._calling(f"listing the executions of {workflow}", ROLE_VIEW):
            pager = self._client("executions").list_executions(request={
                "parent": workflow, "page_size": min(limit, 100), "view": ExecutionView.FULL})
            for item in pager:
                out.append(_execution(item))
                if len(out) >= limit:
                    break
        return out

    def cancel(self, execution: str) -> Execution:
        from google.api_core import exceptions as api

        with self._calling(f"cancelling {execution}", ROLE_INVOKE):
            try:
                return _execution(self._client("executions").cancel_execution(name=execution))
            except (api.FailedPrecondition, api.BadRequest):
                state = self.get(execution).state
                if state == ACTIVE:
                    raise
                raise UsageError(f"{execution} is not running: it is {state}") from None

    def workflow_service_account(self, workflow: str) -> str:
        """The e-mail of the account a deployed workflow runs as."""
        with self._calling(f"reading {workflow}", ROLE_VIEW):
            return _account(self._client("workflows").get_workflow(name=workflow).service_account)
