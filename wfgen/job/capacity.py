"""Getting a VM when capacity is short: the zones a job may use, the provisioning
model of each machine choice, the ordered fallback, and the plan the workflow
walks through (every zone of the first choice, then of the next choice, ...).

Everything here is plain data in, plain data out, so the spec checks, the
renderer and the tests share one set of rules:

- `zone` is one zone, a list of zones, or `any` (every zone of the allowed
  regions that offers the machine's GPU, from wfgen.job.machines); `regions`
  widens the allowed regions beyond the location's.
- `machine.provisioning` is standard, spot, flex-start or reservation
  (`spot: true` is the short form of spot); `machine.reservation` names the
  reservation to consume (or `any`). Each model gets exactly the `scheduling`,
  `reservationAffinity` and `params` blocks Compute Engine's instances.insert
  takes for it (the compute v1 Discovery document, revision 20261106, and the
  pages "About Flex-start VMs", "Create a Flex-start VM" and "Consume reserved
  instances"): see `scheduling()`.
- `fallback` is an ordered list of alternatives, each merged over `machine`.

A problem is returned as (field, message), the field as the spec names it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wfgen.job import machines

PROVISIONING = ("standard", "spot", "flex-start", "reservation")
MODEL_NAMES = {"standard": "STANDARD", "spot": "SPOT", "flex-start": "FLEX_START",
               "reservation": "RESERVATION_BOUND"}
FALLBACK_KEYS = ("type", "accelerator", "spot", "provisioning", "reservation")
# gcloud's key for a reservation by name (googlecloudsdk instance_utils), as in the
# REST samples of Google's reservation pages
RESERVATION_KEY = "compute.googleapis.com/reservation-name"
# Operation error codes (and message words) that mean "this zone has no capacity
# for this VM now": worth trying elsewhere. Anything else (QUOTA_EXCEEDED,
# permissions, a bad request) ends the run.
STOCKOUT_CODES = ("ZONE_RESOURCE_POOL_EXHAUSTED", "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
                  "REGION_RESOURCE_STOCKOUT", "ZONE_RESOURCE_STOCKOUT", "STOCKOUT")
STOCKOUT_REGEX = ("ZONE_RESOURCE_POOL_EXHAUSTED|RESOURCE_STOCKOUT|STOCKOUT|"
                  "does not have enough resources")
NO_CAP_S = 10**9  # a maxRunDuration cap that never binds (the spec keeps below 120 days)

Problem = tuple[str, str]


class CapacityProblem(ValueError):
    """A rule of this module refused the spec: `field` names the spec field."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(message)
        self.field = field_path
        self.message = message


@dataclass(frozen=True)
class Choice:
    """One machine choice: the main machine block, or a fallback merged over it."""

    index: int
    type: str
    accelerator: dict[str, Any] | None
    provisioning: str
    reservation: str | None
    where: str  # the spec field it comes from: machine, fallback[0], ...

    @property
    def gpu(self) -> str | None:
        return machines.gpu_of({"type": self.type, "accelerator": self.accelerator})

    @property
    def gpu_count(self) -> int:
        return machines.gpu_count({"type": self.type, "accelerator": self.accelerator})

    @property
    def attach_gpus(self) -> bool:
        return bool(self.accelerator) and not machines.built_in_gpus(self.type)

    @property
    def label(self) -> str:
        """How messages name it: n1-standard-8 + 1 x nvidia-tesla-t4 (spot)."""
        gpus = (f" + {self.accelerator['count']} x {self.accelerator['type']}"
                if self.attach_gpus and self.accelerator else "")
        model = self.provisioning
        if self.reservation:
            model = (f"reservation {self.reservation}" if self.provisioning == "reservation"
                     else f"{model}, reservation {self.reservation}")
        return f"{self.type}{gpus} ({model})"

    def machine(self) -> dict[str, Any]:
        """A machine block for wfgen.job.machines' checks."""
        return {"type": self.type, "accelerator": self.accelerator,
                "spot": self.provisioning == "spot"}


