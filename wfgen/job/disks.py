"""What Compute Engine accepts for a VM's disks: the boot disk's type per machine
series (some series take only Hyperdisk, most only Persistent Disk) and how
many Local SSD disks (375 GiB, NVMe scratch) a machine type may attach, so
that `validate` refuses what an instances.insert would, naming the field.

The tables restate Google's published lists (https://cloud.google.com/compute/
docs/disks#disk-types, the machine series pages' "Supported disk types", and
https://cloud.google.com/compute/docs/disks/local-ssd#choose_number_local_ssds,
as of 2025). A series not listed here is not checked (Compute Engine says)."""

from __future__ import annotations

import re

from wfgen.job.machines import series_of

DISK_TYPES = ("pd-balanced", "pd-ssd", "pd-standard", "hyperdisk-balanced")
# Series whose boot disk must be Hyperdisk (no Persistent Disk at all)
HYPERDISK_ONLY = ("c4", "c4a", "c4d", "n4", "n4a", "n4d", "h4d", "x4", "m4", "a4", "a4x")
# Accelerator types of a series that takes both whose own shape is Hyperdisk-only
HYPERDISK_ONLY_TYPES = ("a3-ultragpu-",)
# Series that take both Persistent Disk and Hyperdisk Balanced
BOTH = ("c3", "c3d", "a3", "h3", "m3", "z3")
# Everything else wfgen knows takes Persistent Disk only (N1, N2, N2D, E2, C2, C2D,
# T2D, T2A, M1, M2, A2, G2)
PD_ONLY = ("e2", "n1", "n2", "n2d", "c2", "c2d", "t2d", "t2a", "m1", "m2", "a2", "g2")

# Local SSD: series whose count depends on the vCPUs ((max vCPUs, allowed counts), in
# order); the other series with Local SSD take it only built into -lssd types.
LOCAL_SSD_BY_VCPUS: dict[str, tuple[tuple[int, tuple[int, ...]], ...]] = {
    "n1": ((96, (1, 2, 3, 4, 5, 6, 7, 8, 16, 24)),),
    "n2": ((10, (1, 2, 4, 8, 16, 24)), (20, (2, 4, 8, 16, 24)), (40, (4, 8, 16, 24)),
           (80, (8, 16, 24)), (128, (16, 24))),
    "n2d": ((16, (1, 2, 4, 8, 16, 24)), (48, (2, 4, 8, 16, 24)), (80, (4, 8, 16, 24)),
            (224, (8, 16, 24))),
    "c2": ((8, (1, 2, 4, 8)), (16, (2, 4, 8)), (30, (4, 8)), (60, (8,))),
    "c2d": ((16, (1, 2, 4, 8)), (32, (2, 4, 8)), (56, (4, 8)), (112, (8,))),
}
# A2 standard: by GPU count (a2-highgpu-1g ...)
A2_LOCAL_SSD = {1: (1, 2, 4, 8), 2: (2, 4, 8), 4: (4, 8), 8: (8,), 16: (8,)}
# Series whose Local SSD comes only built into the machine type (-lssd, or the GPU types)
BUILT_IN_LOCAL_SSD = ("c3", "c3d", "c4", "c4a", "c4d", "z3", "a3", "a4", "a4x", "h4d")
LOCAL_SSD_GB = 375


def hyperdisk_only(machine_type: str) -> bool:
    return series_of(machine_type) in HYPERDISK_ONLY or machine_type.startswith(
        HYPERDISK_ONLY_TYPES)


def disk_type_problem(machine_type: str, disk_type: str) -> str | None:
    """Why this machine type cannot boot from this disk type, or None."""
    series = series_of(machine_type)
    if hyperdisk_only(machine_type) and not disk_type.startswith("hyperdisk-"):
        return (f"{machine_type} takes only Hyperdisk: use disk_type: hyperdisk-balanced "
                f"({machine_type} has no Persistent Disk)")
    if disk_type.startswith("hyperdisk-") and series in PD_ONLY:
        return (f"{machine_type} cannot use {disk_type}: the {series.upper()} series takes "
                "Persistent Disk (pd-balanced, pd-ssd or pd-standard); Hyperdisk needs a "
                "series such as C3, C4, N4 or A3")
    return None


def default_disk_type(machine_type: str) -> str | None:
    """wfgen's boot disk when the spec names none: pd-balanced (Compute Engine's own
    default is pd-standard on N1/N2/E2, slow for a job's data), hyperdisk-balanced
    where the series takes only Hyperdisk; None for a series wfgen does not know."""
    if hyperdisk_only(machine_type):
        return "hyperdisk-balanced"
    series = series_of(machine_type)
    return "pd-balanced" if series in PD_ONLY or series in BOTH else None


def _vcpus(machine_type: str) -> int | None:
    """The vCPUs a standard/highmem/highcpu type names (n2-standard-8 -> 8)."""
    match = re.search(r"-(?:custom-)?([0-9]+)(?:-[0-9]+)?$", machine_type)
    return int(match.group(1)) if match else None


def local_ssd_problem(machine_type: str, count: int) -> str | None:
    """Why this machine type cannot attach `count` Local SSD disks, or None."""
    if count == 0:
        return None
    series = series_of(machine_type)
    if series in BUILT_IN_LOCAL_SSD or machine_type.endswith("-lssd") or \
            machine_type.startswith("a2-ultragpu-"):
        return (f"{machine_type} cannot attach Local SSD disks by count: on the "
                f"{series.upper()} series they come built into -lssd (or GPU) machine types; "
                "machine.local_ssd works on N1, N2, N2D, C2, C2D and A2 standard types")
    if machine_type.startswith("a2-highgpu-") or machine_type.startswith("a2-megagpu-"):
        gpus = re.search(r"-([0-9]+)g$", machine_type)
        allowed = A2_LOCAL_SSD.get(int(gpus.group(1))) if gpus else None
        return _count_problem(machine_type, count, allowed)
    table = LOCAL_SSD_BY_VCPUS.get(series)
    if table is None:
        if series in PD_ONLY or series in HYPERDISK_ONLY or series in BOTH:
            return f"{machine_type} cannot attach Local SSD disks (the {series.upper()} " \
                   "series has none); use N1, N2, N2D, C2, C2D or a -lssd type"
        return None
    vcpus = _vcpus(machine_type)
    if vcpus is None:
        return None
    if vcpus < 2 and series != "n1":
        return f"{machine_type} is too small for Local SSD"
    allowed = next((counts for top, counts in table if vcpus <= top), table[-1][1])
    return _count_problem(machine_type, count, allowed)


def _count_problem(machine_type: str, count: int, allowed: tuple[int, ...] | None
                   ) -> str | None:
    if allowed is None or count in allowed:
        return None
    return (f"{machine_type} attaches {', '.join(map(str, allowed[:-1]))} or {allowed[-1]} "
            f"Local SSD disks, not {count}")
