"""Follow one execution on any backend: its VMs as they come and go, and the
job's output read from their consoles as it is written (the way `gcloud compute
instances tail-serial-port-output` does, with the `start` offset). Used by
`wfgen run` and `wfgen logs --follow`; written against the Backend interface.

A VM's last lines can be written after the last console read and before the
VM is gone (the container's final error, the agent's report): when a VM
disappears, its output is completed from the backend's logs (Cloud Logging
keeps every console line) before its deletion is reported, so following
never ends before the last byte the VM wrote."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from wfgen.backends.base import ACTIVE, Backend, Execution, Vm

AGENT_REPORTED = "wfgen-agent: report delivered"
STOPPING_WAIT_S = 120.0  # a deleted VM's shutdown script has about 90 s on Compute Engine
DRAIN_POLLS = 3  # how long (in poll intervals) a gone VM's logs may lag its console


@dataclass
class Event:
    """Something seen while following: kind is created, waiting (a flex-start VM
    PENDING in the queue for capacity; text: since when), deleted, output or report."""

    kind: str
    vm: str
    text: str = ""
    attempt: int = 0


@dataclass
class Follower:
    """One poll reads the execution, its VMs, and what each console printed since."""

    backend: Backend
    execution: str
    interval: float = 1.0
    known: dict[str, Vm] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    partial: dict[str, str] = field(default_factory=dict)
    shown: dict[str, int] = field(default_factory=dict)  # VM -> complete lines yielded
    ex: Execution | None = None
    waiting: set[str] = field(default_factory=set)  # VMs already said to be PENDING

    def poll(self) -> tuple[Execution, list[Event]]:
        ex = self.ex = self.backend.get(self.execution)
        vms = {vm.name: vm for vm in self.backend.list_vms(self.execution)}
        events: list[Event] = []
        for name, vm in vms.items():
            if name not in self.known:
                events.append(Event("created", name, attempt=vm.attempt))
            self.known[name] = vm  # with its status now
            if vm.status == "PENDING" and name not in self.waiting:
                self.waiting.add(name)
                events.append(Event("waiting", name, time.strftime("%H:%M:%SZ", time.gmtime())))
            if vm.status in ("RUNNING", "STOPPING", "TERMINATED", "SUSPENDED"):
                text, self.offsets[name] = self.backend.console(vm, self.offsets.get(name, 0))
                events.extend(self._lines(name, text))
        for name in [n for n in self.known if n not in vms]:
            events.extend(self._drain(name))
            del self.known[name]
            self.waiting.discard(name)
            events.append(Event("deleted", name))
        return ex, events

    def _lines(self, vm: str, text: str) -> list[Event]:
        if not text:
            return []
        pieces = (self.partial.pop(vm, "") + text.replace("\r\n", "\n")).split("\n")
        if pieces[-1]:
            self.partial[vm] = pieces[-1]
        return self._output(vm, pieces[:-1])

    def _output(self, vm: str, lines: list[str]) -> list[Event]:
        events = []
        for line in lines:
            events.append(Event("output", vm, line))
            self.shown[vm] = self.shown.get(vm, 0) + 1
            if AGENT_REPORTED in line:
                events.append(Event("report", vm))
        return events

    def _drain(self, vm: str) -> list[Event]:
        """The lines of a VM now gone that its console did not give us yet: from
        the backend's logs, past the lines already shown (waiting a few polls
        while the logs have fewer lines than were shown: they lag the console);
        without logs, the unfinished last line."""
        rest = self.partial.pop(vm, "")
        shown = self.shown.get(vm, 0)
        deadline = time.monotonic() + DRAIN_POLLS * self.interval
        logged = self.backend.vm_output(self.ex, vm) if self.ex else None
        while logged is not None and len(logged) < shown + bool(rest) \
                and time.monotonic() < deadline:
            time.sleep(min(0.2, self.interval))
            logged = self.backend.vm_output(self.ex, vm)
        missed = logged[shown:] if logged else []
        if missed:
            return self._output(vm, missed)
        return self._output(vm, [rest]) if rest else []


def follow(backend: Backend, execution: str, *, interval: float,
           stop: Callable[[], bool] = lambda: False) -> Iterator[Event | Execution]:
    """Poll until the execution has ended and its VMs are gone, yielding what
    is seen, then the execution as it ended; return early when `stop()` says
    so. A VM being deleted (STOPPING: its shutdown script still prints) is
    waited for, up to STOPPING_WAIT_S; VMs still running a few polls after the
    end (an execution cancelled without wfgen) are not: `wfgen gc` finds them."""
    follower = Follower(backend, execution, interval=interval)
    ended_polls = 0
    ended_at = 0.0
    while True:
        ex, events = follower.poll()
        yield from events
        if ex.state != ACTIVE:
            ended_polls += 1
            ended_at = ended_at or time.monotonic()
            stopping = [vm for vm in follower.known.values() if vm.status == "STOPPING"]
            if not follower.known or (ended_polls > 3 and not stopping) \
                    or time.monotonic() - ended_at > STOPPING_WAIT_S:
                yield ex
                return
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline:
            if stop():
                return
            time.sleep(min(0.1, interval))


def missed_output(backend: Backend, ended: Execution,
                  shown: dict[str, int]) -> Iterator[tuple[str, str]]:
    """(VM, line) of the ended execution's output that following did not show
    (a VM that came and went between two polls, as short fan-out tasks do),
    from the backend's logs: each VM's lines past the `shown` count."""
    logged_output = getattr(backend, "logged_output", None)
    if logged_output is None:
        return
    logged: dict[str, int] = {}
    for vm, line in logged_output(ended):
        logged[vm] = logged.get(vm, 0) + 1
        if logged[vm] > shown.get(vm, 0):
            yield vm, line