@dataclass
class Plan:
    """Where and how the workflow tries to get a VM, in order."""

    choices: list[Choice]
    zones: list[list[str]]  # per choice, its zones in order
    entries: list[tuple[str, int]] = field(default_factory=list)  # (zone, choice), in order

    def __post_init__(self) -> None:
        if not self.entries:
            self.entries = [(z, c.index) for c in self.choices for z in self.zones[c.index]]

    @property
    def failover(self) -> bool:
        """Whether there is anywhere else to go (more than one zone or choice)."""
        return len(self.entries) > 1

    def order_text(self) -> str:
        """The order `validate` prints: one line per choice with its zones."""
        return "\n".join(f"  {n + 1}. {c.label}: {', '.join(self.zones[c.index])}"
                         for n, c in enumerate(self.choices))

    def everything(self) -> str:
        """Every zone and choice, for the message of a run that found no capacity."""
        return "; ".join(f"{c.label} in {', '.join(self.zones[c.index])}" for c in self.choices)


# ---------------------------------------------------------------------------
# Provisioning: the insert body blocks of each model


def provisioning_of(machine: dict[str, Any]) -> str:
    """The model a machine block asks for (`spot: true` is the short form of spot)."""
    given = machine.get("provisioning")
    if given:
        return str(given)
    return "spot" if machine.get("spot") else "standard"


def scheduling(choice: Choice) -> dict[str, Any]:
    """The `scheduling` block of the insert, without maxRunDuration (the workflow
    adds it per attempt). Every model deletes the VM when its run time ends.

    - standard: MIGRATE on host maintenance without GPUs (long CPU jobs survive
      it; E2 refuses TERMINATE), TERMINATE with GPUs (required);
    - spot: TERMINATE, no automatic restart (Spot VMs allow neither);
    - flex-start: TERMINATE, no automatic restart, a run time of at most 7 days;
    - reservation (RESERVATION_BOUND): TERMINATE with automatic restart, as in
      Google's reservation-bound sample."""
    model = choice.provisioning
    maintenance = ("TERMINATE" if model != "standard" or choice.gpu else "MIGRATE")
    return {
        "provisioningModel": MODEL_NAMES[model],
        "automaticRestart": model == "reservation",
        "onHostMaintenance": maintenance,
        "instanceTerminationAction": "DELETE",
    }


def reservation_affinity(choice: Choice) -> dict[str, Any] | None:
    """`reservationAffinity`: flex-start consumes none (NO_RESERVATION, as Google's
    samples send); a named reservation is SPECIFIC_RESERVATION by name; `any`
    is ANY_RESERVATION; otherwise None (the service's default)."""
    if choice.provisioning == "flex-start":
        return {"consumeReservationType": "NO_RESERVATION"}
    if choice.reservation == "any":
        return {"consumeReservationType": "ANY_RESERVATION"}
    if choice.reservation:
        return {"consumeReservationType": "SPECIFIC_RESERVATION", "key": RESERVATION_KEY,
                "values": [choice.reservation]}
    return None


def instance_params(choice: Choice, timeout_s: int) -> dict[str, Any] | None:
    """`params`: how long a flex-start request may wait in the queue for capacity
    (requestValidForDuration, 90 s to 2 h), never longer than the job's timeout."""
    if choice.provisioning != "flex-start":
        return None
    return {"requestValidForDuration": {"seconds": str(flex_wait_s(timeout_s))}}


def flex_wait_s(timeout_s: int) -> int:
    """How long a flex-start request waits for capacity: the timeout, 90 s to 2 h."""
    return max(machines.FLEX_START_MIN_WAIT_S, min(machines.FLEX_START_MAX_WAIT_S, timeout_s))


def run_cap_s(choice: Choice) -> int:
    """The longest maxRunDuration the model allows (flex-start: 7 days)."""
    return machines.FLEX_START_MAX_RUN_S if choice.provisioning == "flex-start" else NO_CAP_S


def choice_problem(choice: Choice, timeout_s: int) -> Problem | None:
    """Combinations Compute Engine refuses, naming the field and the rule."""
    where = choice.where
    model = choice.provisioning
    if model not in PROVISIONING:
        return (f"{where}.provisioning", f"{model!r} is not a provisioning model; use one of "
                f"{', '.join(PROVISIONING)}")
    found = machines.machine_problem(choice.machine())
    if found:
        field_path, message = found
        return field_path.replace("machine", where, 1), message
    series = machines.series_of(choice.type)
    if model == "flex-start":
        if series not in machines.FLEX_START_SERIES:
            return (f"{where}.provisioning", f"flex-start VMs use accelerator-optimized machine "
                    f"types (A2, A3, A4, G2) or H4D, not {choice.type}; e.g. g2-standard-8 "
                    "(1 x nvidia-l4) or a2-highgpu-1g")
        if choice.reservation:
            return (f"{where}.reservation", "flex-start VMs consume no reservation; remove "
                    "reservation or use provisioning: reservation")
        if timeout_s > machines.FLEX_START_MAX_RUN_S:
            return (f"{where}.provisioning", "a flex-start VM runs at most 7 days, and the "
                    "timeout is longer; use timeout: 7d or less, or another provisioning model")
    if model == "reservation":
        if not choice.reservation:
            return (f"{where}.reservation", "provisioning: reservation needs the reservation "
                    "to consume: reservation: NAME")
        if choice.reservation == "any":
            return (f"{where}.reservation", "a reservation-bound VM consumes one named "
                    "reservation; name it, or use provisioning: standard with reservation: any "
                    "to use any matching reservation")
    if model == "spot" and choice.reservation:
        return (f"{where}.reservation", "Spot VMs do not consume reservations; remove "
                "reservation or use provisioning: standard")
    return None


