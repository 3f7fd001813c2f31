"""Local Compute Engine for the engine: `instances.insert/get/delete/stop/start`
and `images.getFromFamily`, answering with the shapes the real API returns.

An insert boots a LocalVM (wfgen.local.vm). Statuses go PROVISIONING ->
RUNNING -> STOPPING -> TERMINATED; a missing instance is an HTTP 404 error; a
failed operation raises OperationError. Long-running calls finish at once here
(their operation is DONE when returned), so polling bills nothing extra.

Faults (wfgen.local.faults) act on the first VM of a run: preempt it after a
delay (the metadata server says preempted, the shutdown script runs, the Spot
VM is deleted), make it vanish without a word, or fail the insert (quota)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from wfgen.engine.errors import make_error
from wfgen.local.faults import Faults
from wfgen.local.vm import LocalVM

Notify = Callable[[str], None]
API = "https://www.googleapis.com/compute/v1"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _not_found(kind: str, name: str) -> Exception:
    message = f"The resource '{name}' of type '{kind}' was not found"
    return make_error("HttpError", message, code=404,
                      body={"error": {"code": 404, "message": message,
                                      "errors": [{"reason": "notFound", "message": message}]}},
                      headers={})


def _task_of(body: dict[str, Any]) -> int | None:
    """The fan-out task of a VM (its wfgen-task label), None for a single job."""
    task = (body.get("labels") or {}).get("wfgen-task")
    return int(task) if isinstance(task, str) and task.isdigit() else None


class LocalCompute:
    """The instances of one local run, and the connector functions over them."""

    def __init__(self, *, notify: Notify, output: Callable[[str, str], None],
                 faults: Faults | None = None, use_container_engine: bool = False,
                 vm_env: dict[str, str] | None = None) -> None:
        self.notify = notify
        self.output = output
        self.faults = faults or Faults()
        self.use_container_engine = use_container_engine
        self.vm_env = dict(vm_env or {})
        self.instances: dict[tuple[str, str, str], LocalVM] = {}
        self.all_vms: list[LocalVM] = []
        self.inserts = 0
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        self.closed = False  # set when the run stops: no new VM after that

        self.deleted_at: dict[str, float] = {}
        self._faults_fired: set[str] = set()

    # -- helpers ---------------------------------------------------------
    def _operation(self, kind: str, project: str, zone: str, target: str) -> dict[str, Any]:
        op = f"operation-{int(time.time() * 1000)}-{uuid.uuid4().hex[:12]}"
        return {
            "kind": "compute#operation", "id": str(uuid.uuid4().int % 10**19), "name": op,
            "operationType": kind, "status": "DONE", "progress": 100,
            "zone": f"{API}/projects/{project}/zones/{zone}",
            "targetLink": f"{API}/projects/{project}/zones/{zone}/instances/{target}",
            "selfLink": f"{API}/projects/{project}/zones/{zone}/operations/{op}",
            "insertTime": _now(), "startTime": _now(), "endTime": _now(),
        }

    def _find(self, project: str, zone: str, instance: str) -> LocalVM:
        vm = self.instances.get((project, zone, instance))
        if vm is None:
            raise _not_found("gce_instance",
                             f"projects/{project}/zones/{zone}/instances/{instance}")
        return vm

    # -- connectors ------------------------------------------------------
    def insert(self, rt: Any, connector_params: dict[str, Any] | None = None, *,
               project: str, zone: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise make_error("HttpError", "Invalid value for field 'resource.name'", code=400)
        name = body["name"]
        task = _task_of(body)
        with self._lock:
            if self.closed:
                raise make_error("OperationError", "the local run is stopping: no new VM")
            self.inserts += 1
            if (project, zone, name) in self.instances:
                message = f"The resource 'projects/{project}/zones/{zone}/instances/{name}' " \
                          "already exists"
                raise make_error("HttpError", message, code=409)
        if self.faults.fail_insert and self._claim("insert-fail", task):
            self.notify(f"insert of {name} fails (fault injection: {self.faults.fail_insert})")
            operation = self._operation("insert", project, zone, name)
            operation["error"] = {"errors": [{"code": "QUOTA_EXCEEDED",
                                              "message": self.faults.fail_insert}]}
            raise make_error("OperationError", self.faults.fail_insert, operation=operation)
        items = (body.get("metadata") or {}).get("items") or []
        metadata = {str(i.get("key")): str(i.get("value")) for i in items if isinstance(i, dict)}
        vm = LocalVM(name, zone, project, metadata, output=self.output, notify=self.notify,
                     use_container_engine=self.use_container_engine, extra_env=self.vm_env)
        vm.body = body  # type: ignore[attr-defined]
        with self._lock:
            self.instances[(project, zone, name)] = vm
            self.all_vms.append(vm)
        vm.boot()
        self.notify(f"VM {name} created (attempt {metadata.get('wfgen-attempt', '?')})")
        # the first VM that boots (of the fault's task), even when an insert failed
        self._arm_faults(project, zone, vm, task)
        return self._operation("insert", project, zone, name)

    def get(self, rt: Any, connector_params: dict[str, Any] | None = None, *,
            project: str, zone: str, instance: str, **_: Any) -> dict[str, Any]:
        vm = self._find(project, zone, instance)
        body = getattr(vm, "body", {})
        return {
            "kind": "compute#instance", "name": vm.name, "status": vm.status,
            "zone": f"{API}/projects/{project}/zones/{zone}",
            "selfLink": f"{API}/projects/{project}/zones/{zone}/instances/{vm.name}",
            "creationTimestamp": datetime.fromtimestamp(vm.created, UTC).isoformat(),
            "labels": body.get("labels", {}), "machineType": body.get("machineType", ""),
            "scheduling": body.get("scheduling", {}),
        }

    def delete(self, rt: Any, connector_params: dict[str, Any] | None = None, *,
               project: str, zone: str, instance: str, **_: Any) -> dict[str, Any]:
        vm = self._find(project, zone, instance)
        with self._lock:
            self.instances.pop((project, zone, instance), None)
        vm.power_off(run_shutdown=True)
        vm.destroy()
        self.deleted_at[instance] = time.time()
        self.notify(f"VM {instance} deleted")
        return self._operation("delete", project, zone, instance)

    def stop(self, rt: Any, connector_params: dict[str, Any] | None = None, *,
             project: str, zone: str, instance: str, **_: Any) -> dict[str, Any]:
        vm = self._find(project, zone, instance)
        vm.power_off(run_shutdown=True)
        return self._operation("stop", project, zone, instance)

    def start(self, rt: Any, connector_params: dict[str, Any] | None = None, *,
              project: str, zone: str, instance: str, **_: Any) -> dict[str, Any]:
        vm = self._find(project, zone, instance)
        if vm.status == "TERMINATED":
            vm.status = "PROVISIONING"
            vm.boot()  # a restart: the startup script runs again, as on a real VM
        return self._operation("start", project, zone, instance)

    def get_image_from_family(self, rt: Any, connector_params: dict[str, Any] | None = None,
                              *, project: str, family: str, **_: Any) -> dict[str, Any]:
        name = f"{family}-local"
        return {"kind": "compute#image", "name": name, "family": family, "status": "READY",
                "selfLink": f"{API}/projects/{project}/global/images/{name}"}

    def register(self, registry: Any) -> None:
        prefix = "googleapis.compute.v1."
        registry.register(prefix + "instances.insert", self.insert)
        registry.register(prefix + "instances.get", self.get)
        registry.register(prefix + "instances.delete", self.delete)
        registry.register(prefix + "instances.stop", self.stop)
        registry.register(prefix + "instances.start", self.start)
        registry.register(prefix + "images.getFromFamily", self.get_image_from_family)

    # -- faults and teardown ---------------------------------------------
    def _claim(self, fault: str, task: int | None) -> bool:
        """Whether `fault` acts on this VM: the first of its task (a job without
        tasks: the first of the run), once."""
        with self._lock:
            if fault in self._faults_fired or task not in (None, self.faults.task_of(fault)):
                return False
            self._faults_fired.add(fault)
            return True

    def _arm_faults(self, project: str, zone: str, vm: LocalVM, task: int | None) -> None:
        if self.faults.preempt_after is not None and self._claim("preempt", task):
            self._later(self.faults.preempt_after, self._preempt, project, zone, vm)
        if self.faults.vanish_after is not None and self._claim("vanish", task):
            self._later(self.faults.vanish_after, self._vanish, project, zone, vm)

    def _later(self, delay: float, fn: Callable[..., None], *args: Any) -> None:
        timer = threading.Timer(delay, fn, args)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _preempt(self, project: str, zone: str, vm: LocalVM) -> None:
        if self.instances.get((project, zone, vm.name)) is not vm:
            return
        self.notify(f"VM {vm.name} preempted (fault injection)")
        vm.metadata.set_preempted(True)
        vm.power_off(run_shutdown=True)  # Spot + DELETE: shutdown script, then gone
        with self._lock:
            self.instances.pop((project, zone, vm.name), None)
        vm.destroy()

    def _vanish(self, project: str, zone: str, vm: LocalVM) -> None:
        if self.instances.get((project, zone, vm.name)) is not vm:
            return
        self.notify(f"VM {vm.name} vanished without a word (fault injection)")
        with self._lock:
            self.instances.pop((project, zone, vm.name), None)
        vm.power_off(run_shutdown=False, hard=True)
        vm.destroy()

    def shutdown_all(self) -> list[str]:
        """Delete every VM still there (Ctrl-C, errors); names of those deleted."""
        with self._lock:
            self.closed = True
        for timer in self._timers:
            timer.cancel()
        with self._lock:
            left = list(self.instances.items())
            self.instances.clear()

        def end(vm: LocalVM) -> None:
            vm.power_off(run_shutdown=True)
            vm.destroy()

        workers = [threading.Thread(target=end, args=(vm,)) for _key, vm in left]
        for worker in workers:  # in parallel: each shutdown script may take seconds
            worker.start()
        for worker in workers:
            worker.join()
        for vm in self.all_vms:
            vm.destroy()
        return [vm.name for _key, vm in left]

    def hurry_up(self) -> None:
        """A second stop signal: cut every running shutdown script short."""
        for vm in list(self.all_vms):
            vm.hurry.set()

    def any_process_alive(self) -> bool:
        return any(vm.processes_alive() for vm in self.all_vms)
