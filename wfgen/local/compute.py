"""Local Compute Engine: instances (insert, get, list, aggregatedList, delete,
stop, start, getSerialPortOutput), zone operations, images.getFromFamily and
resource policies (compute_policies.py, with their region operations),
answering with the shapes the real API returns. The engine calls it through
its connector functions (`register`); `wfgen serve` through its REST front
(wfgen.server.compute_api); both see the same instances.

An insert boots a LocalVM (wfgen.local.vm). Statuses go PROVISIONING ->
RUNNING -> STOPPING -> TERMINATED. Everything a VM prints (its startup and
shutdown scripts, the container) lands in its serial console, which is kept
after the VM is deleted so that logs stay readable, as Cloud Logging keeps
them. `scheduling.maxRunDuration` (or `terminationTime`) is enforced: when it
elapses the VM is deleted (or stopped, with instanceTerminationAction STOP),
its shutdown script running first.

Errors: a missing instance is a 404 in the compute legacy error shape
(ComputeError); the connector functions turn it into the engine's HttpError.
Deletes and stops run in the background behind a RUNNING operation, as on the
service; the connector functions wait for it (an operation is DONE when they
return, so polling bills nothing extra).

Faults (wfgen.local.faults) act on the first VM of a run (of a fan-out task: its
wfgen-task label, task 0 unless the fault names one): preempt it after a
delay (the metadata server says preempted, the shutdown script runs, the Spot
VM is deleted), make it vanish without a word, or fail the insert (quota)."""


from __future__ import annotations

import contextlib
import hashlib
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from wfgen.local.capacity import model_of
from wfgen.local.compute_connectors import ComputeConnectors
from wfgen.local.compute_lifecycle import ComputeLifecycle
from wfgen.local.compute_policies import ComputePolicies, policy_link
from wfgen.local.compute_records import (
    API,
    HISTORY,
    NAME_RE,
    OPERATIONS,
    WAIT_MAX_S,
    ComputeError,
    ConsoleLine,
    Instance,
    Notify,
    Operation,
    Output,
    SerialConsole,
    _fingerprint,
    _full_url,
    _link,
    _new_id,
    _now,
    _stamp,
    _task_of,
    not_found,
)
from wfgen.local.faults import Faults
from wfgen.local.host_policy import REFUSED_REASON, REFUSED_STATUS, HostRule
from wfgen.local.vm import LocalVM, shutdown_window

__all__ = ["API", "ComputeError", "ConsoleLine", "Instance", "LocalCompute", "not_found"]


