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
Every google.* import happens inside this module, at first use, so that the
other commands never pay for them."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from wfgen.backends.base import (
    ACTIVE,
    LABEL_EXECUTION,
    LABEL_JOB,
    Backend,
    Execution,
    ExecutionError,
    Revision,
    Vm,
)
from wfgen.errors import EXIT_USAGE, UsageError, WfgenError

EMULATOR_ENV = "WORKFLOWS_EMULATOR_HOST"
GRPC_ENV = "WORKFLOWS_EMULATOR_GRPC_HOST"  # only when serve's gRPC port is not REST + 1
DEFAULT_LOCAL_PROJECT = "local-project"
NO_CREDENTIALS = ("no Google Cloud credentials found: run `gcloud auth application-default "
                  "login` (or set GOOGLE_APPLICATION_CREDENTIALS to a key file)")
# The role each kind of call needs (the README's "Deploy and run" lists them).
ROLE_DEPLOY = "roles/workflows.editor (and roles/iam.serviceAccountUser on the workflow's " \
              "service account)"
ROLE_INVOKE = "roles/workflows.invoker"
ROLE_VIEW = "roles/workflows.viewer"
ROLE_VM_VIEW = "roles/compute.viewer"
ROLE_VM_ADMIN = "roles/compute.instanceAdmin.v1"
ROLE_LOGS = "roles/logging.viewer"
ROLE_SCHEDULE = ("roles/cloudscheduler.admin (and roles/iam.serviceAccountUser on the "
                 "schedule's service account)")
ROLE_TRIGGER = ("roles/eventarc.admin (and roles/iam.serviceAccountUser on the trigger's "
                "service account)")
LOGS_VM_LABEL = "compute.googleapis.com/resource_name"
LOGS_FILTER = f'resource.type="gce_instance" AND labels."{LOGS_VM_LABEL}":"-{{tag}}-"'


@dataclass
class Schedule:
    """A Cloud Scheduler job that starts executions of a workflow."""

    name: str
    schedule: str
    time_zone: str
    uri: str
    argument: Any  # the execution argument its body carries (None: none)
    service_account: str
    state: str
    next_run: str = ""
    last_attempt: str = ""
    last_error: str = ""  # the last attempt's failure, "" when it worked
    created: bool = False  # by the call that returned it


@dataclass
class Trigger:
    """An Eventarc trigger that starts an execution per Pub/Sub message."""

    name: str
    topic: str
    workflow: str
    service_account: str
    subscription: str = ""
    created: bool = False


class CloudError(WfgenError):
    """A call to the service failed (exit 125)."""


class AccessError(UsageError):
    """No credentials, or a permission the account lacks (exit 2: fix the setup)."""

    exit_code = EXIT_USAGE


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


