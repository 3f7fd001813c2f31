"""Fault injection for `wfgen run --local --fault ...`.

Faults make the reliability paths of a generated workflow testable by running
them. Each acts on the first VM of the run, so the retry can succeed; in a
fan-out job, on the first VM of task 0, or of task N with `,task=N`
(`preempt@2s,task=3`); in a multi-node job, on the first VM of node 0, or of
the node of rank N with `,node=N` (`insert-fail,node=3`):

  preempt@DELAY        preempt the VM DELAY after it boots (shutdown script runs,
                       the metadata server says preempted, the Spot VM is deleted)
  vanish@DELAY         the VM disappears without a word (no shutdown script)
  refuse-callbacks=N   the callback endpoint answers 503 to the first N requests
  insert-fail[=MSG]    instances.insert fails as an operation error (e.g. quota)
  stockout=ZONE[/MODEL]  ZONE (* for every zone) has no capacity for MODEL
                       (standard, spot, flex-start, reservation; none: all), for
                       the whole run; repeatable
  flex-wait=DELAY      the flex-start queue answers after DELAY (default 2s):
                       capacity, or it gives up where flex-start is out

DELAY is a number with a unit: 500ms, 5s, 2m, 1h."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wfgen.errors import UsageError

if TYPE_CHECKING:
    from wfgen.local.capacity import Capacity

FAULT_HELP = __doc__.split("\n\n", 2)[2] if __doc__ else ""
_DELAY = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)$")


def parse_delay(text: str) -> float:
    match = _DELAY.match(text.strip())
    if not match:
        raise UsageError(f"{text!r} is not a delay; write e.g. 500ms, 5s, 2m or 1h")
    number, unit = float(match.group(1)), match.group(2)
    return number * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


@dataclass
class Faults:
    preempt_after: float | None = None
    vanish_after: float | None = None
    refuse_callbacks: int = 0
    fail_insert: str | None = None
    stockouts: list[str] = field(default_factory=list)  # ZONE[/MODEL] (wfgen.local.capacity)
    flex_wait: float | None = None
    tasks: dict[str, int] = field(default_factory=dict)  # fault -> its task (default 0)
    target: str = "task"  # what tasks' numbers name: a fan-out "task" or a "node" rank

    def task_of(self, fault: str) -> int:
        """The fan-out task whose first VM `fault` acts on."""
        return self.tasks.get(fault, 0)

    @classmethod
    def parse(cls, specs: list[str]) -> Faults:
        faults = cls()
        for given in specs:
            spec, _, target = given.partition(",")
            name, sep, value = spec.partition("@") if "@" in spec else spec.partition("=")
            if target:
                key, _, number = target.partition("=")
                if key.strip() not in ("task", "node") or not number.strip().isdigit():
                    raise UsageError(f"fault {given!r}: after the comma write task=N (the "
                                     "fan-out task whose first VM it acts on)")
                if name.strip().lower() == "refuse-callbacks":
                    raise UsageError("refuse-callbacks acts on the first callbacks of the run, "
                                     "whichever task sends them; it takes no task=N")
                if name.strip().lower() in ("stockout", "flex-wait"):
                    raise UsageError(f"{name.strip()} acts on zones, whichever task inserts "
                                     "there; it takes no task=N")
                faults.tasks[name.strip().lower()] = int(number)
                if faults.tasks and key.strip() != faults.target and len(faults.tasks) > 1:
                    raise UsageError("faults name either tasks (task=N) or nodes (node=N), "
                                     "not both")
                faults.target = key.strip()
            name = name.strip().lower()
            if name == "preempt" and sep == "@":
                faults.preempt_after = parse_delay(value)
            elif name == "vanish" and sep == "@":
                faults.vanish_after = parse_delay(value)
            elif name == "refuse-callbacks" and sep == "=" and value.isdigit():
                faults.refuse_callbacks = int(value)
            elif name == "stockout" and sep == "=":
                from wfgen.local.capacity import Stockout

                Stockout.parse(value, option="--fault stockout=")
                faults.stockouts.append(value.strip())
            elif name == "flex-wait" and sep == "=":
                faults.flex_wait = parse_delay(value)
            elif name == "insert-fail":
                faults.fail_insert = value or (
                    "QUOTA_EXCEEDED: Quota 'CPUS' exceeded. Limit: 0.0 in region local.")
            else:
                raise UsageError(f"unknown fault {given!r}; known: preempt@DELAY, vanish@DELAY, "
                                 "refuse-callbacks=N, insert-fail[=MESSAGE] (with ,task=N in "
                                 "a fan-out job), stockout=ZONE[/MODEL], flex-wait=DELAY")
        return faults

    def capacity(self) -> Capacity:
        """The capacity rules these faults set (none: every zone has capacity)."""
        from wfgen.local.capacity import Capacity

        return Capacity.parse(self.stockouts, flex_wait_s=self.flex_wait)
