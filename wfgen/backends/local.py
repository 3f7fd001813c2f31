"""The embedded local runtime as a backend: wfgen's engine runs the workflow,
with local Compute Engine (wfgen.local.compute) and Workflows callbacks
(wfgen.local.callbacks) answering its connector calls.

One backend holds one shared set of instances and one callback hub, and runs
any number of executions at once, each on its own thread: `wfgen run --local`
starts one, `wfgen serve` many. Every workflow run here gets Compute Engine
and `events.*`, not only the ones wfgen generated. `shutdown()` cancels every
execution and deletes every VM; nothing is left running.

Compute Engine (and its docker probe) and the callback server start on the
first call that needs them (wfgen.backends.on_demand): a workflow that makes
no VM and no callback imports and starts neither."""

from __future__ import annotations

import json
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from wfgen.backends.base import (
    ACTIVE,
    CANCELLED,
    ENDED,
    FAILED,
    LABEL_EXECUTION,
    LABEL_PARENT,
    Backend,
    Execution,
    ExecutionError,
    Revision,
    Vm,
    placement_of,
)
from wfgen.backends.on_demand import DeferredConnector, OnDemand
from wfgen.backends.workers import Workers
from wfgen.errors import UsageError

Notify = Callable[[str], None]
Output = Callable[[str, str], None]
OnEnd = Callable[[Execution], None]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _quiet(*_: Any) -> None:
    return None


def split_execution_name(name: str) -> tuple[str, str, str, str]:
    """(project, location, workflow id, execution id) of a full execution name."""
    parts = name.split("/")
    if len(parts) != 8 or parts[0::2] != ["projects", "locations", "workflows", "executions"]:
        raise UsageError(f"{name!r} is not an execution name "
                         "(projects/P/locations/L/workflows/W/executions/ID)")
    return parts[1], parts[3], parts[5], parts[7]


@dataclass
class _Run:
    """One execution in flight or ended, with what is needed to cancel it."""

    record: Execution
    engine: Any  # wfgen.engine.runtime.Execution
    done: threading.Event = field(default_factory=threading.Event)
    vms: list[str] = field(default_factory=list)
    on_end: OnEnd | None = None


