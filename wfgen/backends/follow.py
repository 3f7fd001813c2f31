"""Follow one execution on any backend: its VMs as they come and go, and the
job's output read from their consoles as it is written (the way `gcloud compute
instances tail-serial-port-output` does, with the `start` offset). Used by
`wfgen run` and `wfgen logs --follow`; written against the Backend interface."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from wfgen.backends.base import ACTIVE, Backend, Execution, Vm

AGENT_REPORTED = "wfgen-agent: report delivered"


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
    waiting: set[str] = field(default_factory=set)  # VMs already said to be PENDING

    def poll(self) -> tuple[Execution, list[Event]]:
        ex = self.backend.get(self.execution)
        vms = {vm.name: vm for vm in self.backend.list_vms(self.execution)}
        events: list[Event] = []
        for name, vm in vms.items():
            if name not in self.known:
                self.known[name] = vm
                events.append(Event("created", name, attempt=vm.attempt))
            if vm.status == "PENDING" and name not in self.waiting:
                self.waiting.add(name)
                events.append(Event("waiting", name, time.strftime("%H:%M:%SZ", time.gmtime())))
            if vm.status in ("RUNNING", "STOPPING", "TERMINATED", "SUSPENDED"):
                text, self.offsets[name] = self.backend.console(vm, self.offsets.get(name, 0))
                events.extend(self._lines(name, text))
        for name in [n for n in self.known if n not in vms]:
            rest = self.partial.pop(name, "")
            if rest:
                events.append(Event("output", name, rest))
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
        events = []
        for line in pieces[:-1]:
            events.append(Event("output", vm, line))
            if AGENT_REPORTED in line:
                events.append(Event("report", vm))
        return events


def follow(backend: Backend, execution: str, *, interval: float,
           stop: Callable[[], bool] = lambda: False) -> Iterator[Event | Execution]:
    """Poll until the execution has ended and its VMs are gone, yielding what
    is seen, then the execution as it ended; return early when `stop()` says
    so. VMs still there a few polls after the end (an execution cancelled
    without wfgen) are not waited for: `wfgen gc` finds them."""
    follower = Follower(backend, execution, interval=interval)
    ended_polls = 0
    while True:
        ex, events = follower.poll()
        yield from events
        if ex.state != ACTIVE:
            ended_polls += 1
            if not follower.known or ended_polls > 3:
                yield ex
                return
        deadline = time.monotonic() + interval
        while time.monotonic() < deadline:
            if stop():
                return
            time.sleep(min(0.1, interval))