class CloudBackend(Backend):
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

    # -- schedules (Cloud Scheduler jobs) -----------------------------------

    def schedule_name(self, schedule_id: str) -> str:
        return f"projects/{self.project}/locations/{self.location}/jobs/{schedule_id}"

    def put_schedule(self, name: str, *, cron: str, time_zone: str, uri: str, body: bytes,
                     service_account: str, description: str) -> Schedule:
        """Create the job, or update it to these settings when it exists."""
        from google.api_core import exceptions as api
        from google.cloud import scheduler_v1 as sch
        from google.protobuf import field_mask_pb2

        job = sch.Job(name=name, schedule=cron, time_zone=time_zone, description=description,
                      http_target=sch.HttpTarget(
                          uri=uri, http_method=sch.HttpMethod.POST, body=body,
                          headers={"Content-Type": "application/json"},
                          oauth_token=sch.OAuthToken(service_account_email=service_account)))
        client = self._client("scheduler")
        with self._calling(f"scheduling {name}", ROLE_SCHEDULE):
            try:
                client.get_job(name=name)
            except api.NotFound:
                out = _schedule(client.create_job(parent=name.rsplit("/jobs/", 1)[0], job=job))
                out.created = True
                return out
            mask = field_mask_pb2.FieldMask(paths=["schedule", "time_zone", "description",
                                                   "http_target"])
            return _schedule(client.update_job(job=job, update_mask=mask))

    def delete_schedule(self, name: str) -> None:
        with self._calling(f"deleting the schedule {name}", ROLE_SCHEDULE):
            self._client("scheduler").delete_job(name=name)

    def list_schedules(self, uri: str | None = None) -> list[Schedule]:
        """The location's jobs (those that POST to `uri`, when given)."""
        parent = f"projects/{self.project}/locations/{self.location}"
        with self._calling(f"listing the schedules of {parent}", "roles/cloudscheduler.viewer"):
            jobs = [_schedule(job) for job in self._client("scheduler").list_jobs(parent=parent)]
        return [job for job in jobs if uri is None or job.uri == uri]

    # -- triggers (Eventarc) --------------------------------------------------

    def trigger_name(self, trigger_id: str) -> str:
        return f"projects/{self.project}/locations/{self.location}/triggers/{trigger_id}"

    def put_trigger(self, name: str, *, topic: str, workflow: str,
                    service_account: str | None) -> Trigger:
        """Create the trigger, or point it at `workflow` (and the account) when it exists."""
        from google.api_core import exceptions as api
        from google.cloud import eventarc_v1 as ev
        from google.protobuf import field_mask_pb2

        from wfgen.job.schedule import PUBSUB_EVENT

        trigger = ev.Trigger(
            name=name, event_filters=[ev.EventFilter(attribute="type", value=PUBSUB_EVENT)],
            destination=ev.Destination(workflow=workflow),
            transport=ev.Transport(pubsub=ev.Pubsub(topic=topic)),
            service_account=service_account or "")
        client = self._client("eventarc")
        with self._calling(f"creating the trigger {name}", ROLE_TRIGGER):
            try:
                current = client.get_trigger(name=name)
            except api.NotFound:
                parent, _, trigger_id = name.rpartition("/triggers/")
                op = client.create_trigger(parent=parent, trigger=trigger, trigger_id=trigger_id)
                out = _trigger(op.result(timeout=600))
                out.created = True
                return out
            if current.transport.pubsub.topic != topic:
                raise UsageError(f"the trigger {name} listens to "
                                 f"{current.transport.pubsub.topic}, not {topic} (a trigger's "
                                 "topic cannot change): delete it, or give another --name")
            paths = ["destination"] + (["service_account"] if service_account else [])
            op = client.update_trigger(trigger=trigger,
                                       update_mask=field_mask_pb2.FieldMask(paths=paths))
            return _trigger(op.result(timeout=600))

    def delete_trigger(self, name: str) -> None:
        with self._calling(f"deleting the trigger {name}", ROLE_TRIGGER):
            self._client("eventarc").delete_trigger(name=name).result(timeout=600)

    def list_triggers(self, workflow: str | None = None) -> list[Trigger]:
        """The location's triggers (those that start `workflow`, when given)."""
        parent = f"projects/{self.project}/locations/{self.location}"
        with self._calling(f"listing the triggers of {parent}", "roles/eventarc.viewer"):
            found = [_trigger(t) for t in self._client("eventarc").list_triggers(parent=parent)]
        return [t for t in found if workflow is None or t.workflow == workflow]

    # -- VMs -----------------------------------------------------------------

    def list_vms(self, execution: str | None = None) -> list[Vm]:
        wanted = execution.rsplit("/", 1)[-1] if execution else None
        flt = f'labels.{LABEL_EXECUTION} = "{wanted}"' if wanted else None
        url = f"{self.compute_url}/projects/{self.project}/aggregated/instances"
        vms: list[Vm] = []
        token = ""
        with self._calling("listing the VMs", ROLE_VM_VIEW):
            while True:
                params: dict[str, str] = {}  # no returnPartialSuccess: not in compute v1
                if flt:
                    params["filter"] = flt
                if token:
                    params["pageToken"] = token
                page = self._http("GET", url, params=params)
                for scope in (page.get("items") or {}).values():
                    for item in scope.get("instances") or []:
                        vm = _vm(item)
                        if LABEL_EXECUTION not in vm.labels or (
                                wanted and vm.labels[LABEL_EXECUTION] != wanted):
                            continue
                        vm.execution = execution or ""
                        vms.append(vm)
                token = page.get("nextPageToken") or ""
                if not token:
                    break
        if execution is None:
            for vm in vms:
                vm.execution = self._owner(vm)
        return sorted(vms, key=lambda v: (v.created, v.name))

    def _owner(self, vm: Vm) -> str:
        """The execution a VM belongs to: its workflow is the one whose id gives
        the VM's wfgen-job label, in the VM's region (else wfgen's location)."""
        from wfgen.job.render import label_value

        for location in dict.fromkeys([vm.zone.rsplit("-", 1)[0], self.location]):
            if location not in self._workflow_ids:
                try:
                    names = self.workflows(location)
                except UsageError:  # no such location
                    names = []
                self._workflow_ids[location] = {
                    label_value(n.rsplit("/", 1)[-1]): n for n in names}
            name = self._workflow_ids[location].get(vm.labels.get(LABEL_JOB, ""))
            if name:
                return f"{name}/executions/{vm.labels[LABEL_EXECUTION]}"
        return ""

    def console(self, vm: Vm, start: int = 0) -> tuple[str, int]:
        from google.api_core import exceptions as api

        url = (f"{self.compute_url}/projects/{self.project}/zones/{vm.zone}/instances/"
               f"{vm.name}/serialPort")
        with self._calling(f"reading the console of {vm.name}", ROLE_VM_VIEW):
            try:
                out = self._http("GET", url, params={"port": "1", "start": str(start)})
            except (api.NotFound, api.BadRequest):  # gone, or not booted yet
                return "", start
        text = out.get("contents") or ""
        got = int(out.get("start") or start)
        if got > start and start:  # the console buffer dropped what we had not read
            text = f"[wfgen: {got - start} bytes of console output were lost]\n{text}"
        return text, int(out.get("next") or got + len(text.encode()))

    def delete_vms(self, vms: list[Vm]) -> list[str]:
        from google.api_core import exceptions as api
        from google.cloud.compute_v1 import Operation

        instances = self._client("instances")
        operations = self._client("zone_operations")
        pending: list[tuple[Vm, Any]] = []
        deleted: list[str] = []
        with self._calling("deleting VMs", ROLE_VM_ADMIN):
            for vm in vms:
                try:
                    op = instances.delete(project=self.project, zone=vm.zone, instance=vm.name)
                except api.NotFound:
                    continue
                pending.append((vm, op))
            for vm, op in pending:
                deadline = time.monotonic() + 600
                status = op.status
                while status != Operation.Status.DONE and time.monotonic() < deadline:
                    status = operations.wait(project=self.project, zone=vm.zone,
                                             operation=op.name).status
                self._wait_gone(vm, deadline)
                deleted.append(vm.name)
        return deleted

    def _wait_gone(self, vm: Vm, deadline: float) -> None:
        from google.api_core import exceptions as api

        url = f"{self.compute_url}/projects/{self.project}/zones/{vm.zone}/instances/{vm.name}"
        while True:
            try:
                self._http("GET", url)
            except api.NotFound:
                return
            if time.monotonic() > deadline:
                raise CloudError(f"{vm.name} is still there 10 minutes after its deletion")
            time.sleep(1)

    # -- logs ----------------------------------------------------------------

    def logs(self, execution: str, *, follow: bool = False) -> Iterator[str]:
        """The output of the VMs already gone from Cloud Logging, then that of
        the VMs that exist from their consoles (followed until the execution
        ends, with follow)."""
        ex = self.get(execution)
        present = self.list_vms(execution)
        yield from self.logged_lines(ex, skip={vm.name for vm in present})
        if follow:
            from wfgen.backends.follow import Event, follow

            for event in follow(self, execution, interval=self.poll_interval):
                if isinstance(event, Event) and event.kind == "output":
                    yield event.text
            return
        for vm in present:
            text, _ = self.console(vm)
            yield from text.splitlines()

    def logged_lines(self, ex: Execution, skip: set[str] = frozenset()) -> Iterator[str]:
        """The execution's VMs' output from Cloud Logging, as lines."""
        for _vm, line in self.logged_output(ex, skip):
            yield line

    def logged_output(self, ex: Execution,
                      skip: set[str] = frozenset()) -> Iterator[tuple[str, str]]:
        """(VM, line) of the execution's VMs' output from Cloud Logging: every VM
        whose name carries the execution's tag (NAME-TAG-ATTEMPT, see the
        template) and is not in `skip`."""
        tag = ex.id.replace("-", "")[:12]
        flt = LOGS_FILTER.format(tag=tag)
        if ex.start_time:
            flt += f' AND timestamp>="{ex.start_time}"'
        body: dict[str, Any] = {"resourceNames": [f"projects/{self.project}"], "filter": flt,
                                "orderBy": "timestamp asc", "pageSize": 1000}
        with self._calling(f"reading the logs of {ex.name}", ROLE_LOGS):
            while True:
                page = self._http("POST", f"{self.logging_url}/entries:list", json=body)
                for entry in page.get("entries") or []:
                    vm = (entry.get("labels") or {}).get(LOGS_VM_LABEL, "")
                    if vm not in skip and f"-{tag}-" in vm:
                        yield from ((vm, line) for line in _entry_text(entry).splitlines())
                if not page.get("nextPageToken"):
                    return
                body["pageToken"] = page["nextPageToken"]