class LocalBackend(Backend):
    """Executions on wfgen's engine, VMs as local processes, callbacks on loopback."""

    def __init__(self, *, project: str = "local-project", location: str = "us-central1",
                 notify: Notify = _quiet, output: Output = _quiet, faults: Any = None,
                 use_container_engine: bool | None = None, on_host: bool = False,
                 log_sink: Callable[[dict[str, Any]], None] | None = None,
                 callbacks: Any = None, project_metadata: dict[str, str] | None = None
                 ) -> None:
        from wfgen.local.faults import Faults
        from wfgen.local.pubsub import LocalPublisher, emulator_endpoint

        self.project = project
        self.location = location
        self.notify = notify
        self.log_sink = log_sink
        self.faults = faults or Faults()
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._revisions: dict[str, list[tuple[str, str]]] = {}  # workflow -> [(id, source)]
        self._parsed: dict[tuple[str, str], Any] = {}  # (filename, source) -> Workflow
        self._shut = False  # shutdown() ran: a Compute Engine made later refuses new VMs

        def compute() -> Any:
            from wfgen.local.compute import LocalCompute
            from wfgen.local.vm import container_engine_works

            engine = container_engine_works() if use_container_engine is None \
                else use_container_engine
            made = LocalCompute(notify=notify, output=output, faults=self.faults,
                                use_container_engine=engine,
                                on_host=on_host,  # wfgen.local.host_policy
                                project_metadata=project_metadata)
            if self._shut:
                made.shutdown_all()
            return made

        def hub() -> Any:
            # serve passes its own hub (callbacks answered on its REST port); it
            # gets the token check of these VMs: callbacks(check_token)
            if callbacks is not None:
                return callbacks(self._token_ok)
            from wfgen.local.callbacks import CallbackServer

            return CallbackServer(self._token_ok, refuse_first=self.faults.refuse_callbacks,
                                  on_request=self._on_callback).start()

        # Pub/Sub publish: to the serve of WORKFLOWS_EMULATOR_HOST (serve sets its own)
        self.publisher = LocalPublisher(notify, emulator_endpoint())
        self._compute: OnDemand[Any] = OnDemand(compute)
        self._callbacks: OnDemand[Any] = OnDemand(hub)
        self._registry: Any = None  # connectors() is the same for every execution
        self._workers = Workers()  # threads reused across executions (serve starts many)

    @property
    def compute(self) -> Any:
        """Local Compute Engine (wfgen.local.compute), started on first use."""
        return self._compute.get()

    @property
    def callbacks(self) -> Any:
        """The callback hub (wfgen.local.callbacks), started on first use."""
        return self._callbacks.get()

    def _instances(self) -> list[Any]:
        """Every instance record so far, without starting Compute Engine."""
        compute = self._compute.built
        return compute.known_instances() if compute is not None else []

    # -- the services every execution gets ----------------------------------
    def _token_ok(self, token: str) -> bool:
        compute = self._compute.built
        return compute is not None and any(vm.metadata.check_token(token)
                                           for vm in list(compute.all_vms))

    def _on_callback(self, url: str, event: dict[str, Any]) -> None:
        body = event["http_request"]["body"]
        if isinstance(body, dict) and "status" in body:
            code = body.get("exit_code")
            detail = f", exit code {code}" if code is not None else ""
            source = f" from {body['instance']}" if body.get("instance") else ""
            self.notify(f"report received{source}: status {body.get('status')}{detail}")

    # serve sets it: why Google would refuse a connector call (name, arguments), or None
    connector_check: Callable[[str, dict[str, Any]], str | None] | None = None
    # serve sets it: who runs child executions (wfgen.backends.child_executions)
    children: Any = None
    # serve sets it: the Cloud Storage the storage connector calls (else the run's)
    storage_endpoint: str | None = None

    def connectors(self) -> Any:
        """The connector registry: Compute Engine, Pub/Sub publish, events.*, executions."""
        from wfgen.backends import storage_connector
        from wfgen.backends.child_executions import ExecutionsConnector, LocalChildren
        from wfgen.engine.connectors import ConnectorRegistry
        from wfgen.local.connector_names import COMPUTE_CONNECTORS
        from wfgen.local.pubsub import NAME as PUBLISH

        registry = ConnectorRegistry()
        check = self.connector_check
        target = registry if check is None else _Checking(registry, check)
        for connector, method in COMPUTE_CONNECTORS.items():
            target.register(connector, DeferredConnector(self._compute.get, method))
        registry.register(PUBLISH, self.publisher)
        registry.register("events.create_callback_endpoint",
                          lambda rt, connector_params=None, http_callback_method="POST", **_:
                          self.callbacks.create_endpoint(rt.env, http_callback_method))
        registry.register("events.await_callback", _AwaitCallback(self._callbacks.get))
        ExecutionsConnector(self.children or LocalChildren(self)).register(target)
        # staged items (objects.get), tasks.report (objects.insert, compose, delete)
        storage_connector.register(target, lambda: self.storage_endpoint)
        return registry

    # -- deploy -------------------------------------------------------------
    def deploy(self, workflow: str, source: str, *,
               service_account: str | None = None) -> Revision:
        """Keep `source` as the workflow's new revision (unchanged: no new one)."""
        from wfgen.engine import WorkflowSyntaxError, load_workflow

        try:
            load_workflow(source, workflow)
        except WorkflowSyntaxError as exc:
            first = exc.issues[0]
            raise UsageError(f"{workflow}:{first.line}:{first.column}: {first.message}") from None
        with self._lock:
            revisions = self._revisions.setdefault(workflow, [])
            if revisions and revisions[-1][1] == source:
                return Revision(workflow, revisions[-1][0], changed=False)
            revision_id = f"{len(revisions) + 1:06d}-{secrets.token_hex(2)[:3]}"
            revisions.append((revision_id, source))
        return Revision(workflow, revision_id)

    # -- executions ---------------------------------------------------------
    def start(self, workflow: str, argument: Any = None) -> Execution:
        with self._lock:
            revisions = self._revisions.get(workflow)
        if not revisions:
            raise UsageError(f"workflow {workflow} is not deployed")
        revision_id, source = revisions[-1]
        name = f"{workflow}/executions/{uuid.uuid4()}"
        return self.start_source(name, source, argument, revision_id=revision_id)

    def start_source(self, name: str, source: str, argument: Any = None, *,
                     revision_id: str = "000001-000", filename: str | None = None,
                     on_end: OnEnd | None = None, services: Any = None) -> Execution:
        """Run `source` as the execution `name`; returns at once (state ACTIVE)."""
        from wfgen.engine import RealClock, Services, prepare
        from wfgen.engine.services import default_env

        project, location, workflow_id, execution_id = split_execution_name(name)
        workflow = self.parsed(source, filename or workflow_id)
        env = default_env(project_id=project, location=location, workflow_id=workflow_id,
                          revision_id=revision_id, execution_id=execution_id)
        if services is None:
            services = Services(clock=RealClock(), env=env, log_sink=self.log_sink)
        else:
            services.env = env
        if self._registry is None:
            self._registry = self.connectors()
        engine = prepare(workflow, services=services, connectors=self._registry)
        record = Execution(name=name, state=ACTIVE, argument=argument, start_time=_now(),
                           revision_id=revision_id)
        run = _Run(record, engine, on_end=on_end)
        with self._lock:
            self._runs[name] = run
        self._workers.submit(self._work, run, argument, name=f"wfgen-{execution_id}")
        return record

    def parsed(self, source: str, filename: str) -> Any:
        """`source` parsed (wfgen.engine.load_workflow, which raises its syntax
        errors), kept: parsing takes milliseconds, running a small workflow far less."""
        from wfgen.engine import load_workflow

        key = (filename, source)
        workflow = self._parsed.get(key)
        if workflow is None:
            workflow = load_workflow(source, filename)
            with self._lock:
                if len(self._parsed) >= 256:
                    self._parsed.clear()
                self._parsed[key] = workflow
        return workflow

    def _work(self, run: _Run, argument: Any) -> None:
        try:
            outcome = run.engine.run(argument)
            state, result = outcome.state, outcome.result
            error = _error_of(outcome.error) if outcome.error is not None else None
            steps = (outcome.steps_internal, outcome.steps_external)
        except BaseException as exc:  # never lose an execution to a bug: it FAILED
            state, result, steps = FAILED, None, (0, 0)
            error = ExecutionError(json.dumps({"message": f"internal error: "
                                               f"{type(exc).__name__}: {exc}",
                                               "tags": ["InternalError"]}))
        record = run.record
        record.result, record.error = result, error
        record.steps, record.end_time = steps, _now()
        record.state = state  # last: a reader that sees the end sees all of it
        run.done.set()
        if run.on_end is not None:
            run.on_end(record)

    def _run(self, name: str) -> _Run:
        split_execution_name(name)  # a clear error for what is not a name at all
        with self._lock:
            run = self._runs.get(name)
        if run is None:
            raise UsageError(f"no execution {name}")
        return run

    def get(self, execution: str) -> Execution:
        run = self._run(execution)
        position = run.engine.position if run.record.state == ACTIVE else None
        if position is not None:
            run.record.current_step = f"{position[1]} ({position[0]})"
        return run.record

    def position(self, execution: str) -> tuple[str, str] | None:
        """(subworkflow, step) of the call step an ACTIVE execution is in, if any."""
        run = self._run(execution)
        return run.engine.position if run.record.state == ACTIVE else None

    def step_log(self, execution: str) -> tuple[list[tuple[float, str, str]], int]:
        """The latest call steps (time, subworkflow, step) and how many ran in all."""
        engine = self._run(execution).engine
        return list(engine.step_log), engine.calls

    def forget(self, execution: str) -> None:
        """Drop an ended execution from memory (serve keeps it in its own store)."""
        with self._lock:
            run = self._runs.get(execution)
            if run is not None and run.done.is_set():
                del self._runs[execution]

    def wait(self, execution: str, timeout: float | None = None) -> Execution:
        """The execution once it ended (or as it is after `timeout` seconds)."""
        run = self._run(execution)
        run.done.wait(timeout)
        return run.record

    def list(self, workflow: str, *, limit: int = 20) -> list[Execution]:
        prefix = workflow + "/executions/"
        with self._lock:
            runs = [r.record for n, r in self._runs.items() if n.startswith(prefix)]
        return sorted(runs, key=lambda r: r.start_time, reverse=True)[:limit]

    def cancel(self, execution: str) -> Execution:
        run = self._run(execution)
        if run.record.state not in ENDED:
            run.engine.cancel()
            run.done.wait(30)
        if run.record.state == ACTIVE:  # a connector call that ignores cancellation
            run.record.state = CANCELLED
        return run.record

    # -- logs and VMs ---------------------------------------------------------
    def logs(self, execution: str, *, follow: bool = False) -> Iterator[str]:
        """Console lines of the execution's VMs (deleted ones too), in the order
        their VMs were made; with follow, until the execution ends."""
        run = self._run(execution)
        sent: dict[str, int] = {}  # instance id -> lines already given
        while True:
            ended = run.done.is_set()
            for record in self._instances():
                if record.labels.get(LABEL_EXECUTION) != run.record.id:
                    continue
                lines = record.console.snapshot()
                done = sent.get(record.id, 0)
                if len(lines) > done:
                    sent[record.id] = len(lines)
                    yield from (f"{record.name} | {line.text}" for line in lines[done:])
            if not follow or ended:
                return
            run.done.wait(0.3)

    def list_vms(self, execution: str | None = None) -> list[Vm]:
        wanted = split_execution_name(execution)[3] if execution else None
        out = []
        for record in self._instances():
            labels = record.labels
            if record.deleted is not None or not any(k.startswith("wfgen-") for k in labels):
                continue
            if wanted is not None and wanted not in (labels.get(LABEL_EXECUTION),
                                                     labels.get(LABEL_PARENT)):
                continue  # its own VMs, and a split job's children's
            out.append(Vm(name=record.name, zone=record.zone, status=record.vm.status,
                          labels=labels,
                          created=datetime.fromtimestamp(record.created, UTC).isoformat()))
        return out

    def delete_vms(self, vms: list[Vm]) -> list[str]:
        deleted: list[str] = []
        if self._compute.built is None:
            return deleted  # no VM was ever made here
        for vm in vms:
            try:
                self.compute.delete(None, project=self.project, zone=vm.zone, instance=vm.name)
            except Exception:  # already gone: nothing to delete
                continue
            deleted.append(vm.name)
        return deleted

    def delete_placements(self, execution: str, regions: list[str]) -> list[str]:
        compute = self._compute.built
        if compute is None:
            return []  # no VM (nor policy) was ever made here
        deleted = []
        for project, region, name in compute.all_policies():
            if project != self.project or region not in regions or not placement_of(
                    compute.get_policy(project, region, name), execution):
                continue
            try:
                compute.delete_policy(project, region, name)
            except Exception:  # gone meanwhile, or still in use: the run's own cleanup
                continue
            deleted.append(name)
        return deleted

    def shutdown(self) -> list[str]:
        """Cancel every execution, delete every VM, stop the callback server."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            if not run.done.is_set():
                run.engine.cancel()
        self._shut = True
        compute = self._compute.built
        left = compute.shutdown_all() if compute is not None else []  # refuses new VMs too
        for run in runs:
            run.done.wait(5)
        hub = self._callbacks.built
        if hub is not None:
            hub.stop()
        return left

    def hurry_up(self) -> None:
        """A second stop request: cut every running shutdown script short."""
        compute = self._compute.built
        if compute is not None:
            compute.hurry_up()


class _AwaitCallback:
    """`events.await_callback`: waits on the hub; billed as an external step."""

    bills_external = True

    def __init__(self, callbacks: Callable[[], Any]) -> None:
        self.callbacks = callbacks  # the hub, started on first use

    def __call__(self, rt: Any, connector_params: Any = None, callback: Any = None,
                 timeout: float = 43200, **_: Any) -> Any:
        return self.callbacks().await_request(callback, timeout, getattr(rt, "cancel_event", None))


class _Checking:
    """Registers each connector behind a check: a refused call raises the HttpError
    400 the real connector would raise, and never reaches the local compute."""

    def __init__(self, registry: Any, check: Callable[[str, dict[str, Any]], str | None]
                 ) -> None:
        self.registry = registry
        self.check = check

    def register(self, name: str, fn: Callable[..., Any]) -> None:
        from wfgen.local.compute import ComputeError

        def checked(rt: Any, connector_params: Any = None, **args: Any) -> Any:
            problem = self.check(name, args)
            if problem:
                raise ComputeError(400, problem, "invalid").workflow_error()
            return fn(rt, connector_params, **args)

        self.registry.register(name, checked)


def _error_of(info: Any) -> ExecutionError:
    """The engine's ErrorInfo as the service reports it (payload is JSON text)."""
    value = info.to_json()["error"]  # the raised value, JSON-ready
    where = f"step \"{info.step}\"" if info.step else "the execution"
    if info.subworkflow and info.subworkflow != "main":
        where += f" in subworkflow \"{info.subworkflow}\""
    message = value.get("message") if isinstance(value, dict) else value
    return ExecutionError(payload=json.dumps(value, ensure_ascii=False),
                          context=f"{where}: {message}", step=info.step,
                          subworkflow=info.subworkflow)