# ---------------------------------------------------------------------------
# Choices and zones


def choices_of(machine: dict[str, Any], fallback: list[dict[str, Any]] | None) -> list[Choice]:
    """The main machine block, then each fallback merged over it (a key given as
    null removes it: `accelerator: null` for a machine type with built-in GPUs)."""
    base = {k: machine.get(k) for k in FALLBACK_KEYS}
    out = [_choice(0, base, "machine")]
    for n, alt in enumerate(fallback or []):
        merged = dict(base)
        if "provisioning" in alt or "spot" in alt:
            merged["provisioning"] = None
            merged["spot"] = False
        if "type" in alt and "accelerator" not in alt and machines.built_in_gpus(
                str(alt["type"])):
            merged["accelerator"] = None  # a type with its GPUs built in takes no block
        merged.update(alt)
        out.append(_choice(n + 1, merged, f"fallback[{n}]"))
    return out


def _choice(index: int, block: dict[str, Any], where: str) -> Choice:
    accel = block.get("accelerator")
    if isinstance(accel, dict):
        accel = {"type": accel["type"], "count": int(accel.get("count") or 1)}
    spot = bool(block.get("spot"))
    given = block.get("provisioning")
    if spot and given not in (None, "spot"):
        raise CapacityProblem(f"{where}.spot", f"spot: true is the short form of provisioning: "
                              f"spot; it cannot be combined with provisioning: {given}")
    return Choice(index, str(block.get("type") or "n1-standard-4"), accel or None,
                  provisioning_of(block), block.get("reservation"), where)


def allowed_regions(location: str, regions: list[str] | None) -> list[str]:
    """The location's region first, then the other regions given."""
    out = [location]
    out += [r for r in regions or [] if r not in out]
    return out


def zones_for(zone: str | list[str] | None, location: str, regions: list[str] | None,
              choice: Choice, *, strict: bool) -> list[str]:
    """The zones one choice may use, in order. `strict` (the main machine): a
    listed zone that cannot give the GPU is refused; for a fallback it is skipped."""
    allowed = allowed_regions(location, regions)
    for region in allowed:
        problem = machines.region_problem(region)
        if problem:
            raise CapacityProblem("regions" if region != location else "location", problem)
    gpu = choice.gpu
    if zone is None:
        return [machines.default_zone(location)]
    if zone == "any":
        out: list[str] = []
        for region in allowed:
            if gpu is None:
                out += machines.zones_of(region)
                continue
            offered = machines.gpu_zones(gpu, region)
            if offered is None:
                raise CapacityProblem("zone", f"wfgen's tables do not say which zones of {region} "
                                      f"offer {gpu}; list the zones instead of zone: any")
            out += offered
        if not out:
            raise CapacityProblem(
                "zone" if strict else f"{choice.where}.type",
                f"no zone of {', '.join(allowed)} offers {gpu} ({choice.label})"
                + (f"; widen regions, e.g. regions: [{_where_offered(gpu)}]"
                   if _where_offered(gpu) else ""))
        return out
    listed = [zone] if isinstance(zone, str) else list(zone)
    out = []
    for item in listed:
        region = item.rpartition("-")[0]
        if region not in allowed:
            known = ", ".join(z for r in allowed for z in machines.zones_of(r))
            raise CapacityProblem("zone", f"zone {item} is not in the allowed regions "
                                  f"({', '.join(allowed)}); add {region} to regions or use one "
                                  f"of {known}")
        problem = machines.zone_problem(item, region)
        if problem:
            raise CapacityProblem("zone", problem)
        problem = machines.gpu_zone_problem(item, gpu)
        if problem:
            if strict:
                raise CapacityProblem("zone", problem)
            continue
        if item not in out:
            out.append(item)
    if not out:
        raise CapacityProblem(f"{choice.where}.type", f"none of the listed zones offers {gpu} "
                              f"({choice.label})")
    return out


