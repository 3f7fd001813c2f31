"""How local VMs end besides a delete call: maxRunDuration/terminationTime,
injected faults (preempt, vanish) and teardown when a run stops. Mixed into
wfgen.local.compute.LocalCompute."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from wfgen.local.compute_records import ComputeError, Instance, _duration_s, _parse_time
from wfgen.local.vm import LocalVM


class ComputeLifecycle:
    """Deadlines, faults and teardown of LocalCompute's VMs (a mixin of LocalCompute)."""

    # -- maxRunDuration --------------------------------------------------
    def _arm_deadline(self, record: Instance) -> None:
        """Compute Engine ends a VM whose maxRunDuration (counted from RUNNING) or
        terminationTime passes, whatever else happens (a cancelled execution)."""
        scheduling = record.body.get("scheduling") or {}
        if not isinstance(scheduling, dict):
            return
        delay = _duration_s(scheduling.get("maxRunDuration"))
        when = scheduling.get("terminationTime")
        if isinstance(when, str) and (at := _parse_time(when)) is not None:
            left = at - time.time()
            delay = left if delay is None else min(delay, left)
        if delay is None:
            return
        timer = threading.Timer(max(delay, 0.0), self._deadline, (record,))
        timer.daemon = True
        with self._lock:
            if record.timer is not None:
                record.timer.cancel()
            record.timer = timer
            self._timers.append(timer)
        timer.start()

    def _deadline(self, record: Instance) -> None:
        with self._lock:
            if self.records.get(record.key) is not record:
                return
        action = str((record.body.get("scheduling") or {}).get("instanceTerminationAction")
                     or "STOP").upper()
        self.notify(f"VM {record.name} reached its maxRunDuration: "
                    f"{'stopping' if action == 'STOP' else 'deleting'} it")
        try:
            if action == "STOP":
                op = self.stop_instance(record.project, record.zone, record.name)
            else:
                op = self.delete_instance(record.project, record.zone, record.name)
        except ComputeError:  # deleted meanwhile
            return
        self.wait_operation(record.project, record.zone, op["name"], timeout=120)


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

    def _take_vm(self, project: str, zone: str, vm: LocalVM) -> Instance | None:
        with self._lock:
            if self.instances.get((project, zone, vm.name)) is not vm:
                return None
            return self._take(project, zone, vm.name)

    def _preempt(self, project: str, zone: str, vm: LocalVM) -> None:
        if self.instances.get((project, zone, vm.name)) is not vm:
            return
        self.notify(f"VM {vm.name} preempted (fault injection)")
        vm.metadata.set_preempted(True)
        vm.power_off(run_shutdown=True)  # Spot + DELETE: shutdown script, then gone
        record = self._take_vm(project, zone, vm)
        self._destroy(vm)
        if record is not None:
            record.last_stop = time.time()

    def _vanish(self, project: str, zone: str, vm: LocalVM) -> None:
        record = self._take_vm(project, zone, vm)
        if record is None:
            return
        self.notify(f"VM {vm.name} vanished without a word (fault injection)")
        vm.power_off(run_shutdown=False, hard=True)
        self._destroy(vm)

    def shutdown_all(self) -> list[str]:
        """Delete every VM still there (Ctrl-C, errors); names of those deleted."""
        with self._lock:
            self.closed = True
            timers = list(self._timers)
        for timer in timers:
            timer.cancel()
        with self._lock:
            left = list(self.records.values())
            for record in left:
                self._take(*record.key)

        workers = [threading.Thread(target=self._end, args=(record,),
                                    kwargs={"run_shutdown": True}) for record in left]
        for worker in workers:  # in parallel: each shutdown script may take seconds
            worker.start()
        for worker in workers:
            worker.join()
        with self._lock:
            rest = list(self.all_vms)
            policies = list(self.policies)
            self.policies.clear()  # their VMs are gone: compact placement policies go too
        for vm in rest:
            vm.destroy()
        for _project, _region, name in policies:
            self.notify(f"placement policy {name} deleted")
        return [record.name for record in left]

    def _destroy(self, vm: LocalVM) -> None:
        """End a VM for good; it leaves all_vms, so that a long-running serve
        neither grows with every VM ever made nor scans them for each token."""
        vm.destroy()
        with self._lock:
            if vm in self.all_vms:
                self.all_vms.remove(vm)

    def hurry_up(self) -> None:
        """A second stop signal: cut every running shutdown script short."""
        for vm in list(self.all_vms):
            vm.hurry.set()

