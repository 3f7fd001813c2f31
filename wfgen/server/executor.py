"""Runs executions for `wfgen serve`: many at once, each on its own thread,
sharing one local Compute Engine (every VM of every execution) and one
callback hub served on serve's own REST port with the real URL shape.

It has the shape of the local backend's `start_source`/`cancel`/`shutdown`
so that the API fronts do not care which one runs them."""

from __future__ import annotations

import email.message
import io
import threading
from collections.abc import Callable
from typing import Any

from wfgen.backends.base import ACTIVE, Execution, ExecutionError
from wfgen.engine import load_workflow, prepare
from wfgen.engine.connectors import ConnectorRegistry
from wfgen.engine.runtime import ErrorInfo
from wfgen.engine.services import RealClock, Services, default_env
from wfgen.engine.tree import Workflow
from wfgen.engine.values import to_json_compatible
from wfgen.local.callbacks import CallbackServer
from wfgen.local.compute import LocalCompute
from wfgen.local.loopback import Request, Response
from wfgen.server import wire

OnEnd = Callable[[Execution], None]
Notify = Callable[[str], None]


class CallbackHub(CallbackServer):
    """The callbacks of every execution, answered on serve's REST port."""

    def __init__(self, check_token: Callable[[str], bool], base_url: Callable[[], str]) -> None:
        super().__init__(check_token)
        self._base_url = base_url

    @property
    def base_url(self) -> str:  # type: ignore[override]
        return self._base_url()

    def handle(self, request: Request) -> Response | None:
        if "/callbacks/" not in request.path or request.path not in self._endpoints:
            return None
        status, payload = self._receive(_HandlerView(request), request.method)
        return Response.of_json(payload, status)

    def list_for(self, execution: str) -> list[dict[str, Any]]:
        """The callbacks.list view of one execution's endpoints."""
        prefix = f"/v1/{execution}/callbacks/"
        with self._lock:
            found = [(p, e) for p, e in self._endpoints.items() if p.startswith(prefix)]
        return [{"name": path[len("/v1/"):], "method": e.method, "waiters": "0",
                 "availablePayloads": [_payload_text(x) for x in list(e.held.queue)]}
                for path, e in found]


def _payload_text(event: dict[str, Any]) -> str:
    import json

    return json.dumps(event.get("http_request", {}).get("body"), ensure_ascii=False)


class _HandlerView:
    """What CallbackServer._receive reads of an HTTP handler, from a Request."""

    def __init__(self, request: Request) -> None:
        self.path = request.path + ("?" + "&".join(
            f"{k}={v}" for k, vs in request.query.items() for v in vs) if request.query else "")
        self.headers = email.message.Message()
        for name, value in request.headers.items():
            self.headers[name] = value
        self.rfile = io.BytesIO(request.body)


class _Running:
    def __init__(self, record: Execution, engine: Any, on_end: OnEnd | None) -> None:
        self.record = record
        self.engine = engine
        self.on_end = on_end