# -- conversions -------------------------------------------------------------


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return " ".join(str(text).split())[:500]


def _account(value: str) -> str:
    """A service account's e-mail, whichever form the service echoes."""
    return value.rsplit("/", 1)[-1]


def _json(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _timestamp(pb: Any, name: str) -> str:
    raw = type(pb).pb(pb)
    return getattr(raw, name).ToJsonString() if raw.HasField(name) else ""


def _execution(pb: Any) -> Execution:
    """Our Execution from the proto-plus one (result and argument decoded)."""
    from google.cloud.workflows.executions_v1 import Execution as Pb

    raw = Pb.pb(pb)
    error = None
    if raw.HasField("error"):
        elements = list(pb.error.stack_trace.elements)
        error = ExecutionError(payload=pb.error.payload, context=pb.error.context,
                               step=elements[0].step if elements else None,
                               subworkflow=elements[0].routine if elements else None)
    current = list(pb.status.current_steps) if raw.HasField("status") else []
    step = f"{current[-1].step} ({current[-1].routine})" if current else ""
    return Execution(name=pb.name, state=Pb.State(pb.state).name, argument=_json(pb.argument),
                     result=_json(pb.result), error=error, start_time=_timestamp(pb, "start_time"),
                     end_time=_timestamp(pb, "end_time"), revision_id=pb.workflow_revision_id,
                     current_step=step)


def _schedule(pb: Any) -> Schedule:
    from google.cloud.scheduler_v1 import Job

    raw = Job.pb(pb)
    target = pb.http_target
    argument = None
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        argument = json.loads(json.loads(target.body or b"{}").get("argument") or "null")
    error = ""
    if raw.HasField("status") and pb.status.code:
        error = pb.status.message or f"code {pb.status.code}"
    return Schedule(name=pb.name, schedule=pb.schedule, time_zone=pb.time_zone or "Etc/UTC",
                    uri=target.uri, argument=argument,
                    service_account=target.oauth_token.service_account_email,
                    state=Job.State(pb.state).name, next_run=_timestamp(pb, "schedule_time"),
                    last_attempt=_timestamp(pb, "last_attempt_time"), last_error=error)


def _trigger(pb: Any) -> Trigger:
    return Trigger(name=pb.name, topic=pb.transport.pubsub.topic,
                   workflow=pb.destination.workflow, service_account=pb.service_account,
                   subscription=pb.transport.pubsub.subscription)


def _vm(item: dict[str, Any]) -> Vm:
    seconds = ((item.get("scheduling") or {}).get("maxRunDuration") or {}).get("seconds")
    return Vm(name=item["name"], zone=str(item.get("zone", "")).rsplit("/", 1)[-1],
              status=item.get("status", ""), labels=dict(item.get("labels") or {}),
              created=item.get("creationTimestamp", ""),
              max_run_duration_s=int(seconds) if seconds is not None else None)


def _entry_text(entry: dict[str, Any]) -> str:
    if "textPayload" in entry:
        return str(entry["textPayload"])
    payload = entry.get("jsonPayload") or {}
    if isinstance(payload, dict) and "message" in payload:
        return str(payload["message"])
    return json.dumps(payload, ensure_ascii=False)


def error_value(ex: Execution) -> Any:
    """The value the workflow raised (decoded from error.payload)."""
    return _json(ex.error.payload) if ex.error else None


def parse_time(text: str) -> dt.datetime | None:
    """RFC 3339, as Workflows and Compute Engine write it."""
    if not text:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def api_message_types() -> tuple[Any, Any]:
    """The Workflows and Executions APIs' message modules (proto-plus), for
    serve's gRPC front, which speaks the APIs' own messages: this module stays
    the one place that imports google.cloud."""
    from google.cloud.workflows.executions_v1.types import executions
    from google.cloud.workflows_v1.types import workflows

    return workflows, executions