class LocalCompute(ComputeConnectors, ComputeLifecycle, ComputePolicies):
    """Every instance of one local run (or of `wfgen serve`), and the calls over them."""

    def __init__(self, *, notify: Notify | None = None, output: Output | None = None,
                 faults: Faults | None = None, use_container_engine: bool = False,
                 on_host: bool = False, vm_env: dict[str, str] | None = None,
                 project_metadata: dict[str, str] | None = None) -> None:
        self.notify: Notify = notify or (lambda _message: None)
        self.output: Output = output or (lambda _vm, _line: None)
        self.faults = faults or Faults()
        self.capacity = self.faults.capacity()  # stockouts and the flex-start queue
        self.use_container_engine = use_container_engine
        self.host_rule = HostRule(engine=use_container_engine, on_host=on_host)
        self.vm_env = dict(vm_env or {})  # extra environment of every VM's scripts (tests)
        # every VM's project metadata (wfgen-secretmanager-endpoint: where secrets are)
        self.project_metadata = dict(project_metadata or {})
        self.instances: dict[tuple[str, str, str], LocalVM] = {}  # the live ones
        self.records: dict[tuple[str, str, str], Instance] = {}  # the same, as the API shows
        # resource policies (compact placement) by (project, region, name)
        self.policies: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.history: OrderedDict[str, Instance] = OrderedDict()  # by id, deleted ones too
        self.zones: dict[str, set[str]] = {}  # zones each project ever used
        self.all_vms: list[LocalVM] = []
        self.inserts = 0
        self._faults_fired: set[str] = set()
        self.operations: OrderedDict[tuple[str, str, str], Operation] = OrderedDict()
        self._lock = threading.RLock()
        self._op_changed = threading.Condition(self._lock)
        self._timers: list[threading.Timer] = []
        self._seq = 0
        self.closed = False  # set when the run stops: no new VM after that

    # -- operations ------------------------------------------------------
    def _operation(self, kind: str, project: str, zone: str, target: str,
                   target_id: str = "", *, done: bool = True) -> Operation:
        now = time.time()
        name = (f"operation-{int(now * 1000)}-{secrets.token_hex(7)[:13]}-"
                f"{secrets.token_hex(4)}-{secrets.token_hex(4)}")
        resource: dict[str, Any] = {
            "kind": "compute#operation", "id": _new_id(), "name": name,
            "operationType": kind, "status": "RUNNING", "progress": 0,
            "zone": _link(project, zone),
            "targetLink": _link(project, zone, "instances", target),
            "user": "wfgen-serve@local", "insertTime": _stamp(now), "startTime": _stamp(now),
            "selfLink": _link(project, zone, "operations", name),
        }
        if target_id:
            resource["targetId"] = target_id
        op = Operation(resource)
        with self._lock:
            self.operations[(project, zone, name)] = op
            while len(self.operations) > OPERATIONS:
                self.operations.popitem(last=False)
        if done:
            self._finish(op)
        return op

    def _finish(self, op: Operation, error: ComputeError | None = None,
                errors: list[dict[str, Any]] | None = None) -> None:
        """Mark DONE; a failed operation carries `error` (or the `errors` given,
        with their errorDetails, as a capacity refusal has them)."""
        with self._lock:
            op.resource.update(status="DONE", progress=100, endTime=_now())
            if error is not None:
                op.resource.update(httpErrorStatusCode=error.status,
                                   httpErrorMessage=HTTPStatus(error.status).phrase.upper(),
                                   error={"errors": errors or [{"code": error.reason,
                                                                "message": error.message}]})
            op.done.set()
            self._op_changed.notify_all()

    def _in_background(self, op: Operation, work: Callable[[], None]) -> None:
        def run() -> None:
            try:
                work()
            finally:
                self._finish(op)

        threading.Thread(target=run, daemon=True,
                         name=f"compute-{op.resource['operationType']}").start()

    def get_operation(self, project: str, zone: str, name: str) -> dict[str, Any]:
        with self._lock:
            op = self.operations.get((project, zone, name))
            if op is None:
                raise not_found(f"projects/{project}/zones/{zone}/operations/{name}")
            return dict(op.resource)

    def wait_operation(self, project: str, zone: str, name: str,
                       timeout: float = WAIT_MAX_S) -> dict[str, Any]:
        """zoneOperations.wait: until DONE or `timeout` s, then the operation."""
        with self._lock:
            op = self.operations.get((project, zone, name))
            if op is None:
                raise not_found(f"projects/{project}/zones/{zone}/operations/{name}")
        op.done.wait(timeout)
        return self.get_operation(project, zone, name)

    # -- lookups ---------------------------------------------------------
    def _find(self, project: str, zone: str, instance: str) -> Instance:
        with self._lock:
            record = self.records.get((project, zone, instance))
        if record is None:
            raise not_found(f"projects/{project}/zones/{zone}/instances/{instance}")
        return record

    def find_record(self, project: str, zone: str, name: str) -> Instance | None:
        """The instance of that name, live or (most recently) deleted."""
        with self._lock:
            live = self.records.get((project, zone, name))
            if live is not None:
                return live
            for record in reversed(self.history.values()):
                if record.key == (project, zone, name):
                    return record
        return None

    def console(self, project: str, zone: str, name: str) -> str:
        """All a VM printed on its console (kept after it is deleted); "" if unknown."""
        record = self.find_record(project, zone, name)
        return record.console.text() if record else ""

    def known_instances(self) -> list[Instance]:
        """Live instances and the last HISTORY deleted ones, oldest first."""
        with self._lock:
            return list(self.history.values())

    # -- the API's calls -------------------------------------------------
    def insert_instance(self, project: str, zone: str, body: Any) -> dict[str, Any]:
        """instances.insert: boots the VM; the operation (DONE, or failed by a fault)."""
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise ComputeError(400, "Invalid value for field 'resource.name': ''. "
                               "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'",
                               "invalid")
        name = body["name"]
        task = _task_of(body)
        if not NAME_RE.fullmatch(name):
            raise ComputeError(400, f"Invalid value for field 'resource.name': '{name}'. Must "
                               "be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'",
                               "invalid")
        with self._lock:
            if self.closed:
                raise ComputeError(503, "the local service is stopping: no new VM",
                                   "backendError")
            self.inserts += 1
            if (project, zone, name) in self.records:
                raise ComputeError(409, f"The resource 'projects/{project}/zones/{zone}/"
                                   f"instances/{name}' already exists", "alreadyExists")
        self.check_instance_policies(project, zone, body)  # wfgen.local.compute_policies
        refusal = self.capacity.refusal(project, zone, body)
        if refusal is not None:  # wfgen.local.capacity: this zone is out for this model
            self.notify(f"insert of {name} in {zone} refused: no capacity (stockout emulation)")
            op = self._operation("insert", project, zone, name, done=False)
            self._finish(op, ComputeError(refusal.status, refusal.message, refusal.code),
                         refusal.errors())
            return dict(op.resource)
        if self.faults.fail_insert and self._claim("insert-fail", task):
            self.notify(f"insert of {name} fails (fault injection: {self.faults.fail_insert})")
            op = self._operation("insert", project, zone, name, done=False)
            code = re.match(r"[A-Z][A-Z_]+(?=:)", self.faults.fail_insert)
            reason = code.group(0) if code else "QUOTA_EXCEEDED"
            status = 503 if "EXHAUSTED" in reason or "STOCKOUT" in reason else 403
            self._finish(op, ComputeError(status, self.faults.fail_insert, reason))
            return dict(op.resource)
        items = (body.get("metadata") or {}).get("items") or []
        metadata = {str(i.get("key")): str(i.get("value")) for i in items if isinstance(i, dict)}
        refused, notice = self.host_rule.check(name, metadata)  # wfgen.local.host_policy
        if refused:
            self.notify(f"insert of {name} refused: {refused}")
            op = self._operation("insert", project, zone, name, done=False)
            self._finish(op, ComputeError(REFUSED_STATUS, refused, REFUSED_REASON))
            return dict(op.resource)
        if notice:
            self.notify(notice)
        console = SerialConsole()
        vm = LocalVM(name, zone, project, metadata, output=self._printer(name, console),
                     notify=self.notify, use_container_engine=self.use_container_engine,
                     extra_env=self.vm_env, project_metadata=self.project_metadata,
                     service_account=_service_account(body))
        vm.shutdown_window_s = shutdown_window(body)
        record = Instance(project, zone, name, _new_id(), body, vm, vm.created, console)
        with self._lock:
            self.instances[record.key] = vm
            self.records[record.key] = record
            self.history[record.id] = record
            self.zones.setdefault(project, set()).add(zone)
            self._trim_history()
            self.all_vms.append(vm)
        if model_of(body) == "FLEX_START":  # queued: PENDING until the queue answers
            vm.status = "PENDING"
            self.notify(f"VM {name} waiting for capacity (flex-start) since "
                        f"{time.strftime('%H:%M:%SZ', time.gmtime())}")
            self._later(self.capacity.flex_wait_s, self._flex_answer, record)
            return dict(self._operation("insert", project, zone, name, record.id).resource)
        vm.boot()
        record.last_start = time.time()
        self._arm_deadline(record)
        self.notify(f"VM {name} created (attempt {metadata.get('wfgen-attempt', '?')})")
        # the first VM that boots (of the fault's task), even when an insert failed
        self._arm_faults(project, zone, vm, task)
        return dict(self._operation("insert", project, zone, name, record.id).resource)

    def _flex_answer(self, record: Instance) -> None:
        """The flex-start queue's answer: capacity (the VM boots), or it gives up
        (the PENDING VM goes away without ever running)."""
        with self._lock:
            if self.records.get(record.key) is not record or record.vm.status != "PENDING":
                return
            if not self.capacity.grants_flex(record.zone):
                self._take(*record.key)
        if not self.capacity.grants_flex(record.zone):
            self.notify(f"flex-start request for {record.name} in {record.zone} given up: "
                        "no capacity (stockout emulation)")
            self._destroy(record.vm)
            return
        record.vm.status = "PROVISIONING"
        record.vm.boot()
        record.last_start = time.time()
        self._arm_deadline(record)
        self.notify(f"VM {record.name} created (attempt "
                    f"{record.vm.metadata.attributes.get('wfgen-attempt', '?')}; flex-start "
                    "capacity granted)")
        self._arm_faults(record.project, record.zone, record.vm, _task_of(record.body))

    def _printer(self, name: str, console: SerialConsole) -> Callable[[str, str], None]:
        def printed(vm_name: str, line: str) -> None:
            with self._lock:
                self._seq += 1
                seq = self._seq
            console.append(seq, time.time(), line)
            self.output(vm_name, line)

        del name
        return printed

    def _trim_history(self) -> None:
        """Forget the oldest deleted VMs past HISTORY (live ones always stay)."""
        if len(self.history) - len(self.records) <= HISTORY:  # (no list made per delete)
            return
        dead = [key for key, rec in self.history.items() if rec.deleted is not None]
        for key in dead[:max(0, len(dead) - HISTORY)]:
            del self.history[key]

    def get_instance(self, project: str, zone: str, name: str) -> dict[str, Any]:
        return self.describe(self._find(project, zone, name))

    def list_instances(self, project: str, zone: str | None = None) -> list[dict[str, Any]]:
        """The live instances of a project (of one zone), sorted by zone and name."""
        with self._lock:
            records = [r for r in self.records.values() if r.project == project
                       and (zone is None or r.zone == zone)]
        records.sort(key=lambda r: (r.zone, r.name))
        return [self.describe(r) for r in records]

    def delete_instance(self, project: str, zone: str, name: str) -> dict[str, Any]:
        """instances.delete: as on Compute Engine, the VM shows STOPPING ("being
        deleted or killed") while its shutdown script runs, behind a RUNNING
        operation, and is gone from the API when the operation is DONE; so its
        console can be read to the last line before it goes."""
        with self._lock:
            record = self._find(project, zone, name)
            record.busy = True
            if record.timer is not None:
                record.timer.cancel()
        op = self._operation("delete", project, zone, name, record.id, done=False)

        def delete() -> None:
            record.vm.power_off(run_shutdown=True)
            with contextlib.suppress(ComputeError), self._lock:  # taken meanwhile?
                if self.records.get(record.key) is record:
                    self._take(project, zone, name)
            self._end(record, run_shutdown=False)

        self._in_background(op, delete)
        return dict(op.resource)

    def _take(self, project: str, zone: str, name: str) -> Instance:
        """Remove a live instance from the API's view (the caller then ends it)."""
        with self._lock:
            record = self.records.pop((project, zone, name), None)
            if record is None:
                raise not_found(f"projects/{project}/zones/{zone}/instances/{name}")
            self.instances.pop(record.key, None)
            record.deleted = time.time()
            if record.timer is not None:
                record.timer.cancel()
            self._trim_history()
        return record

    def _end(self, record: Instance, *, run_shutdown: bool, hard: bool = False) -> None:
        if record.vm.status == "PENDING":  # never booted: nothing runs, no shutdown script
            run_shutdown = False
        record.vm.power_off(run_shutdown=run_shutdown, hard=hard)
        self._destroy(record.vm)
        record.last_stop = record.last_stop or time.time()
        self.notify(f"VM {record.name} deleted")

    def stop_instance(self, project: str, zone: str, name: str) -> dict[str, Any]:
        """instances.stop: the shutdown script runs, then TERMINATED (kept, restartable)."""
        record = self._find(project, zone, name)
        op = self._operation("stop", project, zone, name, record.id, done=False)
        if record.vm.status == "TERMINATED":
            self._finish(op)
            return dict(op.resource)
        with self._lock:
            if record.timer is not None:
                record.timer.cancel()
            record.busy = True  # shown as STOPPING while the shutdown script runs

        def stop() -> None:
            try:
                record.vm.power_off(run_shutdown=True)
            finally:
                record.busy = False
            record.last_stop = time.time()
            self.notify(f"VM {name} stopped")

        self._in_background(op, stop)
        return dict(op.resource)

    def start_instance(self, project: str, zone: str, name: str) -> dict[str, Any]:
        """instances.start: a TERMINATED VM boots again (its startup script reruns)."""
        record = self._find(project, zone, name)
        if record.vm.status == "TERMINATED":
            record.vm.status = "PROVISIONING"
            record.vm.boot()  # a restart: the startup script runs again, as on a real VM
            record.last_start = time.time()
            self._arm_deadline(record)
            self.notify(f"VM {name} started")
        return dict(self._operation("start", project, zone, name, record.id).resource)

    def serial_port_output(self, project: str, zone: str, name: str,
                           start: int | None = None, port: int = 1) -> dict[str, Any]:
        """instances.getSerialPortOutput of a live VM (port 1 holds everything)."""
        record = self._find(project, zone, name)
        contents, begin, end = record.console.read(start) if port == 1 else ("", 0, 0)
        return {"kind": "compute#serialPortOutput", "contents": contents,
                "start": str(begin), "next": str(end),
                "selfLink": _link(project, zone, "instances", name, f"serialPort?port={port}")}

    def image_from_family(self, project: str, family: str) -> dict[str, Any]:
        name = f"{family}-local"
        return {"kind": "compute#image", "id": str(10**18 + int(
                    hashlib.sha256(f"{project}/{family}".encode()).hexdigest()[:15], 16)),
                "name": name, "family": family, "status": "READY",
                "creationTimestamp": "2024-01-01T00:00:00.000+00:00",
                "sourceType": "RAW", "diskSizeGb": "10", "architecture": "X86_64",
                "selfLink": f"{API}/projects/{project}/global/images/{name}"}

    # -- the Instance resource -------------------------------------------
    def describe(self, record: Instance) -> dict[str, Any]:
        """The Instance resource: the insert body, normalised to full URLs, plus
        what the service adds (id, status, timestamps, IPs, fingerprints)."""
        body, project, zone = record.body, record.project, record.zone
        status = record.vm.status
        if record.busy and status not in ("TERMINATED",):
            status = "STOPPING"
        number = int(record.id) % 250 + 2
        interfaces = []
        for index, nic in enumerate(body.get("networkInterfaces") or [{}]):
            nic = nic if isinstance(nic, dict) else {}
            item: dict[str, Any] = {
                "kind": "compute#networkInterface", "name": f"nic{index}",
                "network": _full_url(project, nic.get("network"), "global/networks/default"),
                "networkIP": f"10.128.{index}.{number}", "stackType": "IPV4_ONLY",
                "fingerprint": _fingerprint((record.id, index)),
            }
            if nic.get("subnetwork"):
                item["subnetwork"] = _full_url(project, nic["subnetwork"], "")
            configs = [c for c in nic.get("accessConfigs") or [] if isinstance(c, dict)]
            if configs:
                item["accessConfigs"] = [{
                    "kind": "compute#accessConfig", "type": c.get("type", "ONE_TO_ONE_NAT"),
                    "name": c.get("name", "External NAT"), "networkTier": "PREMIUM",
                    **({"natIP": f"203.0.113.{number}"} if status == "RUNNING" else {}),
                } for c in configs]
            interfaces.append(item)
        disks = []
        for index, disk in enumerate(body.get("disks") or [{"boot": True}]):
            disk = disk if isinstance(disk, dict) else {}
            params = disk.get("initializeParams") or {}
            disk_name = record.name if index == 0 else f"{record.name}-{index}"
            disks.append({
                "kind": "compute#attachedDisk", "type": "PERSISTENT", "mode": "READ_WRITE",
                "source": _link(project, zone, "disks", disk_name),
                "deviceName": disk.get("deviceName") or f"persistent-disk-{index}",
                "index": index, "boot": bool(disk.get("boot", index == 0)),
                "autoDelete": bool(disk.get("autoDelete", True)), "interface": "SCSI",
                "diskSizeGb": str(params.get("diskSizeGb") or "10"),
            })
        metadata_items = (body.get("metadata") or {}).get("items") or []
        scheduling = dict(body.get("scheduling") or {})
        model = scheduling.get("provisioningModel", "SPOT" if scheduling.get("preemptible")
                               else "STANDARD")
        scheduling.setdefault("provisioningModel", model)
        scheduling.setdefault("preemptible", model == "SPOT")
        scheduling.setdefault("onHostMaintenance", "TERMINATE" if model == "SPOT" else "MIGRATE")
        scheduling.setdefault("automaticRestart", model != "SPOT")
        labels = record.labels
        resource: dict[str, Any] = {
            "kind": "compute#instance", "id": record.id, "name": record.name,
            "creationTimestamp": _stamp(record.created),
            "description": str(body.get("description") or ""),
            "status": status, "zone": _link(project, zone),
            "machineType": _full_url(project, body.get("machineType"),
                                     f"zones/{zone}/machineTypes/n1-standard-1"),
            "cpuPlatform": "Intel Broadwell" if status == "RUNNING" else "Unknown CPU Platform",
            "canIpForward": bool(body.get("canIpForward", False)),
            "networkInterfaces": interfaces, "disks": disks,
            "metadata": {"kind": "compute#metadata", "items": metadata_items,
                         "fingerprint": record.metadata_fingerprint},
            "serviceAccounts": body.get("serviceAccounts") or [],
            "scheduling": scheduling, "labels": labels,
            "labelFingerprint": _fingerprint(sorted(labels.items())),
            "fingerprint": _fingerprint((record.id, status)),
            "deletionProtection": bool(body.get("deletionProtection", False)),
            "startRestricted": False,
            "selfLink": _link(project, zone, "instances", record.name),
        }
        for key in ("tags", "guestAccelerators", "shieldedInstanceConfig", "hostname",
                    "reservationAffinity"):
            if key in body:
                resource[key] = body[key]
        if isinstance(body.get("resourcePolicies"), list):
            region = zone.rpartition("-")[0]
            resource["resourcePolicies"] = [
                _full_url(project, p, "") if "/" in p else policy_link(project, region, p)
                for p in body["resourcePolicies"]]
        for key in ("guestAccelerators",):
            for acc in resource.get(key) or []:
                if isinstance(acc, dict) and "acceleratorType" in acc:
                    acc["acceleratorType"] = _full_url(project, acc["acceleratorType"], "")
        if record.last_start:
            resource["lastStartTimestamp"] = _stamp(record.last_start)
        if record.last_stop:
            resource["lastStopTimestamp"] = _stamp(record.last_stop)
        return resource


def _service_account(body: dict[str, Any]) -> str | None:
    """The VM's service account (its token's identity), None for the default."""
    accounts = body.get("serviceAccounts")
    email = accounts[0].get("email") if isinstance(accounts, list) and accounts and (
        isinstance(accounts[0], dict)) else None
    return email if isinstance(email, str) and "@" in email else None
