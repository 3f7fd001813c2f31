"""The cloud backend's VMs and logs: listing the VMs of an execution, their
serial consoles, deleting them and waiting until they are gone, and following
Cloud Logging. Mixed into wfgen.backends.cloud.CloudBackend."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from wfgen.backends.base import (
    LABEL_EXECUTION,
    LABEL_JOB,
    LABEL_PARENT,
    Execution,
    Vm,
    placement_of,
)
from wfgen.backends.cloud_convert import _entry_text, _vm
from wfgen.backends.cloud_types import (
    LOGS_FILTER,
    LOGS_VM_LABEL,
    ROLE_LOGS,
    ROLE_VM_ADMIN,
    ROLE_VM_VIEW,
    CloudError,
)
from wfgen.errors import UsageError


class CloudVms:
    """VMs, consoles and logs over CloudBackend's clients (a mixin of CloudBackend)."""

    # -- VMs -----------------------------------------------------------------

    def list_vms(self, execution: str | None = None) -> list[Vm]:
        wanted = execution.rsplit("/", 1)[-1] if execution else None
        vms: list[Vm] = []
        # an execution's own VMs, then (a split job's parent) its children's
        for label in (LABEL_EXECUTION, LABEL_PARENT) if wanted else (LABEL_EXECUTION,):
            vms += self._list_labelled(label, wanted, execution)
        if execution is None:
            for vm in vms:
                vm.execution = self._owner(vm)
        return sorted(vms, key=lambda v: (v.created, v.name))

    def _list_labelled(self, label: str, wanted: str | None,
                       execution: str | None) -> list[Vm]:
        """wfgen's VMs (those with a wfgen-execution label), whose `label` is `wanted`."""
        flt = f'labels.{label} = "{wanted}"' if wanted else None
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
                                wanted and vm.labels.get(label) != wanted):
                            continue
                        vm.execution = execution or ""
                        vms.append(vm)
                token = page.get("nextPageToken") or ""
                if not token:
                    break
        return vms

    def _owner(self, vm: Vm) -> str:
        """The execution a VM belongs to: its workflow is the one whose id gives
        the VM's wfgen-job label, in the VM's region (else wfgen's location); a
        split job's task VM (labelled wfgen-parent) belongs to an execution of
        that workflow's shard workflow, NAME-shard."""
        from wfgen.job.render import label_value
        from wfgen.job.render_split import SHARD_SUFFIX

        for location in dict.fromkeys([vm.zone.rsplit("-", 1)[0], self.location]):
            if location not in self._workflow_ids:
                try:
                    names = self.workflows(location)
                except UsageError:  # no such location
                    names = []
                self._workflow_ids[location] = {
                    label_value(n.rsplit("/", 1)[-1]): n for n in names}
            name = self._workflow_ids[location].get(vm.labels.get(LABEL_JOB, ""))
            if name and LABEL_PARENT in vm.labels:
                shard = name + SHARD_SUFFIX
                name = shard if shard in self._workflow_ids[location].values() else ""
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

    def delete_placements(self, execution: str, regions: list[str]) -> list[str]:
        """The execution's compact placement policies in `regions`, deleted (each
        delete waited for: regionOperations.wait)."""
        from google.api_core import exceptions as api

        deleted: list[str] = []
        with self._calling("deleting placement policies", ROLE_VM_ADMIN):
            for region in sorted(set(regions)):
                base = f"{self.compute_url}/projects/{self.project}/regions/{region}"
                found: list[dict[str, Any]] = []
                token = ""
                while True:
                    page = self._http("GET", f"{base}/resourcePolicies",
                                      params={"pageToken": token} if token else {})
                    found += page.get("items") or []
                    token = page.get("nextPageToken") or ""
                    if not token:
                        break
                for policy in found:
                    if not placement_of(policy, execution):
                        continue
                    try:
                        op = self._http("DELETE", f"{base}/resourcePolicies/{policy['name']}")
                    except api.NotFound:
                        continue
                    deadline = time.monotonic() + 120
                    while op.get("status") != "DONE" and time.monotonic() < deadline:
                        op = self._http("POST", f"{base}/operations/{op['name']}/wait")
                    deleted.append(policy["name"])
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
        for _name, line in self.logged_output(ex, skip):
            yield line

    def vm_output(self, execution: Execution, vm: str) -> list[str] | None:
        return [line for _vm, line in self.logged_output(execution, only=vm)]

    def logged_output(self, ex: Execution, skip: set[str] = frozenset(),
                      only: str | None = None) -> Iterator[tuple[str, str]]:
        """(VM, line) of the execution's VMs' output from Cloud Logging: every VM
        whose name carries the execution's tag (NAME-TAG-ATTEMPT, see the
        template) and is not in `skip`; with `only`, that one VM's, by its name
        alone (a split job's VMs carry their child execution's tag, not the
        parent's the follower asks with)."""
        tag = ex.id.replace("-", "")[:12]
        if only:
            flt = f'resource.type="gce_instance" AND labels."{LOGS_VM_LABEL}"="{only}"'
        else:
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
                    if vm not in skip and (vm == only if only else f"-{tag}-" in vm):
                        yield from ((vm, line) for line in _entry_text(entry).splitlines())
                if not page.get("nextPageToken"):
                    return
                body["pageToken"] = page["nextPageToken"]
