"""What Compute Engine accepts: regions and zones, GPUs per machine series, and the
maintenance policy, so that `validate` refuses what an instances.insert would.

The tables restate Google's published lists (https://cloud.google.com/compute/docs/
regions-zones and https://cloud.google.com/compute/docs/gpus, as of 2025); a
region Google adds later is refused with the list this version knows, so update
`ZONES` then."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

# region -> its zone letters
ZONES: dict[str, str] = {
    "africa-south1": "abc", "asia-east1": "abc", "asia-east2": "abc",
    "asia-northeast1": "abc", "asia-northeast2": "abc", "asia-northeast3": "abc",
    "asia-south1": "abc", "asia-south2": "abc", "asia-southeast1": "abc",
    "asia-southeast2": "abc", "australia-southeast1": "abc", "australia-southeast2": "abc",
    "europe-central2": "abc", "europe-north1": "abc", "europe-north2": "abc",
    "europe-southwest1": "abc", "europe-west1": "bcd", "europe-west2": "abc",
    "europe-west3": "abc", "europe-west4": "abc", "europe-west6": "abc",
    "europe-west8": "abc", "europe-west9": "abc", "europe-west10": "abc",
    "europe-west12": "abc", "me-central1": "abc", "me-central2": "abc", "me-west1": "abc",
    "northamerica-northeast1": "abc", "northamerica-northeast2": "abc",
    "northamerica-south1": "abc", "southamerica-east1": "abc", "southamerica-west1": "abc",
    "us-central1": "abcf", "us-east1": "bcd", "us-east4": "abc", "us-east5": "abc",
    "us-south1": "abc", "us-west1": "abc", "us-west2": "abc", "us-west3": "abc",
    "us-west4": "abc",
}

# GPUs that attach to N1 machine types (general-purpose, standard/highmem/highcpu),
# and the counts each allows.
N1_GPUS: dict[str, tuple[int, ...]] = {
    "nvidia-tesla-t4": (1, 2, 4), "nvidia-tesla-t4-vws": (1, 2, 4),
    "nvidia-tesla-v100": (1, 2, 4, 8),
    "nvidia-tesla-p100": (1, 2, 4), "nvidia-tesla-p100-vws": (1, 2, 4),
    "nvidia-tesla-p4": (1, 2, 4), "nvidia-tesla-p4-vws": (1, 2, 4),
}
N1_GPU_FAMILIES = ("n1-standard-", "n1-highmem-", "n1-highcpu-")

# Accelerator-optimized series: the GPUs come with the machine type (no accelerator
# block is needed; one that is given must match). Prefix -> GPU type.
BUILT_IN_GPUS: dict[str, str] = {
    "a2-highgpu-": "nvidia-tesla-a100", "a2-megagpu-": "nvidia-tesla-a100",
    "a2-ultragpu-": "nvidia-a100-80gb",
    "a3-highgpu-": "nvidia-h100-80gb", "a3-edgegpu-": "nvidia-h100-80gb",
    "a3-megagpu-": "nvidia-h100-mega-80gb", "a3-ultragpu-": "nvidia-h200-141gb",
    "a4-highgpu-": "nvidia-b200",
    "g2-standard-": "nvidia-l4",
}
# G2 machine types and their L4 count (the others name the count: a2-highgpu-4g)
G2_GPUS = {4: 1, 8: 1, 12: 1, 16: 1, 24: 2, 32: 1, 48: 4, 96: 8}
# Series that cannot run as Spot VMs.
NO_SPOT = ("m2-",)


def default_zone(region: str) -> str:
    """The first zone of a region (us-central1 -> us-central1-a, europe-west1 -> -b)."""
    return f"{region}-{ZONES[region][0]}"


def region_problem(region: str) -> str | None:
    if region in ZONES:
        return None
    close = difflib.get_close_matches(region, list(ZONES), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else (
        " (the regions wfgen knows: " + ", ".join(sorted(ZONES)) + ")")
    return f"{region!r} is not a Compute Engine region{hint}"


def zone_problem(zone: str, region: str) -> str | None:
    zone_region, _, letter = zone.rpartition("-")
    if zone_region != region:
        return (f"zone {zone} is not in the location's region {region}; use one of "
                f"{_zones(region)} or change location")
    if letter not in ZONES.get(region, letter):
        return f"zone {zone} does not exist; {region} has {_zones(region)}"
    return None


def _zones(region: str) -> str:
    return ", ".join(f"{region}-{z}" for z in ZONES.get(region, ""))


@dataclass(frozen=True)
class Gpus:
    """The GPUs a VM gets: type and count (count 0: none)."""

    type: str | None
    count: int
    built_in: bool  # part of the machine type (no guestAccelerators in the insert)


def built_in_gpus(machine_type: str) -> Gpus | None:
    """The GPUs an accelerator-optimized machine type comes with, or None."""
    for prefix, gpu in BUILT_IN_GPUS.items():
        if machine_type.startswith(prefix):
            rest = machine_type[len(prefix):]
            if prefix == "g2-standard-":
                count = G2_GPUS.get(int(rest)) if rest.isdigit() else None
            else:
                match = re.fullmatch(r"([0-9]+)g(?:-[a-z0-9]+)?", rest)
                count = int(match.group(1)) if match else None
            return Gpus(gpu, count or 0, True)
    return None


# Machine series and the words of their type names (Compute Engine's machine
# families page): a type is SERIES-WORD[-WORD...]-N, or SERIES-custom-CPUS-MB.
SERIES = ("e2", "n1", "n2", "n2d", "n4", "n4a", "n4d", "c2", "c2d", "c3", "c3d", "c4", "c4a",
          "c4d", "t2a", "t2d", "h3", "h4d", "m1", "m2", "m3", "m4", "x4", "z3", "a2", "a3", "a4",
          "a4x", "g2", "g4", "ct5lp", "ct6e")
TYPE_WORDS = {"standard", "highmem", "highcpu", "custom", "micro", "small", "medium",
              "megamem", "ultramem", "hypermem", "highgpu", "megagpu", "ultragpu", "edgegpu",
              "highlssd", "lssd", "metal", "extended", "nogpu"}


def type_problem(mtype: str) -> str | None:
    """Why `mtype` is no machine type Compute Engine has (series and name words)."""
    series, *rest = mtype.split("-")
    if series not in SERIES:
        close = difflib.get_close_matches(series, SERIES, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        return f"{mtype}: {series!r} is not a machine series{hint} (e.g. n1-standard-8)"
    words = [w for w in rest if not re.fullmatch(r"[0-9]+g?|[0-9]+t", w)]
    bad = [w for w in words if w not in TYPE_WORDS]
    sized = any(re.fullmatch(r"[0-9]+g?", w) for w in rest) or bool(
        {"micro", "small", "medium"} & set(words))
    if bad or not words or not sized:
        return (f"{mtype} is not a machine type of the {series.upper()} series (a type reads "
                f"like {series}-standard-8 or {series}-highmem-16)")
    return None


def machine_problem(machine: dict) -> tuple[str, str] | None:
    """(field, message) when Compute Engine would refuse this machine block."""
    mtype: str = machine["type"]
    problem = type_problem(mtype)
    if problem:
        return "machine.type", problem
    accel = machine.get("accelerator")
    builtin = built_in_gpus(mtype)
    if machine.get("spot") and mtype.startswith(NO_SPOT):
        return "machine.spot", f"{mtype} cannot run as a Spot VM; remove spot or pick another type"
    if builtin is not None:
        if builtin.count == 0:
            return "machine.type", f"{mtype} is not a machine type of its series"
        if accel and (accel["type"] != builtin.type or accel["count"] != builtin.count):
            return ("machine.accelerator", f"{mtype} comes with {builtin.count}x "
                    f"{builtin.type} built in; remove the accelerator block (or give "
                    f"{{type: {builtin.type}, count: {builtin.count}}})")
        return None
    if not accel:
        return None
    gpu, count = accel["type"], accel["count"]
    if gpu not in N1_GPUS:
        example = BUILT_IN_EXAMPLES.get(gpu)
        if example:
            return ("machine.accelerator.type", f"{gpu} comes only built into "
                    f"{example.split('-')[0].upper()} machine types: use machine.type "
                    f"{example} and no accelerator block")
        return ("machine.accelerator.type", f"{gpu!r} is not a GPU wfgen knows; on N1 "
                f"machine types use one of {', '.join(N1_GPUS)}")
    if not mtype.startswith(N1_GPU_FAMILIES):
        return ("machine.accelerator", f"{mtype} cannot attach GPUs; {gpu} attaches to N1 "
                "machine types: use machine.type n1-standard-8 (or another "
                "n1-standard/highmem/highcpu type)")
    if count not in N1_GPUS[gpu]:
        return ("machine.accelerator.count", f"{count}x {gpu} is not possible; attach "
                f"{' or '.join(map(str, N1_GPUS[gpu]))}")
    return None


# A machine type for each built-in GPU, for suggestions.
BUILT_IN_EXAMPLES = {
    "nvidia-tesla-a100": "a2-highgpu-1g", "nvidia-a100-80gb": "a2-ultragpu-1g",
    "nvidia-h100-80gb": "a3-highgpu-1g", "nvidia-h100-mega-80gb": "a3-megagpu-8g",
    "nvidia-h200-141gb": "a3-ultragpu-8g", "nvidia-b200": "a4-highgpu-8g",
    "nvidia-l4": "g2-standard-4",
}


def on_host_maintenance(machine: dict) -> str:
    """MIGRATE for standard VMs without GPUs (E2 refuses anything else; long CPU jobs
    survive host maintenance); TERMINATE for GPUs and Spot, which require it."""
    gpus = machine.get("accelerator") or built_in_gpus(machine["type"])
    return "TERMINATE" if machine.get("spot") or gpus else "MIGRATE"


def gpu_count(machine: dict) -> int:
    """GPUs the VM has (the VM agent installs the driver when there are any)."""
    accel = machine.get("accelerator")
    if accel:
        return int(accel["count"])
    builtin = built_in_gpus(machine["type"])
    return builtin.count if builtin else 0


# ---------------------------------------------------------------------------
# Where each GPU is offered (Google's "GPU regions and zones" page, as of 2025),
# for the regions that page lists most GPUs in. `zone: any` expands to the zones
# of this table; a listed zone that lacks the GPU is refused, naming those that
# have it. A region absent from the table is not checked (wfgen does not know it),
# and `zone: any` there asks for an explicit list instead.
GPU_ZONES: dict[str, tuple[str, ...]] = {
    "nvidia-tesla-t4": (
        "us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f",
        "us-east1-c", "us-east1-d", "us-east4-a", "us-east4-b", "us-east4-c",
        "us-west1-a", "us-west1-b", "us-west4-a", "us-west4-b",
        "europe-west1-b", "europe-west1-c", "europe-west1-d",
        "europe-west4-a", "europe-west4-b", "europe-west4-c",
        "asia-east1-a", "asia-east1-c", "asia-southeast1-a", "asia-southeast1-b",
        "asia-southeast1-c"),
    "nvidia-l4": (
        "us-central1-a", "us-central1-b", "us-central1-c",
        "us-east1-b", "us-east1-c", "us-east1-d", "us-east4-a", "us-east4-c",
        "us-west1-a", "us-west1-b", "us-west1-c", "us-west4-a", "us-west4-c",
        "europe-west1-b", "europe-west1-c", "europe-west4-a", "europe-west4-b",
        "europe-west4-c", "asia-east1-a", "asia-east1-b", "asia-east1-c",
        "asia-southeast1-a", "asia-southeast1-b", "asia-southeast1-c"),
    "nvidia-tesla-v100": (
        "us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f",
        "us-west1-a", "us-west1-b", "europe-west4-a", "europe-west4-b", "europe-west4-c",
        "asia-east1-c"),
    "nvidia-tesla-p100": (
        "us-central1-c", "us-central1-f", "us-east1-b", "us-east1-c", "us-west1-a",
        "us-west1-b", "europe-west1-b", "europe-west1-d", "europe-west4-a",
        "asia-east1-a", "asia-east1-c"),
    "nvidia-tesla-p4": (
        "us-central1-a", "us-central1-c", "us-east4-a", "us-east4-b", "us-east4-c",
        "europe-west4-b", "europe-west4-c", "asia-southeast1-b", "asia-southeast1-c"),
    "nvidia-tesla-a100": (
        "us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f", "us-east1-b",
        "us-west1-b", "us-west4-b", "europe-west4-a", "europe-west4-b",
        "asia-southeast1-b", "asia-southeast1-c"),
    "nvidia-a100-80gb": (
        "us-central1-a", "us-central1-c", "us-east4-c", "europe-west4-a",
        "asia-southeast1-c"),
    "nvidia-h100-80gb": (
        "us-central1-a", "us-central1-b", "us-central1-c", "us-east4-a", "us-east4-b",
        "us-east4-c", "us-west1-a", "europe-west4-b", "europe-west4-c",
        "asia-southeast1-b", "asia-southeast1-c"),
    "nvidia-h100-mega-80gb": (
        "us-central1-a", "us-central1-c", "us-east4-a", "us-east4-b", "europe-west4-b",
        "europe-west4-c", "asia-southeast1-b", "asia-southeast1-c"),
    "nvidia-h200-141gb": ("us-central1-b", "europe-west1-b", "europe-west4-b", "us-east4-b"),
    "nvidia-b200": ("us-central1-b", "us-east1-b", "europe-west4-b", "asia-southeast1-b"),
}
# The -vws (virtual workstation) variants are offered where their GPU is.
for _base in ("nvidia-tesla-t4", "nvidia-tesla-p100", "nvidia-tesla-p4"):
    GPU_ZONES[_base + "-vws"] = GPU_ZONES[_base]
GPU_REGIONS = frozenset(z.rsplit("-", 1)[0] for zones in GPU_ZONES.values() for z in zones)


def zones_of(region: str) -> list[str]:
    """Every zone of a region wfgen knows, in order."""
    return [f"{region}-{letter}" for letter in ZONES.get(region, "")]


def gpu_of(machine: dict) -> str | None:
    """The GPU type a machine block gets (attached or built in), or None."""
    accel = machine.get("accelerator")
    if accel:
        return str(accel["type"])
    builtin = built_in_gpus(str(machine["type"]))
    return builtin.type if builtin and builtin.count else None


def gpu_zones(gpu: str, region: str) -> list[str] | None:
    """The zones of `region` that offer `gpu` (maybe none); None when wfgen's table
    does not cover the region (then nothing is checked)."""
    if region not in GPU_REGIONS or gpu not in GPU_ZONES:
        return None
    return [z for z in GPU_ZONES[gpu] if z.rsplit("-", 1)[0] == region]


def gpu_zone_problem(zone: str, gpu: str | None) -> str | None:
    """Why `zone` cannot give this GPU (naming the zones of its region that can)."""
    if gpu is None:
        return None
    offered = gpu_zones(gpu, zone.rsplit("-", 1)[0])
    if offered is None or zone in offered:
        return None
    region = zone.rsplit("-", 1)[0]
    where = (f"in {region} it is offered in {', '.join(offered)}" if offered else
             f"{region} offers no {gpu}")
    return f"zone {zone} does not offer {gpu}; {where}"


# Machine series that Flex-start VMs may use (Google's "About Flex-start VMs":
# every accelerator-optimized series except A4X and G4, and H4D).
FLEX_START_SERIES = ("a2", "a3", "a4", "g2", "h4d")
# Longest run of a Flex-start VM (maxRunDuration), and the bounds of how long
# its create request may wait in the queue (params.requestValidForDuration).
FLEX_START_MAX_RUN_S = 7 * 86400
FLEX_START_MIN_RUN_S = 600
FLEX_START_MAX_WAIT_S = 7200
FLEX_START_MIN_WAIT_S = 90


def series_of(machine_type: str) -> str:
    return machine_type.split("-", 1)[0]
