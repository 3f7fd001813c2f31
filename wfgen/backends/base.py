"""What a backend does, whatever runs the workflow: the local runtime, `wfgen
serve`, or Google Cloud. The CLI's run/deploy/status/logs/list/cancel/gc
commands are written once against this interface (as dsub writes its commands
against providers/base.py).

Names are the service's full resource names, so that one string identifies an
execution on every backend:
  workflow   projects/P/locations/L/workflows/W
  execution  projects/P/locations/L/workflows/W/executions/ID"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

ACTIVE = "ACTIVE"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
ENDED = (SUCCEEDED, FAILED, CANCELLED)

# Labels the generated workflow puts on every VM it creates (see the template).
LABEL_JOB = "wfgen-job"
LABEL_EXECUTION = "wfgen-execution"
LABEL_ATTEMPT = "wfgen-attempt"


@dataclass
class Revision:
    """A deployed workflow: its name, the revision now serving, and whether
    this deploy changed anything (an unchanged source is not redeployed)."""

    name: str
    revision_id: str
    changed: bool = True


@dataclass
class ExecutionError:
    """Why an execution FAILED: the raised value as JSON text (`payload`, as the
    service's error.payload), a readable trace, and where it was raised."""

    payload: str
    context: str = ""
    step: str | None = None
    subworkflow: str | None = None


@dataclass
class Execution:
    """One execution as every backend reports it."""

    name: str
    state: str
    argument: Any = None
    result: Any = None  # the returned value (decoded), when SUCCEEDED
    error: ExecutionError | None = None
    start_time: str = ""  # RFC 3339
    end_time: str = ""
    revision_id: str = ""
    steps: tuple[int, int] = (0, 0)  # billed (internal, external) steps, when known
    current_step: str = ""  # "step (routine)" while ACTIVE, when the backend knows it

    @property
    def id(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    @property
    def workflow(self) -> str:
        return self.name.split("/executions/")[0]


@dataclass
class Vm:
    """A VM that an execution made (found by its wfgen labels)."""

    name: str
    zone: str
    status: str
    labels: dict[str, str] = field(default_factory=dict)
    created: str = ""
    max_run_duration_s: int | None = None
    execution: str = ""  # the full execution name, when the backend could tell it

    @property
    def attempt(self) -> int:
        value = self.labels.get(LABEL_ATTEMPT, "")
        return int(value) if value.isdigit() else 0


class Backend(abc.ABC):
    """Deploy workflows, start and follow executions, and clean up their VMs."""

    @abc.abstractmethod
    def deploy(self, workflow: str, source: str, *,
               service_account: str | None = None) -> Revision:
        """Create or update `workflow` (a full name) with `source` (YAML)."""

    @abc.abstractmethod
    def start(self, workflow: str, argument: Any = None) -> Execution:
        """Start an execution of the workflow's current revision."""

    @abc.abstractmethod
    def get(self, execution: str) -> Execution:
        """The execution's state now (a full execution name)."""

    @abc.abstractmethod
    def list(self, workflow: str, *, limit: int = 20) -> list[Execution]:
        """Recent executions of a workflow, newest first."""

    @abc.abstractmethod
    def cancel(self, execution: str) -> Execution:
        """Cancel an ACTIVE execution (its VMs are not deleted: see delete_vms)."""

    @abc.abstractmethod
    def logs(self, execution: str, *, follow: bool = False) -> Iterator[str]:
        """The job's own output lines (its VMs' consoles), oldest first; with
        follow, until the execution ends."""

    @abc.abstractmethod
    def list_vms(self, execution: str | None = None) -> list[Vm]:
        """VMs with wfgen labels: all of them, or those of one execution."""

    @abc.abstractmethod
    def delete_vms(self, vms: list[Vm]) -> list[str]:
        """Delete VMs and wait until they are gone; the names deleted."""

    def console(self, vm: Vm, start: int = 0) -> tuple[str, int]:
        """The VM's serial console output from byte `start`, and the offset to ask
        for next (as instances.getSerialPortOutput); ("", start) once it is gone.
        Lets `run` and `logs --follow` stream the job's output while it runs."""
        raise NotImplementedError(f"{type(self).__name__} has no VM console")

    def vm_output(self, execution: Execution, vm: str) -> list[str] | None:
        """Every line a VM of the execution printed, from the backend's logs (kept
        after the VM is gone), oldest first; None when the backend keeps no logs.
        Following uses it to complete a VM's output once the VM is gone."""
        return None