def _where_offered(gpu: str) -> str:
    regions: list[str] = []
    for z in machines.GPU_ZONES.get(gpu, ()):
        region = z.rpartition("-")[0]
        if region not in regions:
            regions.append(region)
    return ", ".join(regions[:3])


def plan_for(*, zone: str | list[str] | None, location: str, regions: list[str] | None,
             machine: dict[str, Any], fallback: list[dict[str, Any]] | None,
             timeout_s: int) -> Plan:
    """The whole plan, checked; raises CapacityProblem naming the field."""
    choices = choices_of(machine, fallback)
    for choice in choices:
        problem = choice_problem(choice, timeout_s)
        if problem:
            raise CapacityProblem(*problem)
    zones = [zones_for(zone, location, regions, c, strict=c.index == 0) for c in choices]
    return Plan(choices, zones)


def workflow_choices(plan: Plan, timeout_s: int) -> list[dict[str, Any]]:
    """Each choice as the workflow reads it when failing over (a literal list)."""
    out = []
    for c in plan.choices:
        out.append({
            "label": c.label,
            "scheduling": scheduling(c),
            # one insert body serves every choice, so each names its affinity: the
            # service's default (ANY) for standard; none for Spot, which consumes none
            "reservationAffinity": reservation_affinity(c) or {
                "consumeReservationType": "NO_RESERVATION" if c.provisioning == "spot"
                else "ANY_RESERVATION"},
            "params": instance_params(c, timeout_s) or {},
            "cap": run_cap_s(c),
            "gpus": str(c.gpu_count),
        })
    return out


def workflow_plan(plan: Plan) -> list[dict[str, Any]]:
    """Each (zone, choice) the workflow tries, with what depends on the zone."""
    out = []
    for zone, index in plan.entries:
        c = plan.choices[index]
        accelerators = [{"acceleratorType": f"zones/{zone}/acceleratorTypes/{c.gpu}",
                         "acceleratorCount": c.gpu_count}] if c.attach_gpus else []
        out.append({"zone": zone, "choice": index, "region": zone.rpartition("-")[0],
                    "machineType": f"zones/{zone}/machineTypes/{c.type}",
                    "guestAccelerators": accelerators})
    return out


def next_zone(plan: Plan) -> list[int]:
    """For each entry, the entry of the same choice in its next zone (wrapping):
    where a preempted attempt goes next (preemption clusters by zone)."""
    out = []
    for n, (_zone, index) in enumerate(plan.entries):
        same = [i for i, (_z, c) in enumerate(plan.entries) if c == index]
        out.append(same[(same.index(n) + 1) % len(same)])
    return out


def slot_of(plan: Plan) -> dict[str, int]:
    """"ZONE/CHOICE" -> its entry, for jumping to a zone an error says has capacity."""
    return {f"{zone}/{index}": n for n, (zone, index) in enumerate(plan.entries)}


# The failover's cost and size (the workflow's side: wfgen.job.render_capacity)
STEPS_PER_FAILOVER = 7  # measured (tests/local/test_capacity_run.py, bench_capacity)
FAILOVER_STEP_BUDGET = 60_000  # of the 100,000 an execution may run: the rest for the job
TRIED_KEPT = 20  # attempts_detail keeps the first this many refused or ended tries


def round_pause_s(plan: Plan, timeout_s: int, heartbeat_s: int, parallel: int = 1) -> int:
    """The pause after a round that found no capacity anywhere: one heartbeat, or
    longer when the plan is long, so that trying every entry every round until
    the timeout stays within FAILOVER_STEP_BUDGET steps (`parallel` tasks at once)."""
    per_round = parallel * (STEPS_PER_FAILOVER * len(plan.entries) + 1)
    rounds = max(1, FAILOVER_STEP_BUDGET // per_round)
    return max(heartbeat_s, -(-timeout_s // rounds))


def state_bytes(plan: Plan) -> int:
    """About how many bytes of variables the failover state takes in each running
    run_job (measured: 24 entries and 4 choices take 7.1 KB before any try is
    noted), for the execution's 512 KB; 0 when there is nowhere to fail over."""
    if not plan.failover:
        return 0
    return 220 * len(plan.entries) + 450 * len(plan.choices) + 700 + 130 * TRIED_KEPT