class Executor:
    """Runs workflow sources as named executions on the local runtime."""

    def __init__(self, base_url: Callable[[], str], *, use_container_engine: bool = False,
                 notify: Notify | None = None, vm_env: dict[str, str] | None = None) -> None:
        self.notify = notify or (lambda _line: None)
        self.compute = LocalCompute(notify=self.notify, output=lambda _vm, _line: None,
                                    use_container_engine=use_container_engine, vm_env=vm_env)
        self.callbacks = CallbackHub(self._token_ok, base_url)
        self.registry = ConnectorRegistry()
        self.compute.register(self.registry)
        self.registry.register("events.create_callback_endpoint", self._create_endpoint)
        self.registry.register("events.await_callback", self._await_callback)
        self._running: dict[str, _Running] = {}
        self._parsed: dict[str, Workflow] = {}
        self._lock = threading.Lock()
        self.closed = False

    # -- connectors ------------------------------------------------------------
    def _token_ok(self, token: str) -> bool:
        return any(vm.metadata.check_token(token) for vm in list(self.compute.all_vms))

    def _create_endpoint(self, rt: Any, connector_params: Any = None,
                         http_callback_method: str = "POST", **_: Any) -> dict[str, Any]:
        return self.callbacks.create_endpoint(rt.env, http_callback_method)

    def _await_callback(self, rt: Any, connector_params: Any = None, callback: Any = None,
                        timeout: float = 43200, **_: Any) -> Any:
        return self.callbacks.await_request(callback, timeout, getattr(rt, "cancel_event", None))

    _await_callback.bills_external = True  # type: ignore[attr-defined]

    # -- executions ------------------------------------------------------------
    def _parse(self, source: str, workflow_id: str) -> Workflow:
        wf = self._parsed.get(source)
        if wf is None:
            wf = load_workflow(source, workflow_id)
            if len(self._parsed) > 256:
                self._parsed.clear()
            self._parsed[source] = wf
        return wf

    def start_source(self, name: str, source: str, argument: Any, *, revision_id: str = "",
                     on_end: OnEnd | None = None, start_time: str = "") -> Execution:
        parts = name.split("/")  # projects/P/locations/L/workflows/W/executions/E
        project, location, workflow_id, execution_id = parts[1], parts[3], parts[5], parts[7]
        wf = self._parse(source, workflow_id)
        env = default_env(project_id=project, location=location, workflow_id=workflow_id,
                          revision_id=revision_id or "000001-000", execution_id=execution_id,
                          service_account=f"{project}-compute@developer.gserviceaccount.com")
        services = Services(clock=RealClock(), env=env)
        engine = prepare(wf, services=services, connectors=self.registry)
        record = Execution(name=name, state=ACTIVE, argument=argument,
                           start_time=start_time or wire.now()[1], revision_id=revision_id)
        running = _Running(record, engine, on_end)
        with self._lock:
            if self.closed:
                raise RuntimeError("serve is stopping")
            self._running[name] = running
        threading.Thread(target=self._run, args=(running,), name=f"wfgen-exec-{execution_id}",
                         daemon=True).start()
        return record

    def _run(self, running: _Running) -> None:
        record = running.record
        try:
            outcome = running.engine.run(record.argument)
            record.state = outcome.state
            record.result = outcome.result
            record.steps = (outcome.steps_internal, outcome.steps_external)
            if outcome.state != "SUCCEEDED" and outcome.error is not None:
                record.error = _error(outcome.error)
        except BaseException as exc:  # never lose an execution to a bug: it FAILED
            record.state = "FAILED"
            record.error = ExecutionError(
                payload=_json({"message": f"internal error: {type(exc).__name__}: {exc}",
                               "tags": ["InternalError"]}),
                context=f"internal error: {exc}")
        record.end_time = wire.now()[1]
        with self._lock:
            self._running.pop(record.name, None)
        if running.on_end is not None:
            running.on_end(record)

    def cancel(self, name: str) -> bool:
        """Ask a running execution to stop (its VMs stay, as on Google Cloud)."""
        with self._lock:
            running = self._running.get(name)
        if running is None:
            return False
        running.engine.cancel()
        return True

    def active(self) -> list[str]:
        with self._lock:
            return list(self._running)

    def shutdown(self, wait: float = 10.0) -> list[str]:
        """Cancel every execution, let them end, delete every VM; the VMs' names."""
        with self._lock:
            self.closed = True
            running = list(self._running.values())
        for each in running:
            each.engine.cancel()
        left = self.compute.shutdown_all()
        done = threading.Event()

        def watch() -> None:
            while self.active():
                if done.wait(0.05):
                    return
            done.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        done.wait(wait)
        done.set()
        return left


def _json(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _error(error: ErrorInfo) -> ExecutionError:
    try:
        value = to_json_compatible(error.value)
    except Exception:
        value = repr(error.value)
    tags = error.tags
    message = error.message
    head = f"{tags[0]}: {message}" if tags else message
    where = f'in step "{error.step}", routine "{error.subworkflow or "main"}"' if error.step \
        else f'in routine "{error.subworkflow or "main"}"'
    return ExecutionError(payload=_json(value), context=f"{head}\n{where}", step=error.step,
                          subworkflow=error.subworkflow or "main")
