"""The rules of a job, written once: names, limits, durations, the job spec's
field table (`JOB_FIELDS`: types, defaults, documentation and checks) and the
execution argument's allowed overrides (`ARGUMENT_KEYS`, `EXCLUSIVE`,
`check_argument`). The bottom of job/: wfgen.job.spec loads a job.yaml against
these, wfgen.job.schema turns them into the JSON Schema, wfgen.job.arguments
checks `--data` with them and writes the generated workflow's own checks.

Execution argument semantics: every key given replaces the spec's; `script`
and `command` exclude each other (giving one drops the spec's other); `env` is
merged over the spec's. A script runs as `sh -c SCRIPT NAME ARGS...`: its args
are its positional parameters ("$@")."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wfgen.limits import MAX_CONCURRENT_BRANCHES

ENV_NAME_RE = r"[A-Za-z_][A-Za-z0-9_]*"
# A container image reference as docker reads it: [registry/]path[:tag][@digest].
# No look-ahead, so that RE2 (the workflow's text.match_regex) reads it too.
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_RE = (r"(?:(?:(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?::[0-9]+)?"
            r"|[A-Za-z0-9-]+:[0-9]+)/)?" + _PATH_PART + r"(?:/" + _PATH_PART + r")*"
            r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
            r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?")


# ---------------------------------------------------------------------------
# Field table

Check = Callable[[Any], str | None]  # returns an error message, or None when fine


@dataclass(frozen=True)
class Field:
    """One key of the job spec: its type, default, documentation and checks."""

    name: str
    kind: str  # str, int, bool, duration, strlist, strmap, object, jsonlist, zones, fallback
    doc: str
    default: Any = None
    required: bool = False
    children: tuple[Field, ...] = ()
    check: Check | None = None
    pattern: str | None = None  # for the JSON Schema (the check enforces it)
    minimum: int | None = None
    maximum: int | None = None
    example: Any = None


_DURATION_RE = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_DURATION_PATTERN = r"^([0-9]+[dhms])+$"
MAX_TIMEOUT_S = 100 * 86400  # below Compute Engine's maxRunDuration limit (120 days)
MAX_TASKS = 10_000  # task indexes keep to 4 digits in VM names
MAX_NODES = 64  # a multi-node job's VMs (ranks keep to 2 digits in VM names)


def parse_duration(value: Any) -> int:
    """Seconds from `90s`, `10m`, `36h`, `7d`, `1h30m` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 90s, 10m, 36h or 7d")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("a duration must be positive")
        return value
    if not isinstance(value, str):
        raise ValueError("expected a duration like 90s, 10m, 36h or 7d")
    text = value.strip()
    match = _DURATION_RE.match(text)
    if not text or not match or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration; write e.g. 90s, 10m, 36h, 7d or 1h30m")
    d, h, m, s = (int(g or 0) for g in match.groups())
    seconds = ((d * 24 + h) * 60 + m) * 60 + s
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def format_duration(seconds: int) -> str:
    """The shortest spec spelling of a number of seconds (604800 -> 7d)."""
    out = ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            out += f"{seconds // size}{unit}"
            seconds %= size
    return out or "0s"


def _regex(pattern: str, what: str, hint: Callable[[str], str] | None = None) -> Check:
    compiled = re.compile(pattern)

    def check(value: Any) -> str | None:
        if compiled.fullmatch(value):
            return None
        return f"{value!r} is not {what}" + (hint(value) if hint else "")

    return check


def image_hint(value: str) -> str:
    """The reason an image reference with capitals is refused: its repository
    path must be lowercase (the tag may keep its case)."""
    name, colon, tag = value.rpartition(":") if "/" not in value.rpartition(":")[2] \
        else (value, "", "")
    name = name or value
    lowered = f"{name.lower()}{colon}{tag}" if colon else value.lower()
    if lowered != value and re.fullmatch(IMAGE_RE, lowered):
        return f": the repository name must be lowercase (did you mean {lowered!r}?)"
    return ""


_NAME_RE = r"[A-Za-z](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"  # a workflow ID
_ZONE_RE = r"[a-z]+-[a-z]+[0-9]+-[a-z]"
_REGION_RE = r"[a-z]+-[a-z]+[0-9]+"
_LABEL_KEY_RE = r"[a-z][a-z0-9_-]{0,62}"
_LABEL_VALUE_RE = r"[a-z0-9_-]{0,63}"
_GCE_NAME_RE = r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"


def _check_labels(value: dict[str, str]) -> str | None:
    for key, item in value.items():
        if not re.fullmatch(_LABEL_KEY_RE, key):
            return (f"label key {key!r} must be lowercase letters, digits, - or _, "
                    "starting with a letter")
        if key.startswith("wfgen-"):
            return f"label key {key!r}: the wfgen- prefix is reserved for wfgen's own labels"
        if not re.fullmatch(_LABEL_VALUE_RE, item):
            return f"label value {item!r} must be lowercase letters, digits, - or _ (at most 63)"
    return None


def _every(bad: list[str], what: str, rule: str) -> str | None:
    """One message naming every bad entry of a map or list (one round of fixes)."""
    if not bad:
        return None
    names = ", ".join(repr(b) for b in bad)
    return f"{what} {names} must be {rule}" if len(bad) == 1 else (
        f"{what}s {names} must each be {rule}")


def _check_env(value: dict[str, str]) -> str | None:
    return _every([k for k in value if not re.fullmatch(ENV_NAME_RE, k)],
                  "environment variable name", "letters, digits and _")


# A Secret Manager secret version: a secret's short name (its latest version in
# the VM's project, as the VM agent reads it) or its full resource name.
SECRET_NAME_RE = r"[A-Za-z0-9_-]{1,255}"
SECRET_REF_RE = (SECRET_NAME_RE + r"|projects/[a-z0-9.:-]{1,100}/secrets/" + SECRET_NAME_RE
                 + r"/versions/[A-Za-z0-9_-]{1,63}")
SECRET_REF_TEXT = ("a secret reference: a secret's name (its latest version) or "
                   "projects/PROJECT/secrets/NAME/versions/VERSION")


def _check_secret_env(value: dict[str, str]) -> str | None:
    return _check_env(value) or _every(
        [v for v in value.values() if not re.fullmatch(SECRET_REF_RE, v)], "value",
        SECRET_REF_TEXT + " (the value itself belongs in Secret Manager)")


def _check_data_names(value: dict[str, Any]) -> str | None:
    """inputs/outputs names (their URIs: wfgen.job.spec, one error per entry)."""
    return _every([k for k in value if not re.fullmatch(ENV_NAME_RE, k)],
                  "name", "letters, digits and _ (an environment variable name)")


# An output written as a map: {uri, sync_every}.
OUTPUT_FIELDS = (
    Field("uri", "str", "Where the output goes: gs://BUCKET/PATH (a folder when it ends in "
          "/, else one object).", required=True),
    Field("sync_every", "duration", "While the container runs, upload the files changed "
          "since the last upload at this interval (e.g. 10m), so even a VM that vanishes "
          "leaves its last checkpoint behind."),
)


def _check_workdir(value: str) -> str | None:
    if not value or value.startswith("/") or "\\" in value or "\x00" in value:
        return f"{value!r}: write a folder relative to the spec, such as ./src"
    return None


def _check_tags(value: list[str]) -> str | None:
    return _every([t for t in value if not re.fullmatch(_GCE_NAME_RE, t)],
                  "network tag", "lowercase letters, digits and -")


def _check_zones(value: str | list[str]) -> str | None:
    if value == "any":
        return None
    if isinstance(value, str):
        return None if re.fullmatch(_ZONE_RE, value) else (
            f"{value!r} is not a zone such as us-central1-a (or write zone: any)")
    listed = value
    return _every([z for z in listed if not re.fullmatch(_ZONE_RE, z)], "zone",
                  "a zone such as us-central1-a (or write zone: any)")


def _check_regions(value: list[str]) -> str | None:
    return _every([r for r in value if not re.fullmatch(_REGION_RE, r)], "region",
                  "a region such as us-east1")


def _check_provisioning(value: str) -> str | None:
    from wfgen.job.capacity import PROVISIONING

    return None if value in PROVISIONING else (
        f"{value!r} is not a provisioning model; use one of {', '.join(PROVISIONING)}")


def _check_placement(value: str) -> str | None:
    return None if value == "compact" else (
        f"{value!r} is not a placement; the one placement is compact")


_RESERVATION_RE = r"any|[a-z]([-a-z0-9]{0,61}[a-z0-9])?|projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/" \
    r"reservations/[a-z]([-a-z0-9]{0,61}[a-z0-9])?"


def _choice(allowed: tuple[str, ...], what: str) -> Callable[[str], str | None]:
    return lambda value: None if value in allowed else (
        f"{value!r} is not a {what}; use one of {', '.join(allowed)}")


def _machine_choice_fields(*, defaults: bool) -> tuple[Field, ...]:
    """The machine keys a fallback may change (with the machine's defaults, or none)."""
    return (
        Field("type", "str", "Machine type.", default="n1-standard-4" if defaults else None,
              check=_regex(r"[a-z0-9]+(-[a-z0-9]+)+", "a machine type such as n1-standard-8")),
        Field("accelerator", "object", "GPUs to attach.", children=(
            Field("type", "str", "Accelerator type.", required=True,
                  check=_regex(r"[a-z0-9-]+", "an accelerator type such as nvidia-tesla-t4")),
            Field("count", "int", "How many.", default=1, minimum=1, maximum=16),
        )),
        Field("spot", "bool", "Use a Spot VM (cheaper, may be preempted); the short form of "
              "provisioning: spot.", default=False if defaults else None),
        Field("provisioning", "str", "How the VM is provisioned: standard, spot, flex-start "
              "(Dynamic Workload Scheduler: waits in a queue for capacity, runs at most 7 "
              "days) or reservation (bound to a reservation). Default: spot with spot: true, "
              "else standard.", check=_check_provisioning),
        Field("reservation", "str", "A reservation to consume: its name (projects/P/"
              "reservations/NAME when shared from another project), or any.",
              check=_regex(_RESERVATION_RE, "a reservation name or any")),
    )


def _check_command(value: list[str]) -> str | None:
    return "command must name at least the program to run" if not value else None


MAX_SPLIT_PARALLELISM = 1_000  # VMs at once across a split job's child executions


def _check_parallelism(value: int) -> str | None:
    if value > MAX_SPLIT_PARALLELISM:
        return (f"{value} is over {MAX_SPLIT_PARALLELISM}, the most VMs at once wfgen runs "
                "for one job (split over child executions)")
    return None


MAX_REPORT_URI_CHARS = 900  # its parts' names add ~60 to Cloud Storage's 1,024 bytes


def _check_report_uri(value: str) -> str | None:
    """tasks.report: one object (not a folder, no wildcard), by data_uris' rules."""
    from wfgen.job.data_uris import parse_uri

    if len(value) > MAX_REPORT_URI_CHARS:
        return f"{len(value)} characters; at most {MAX_REPORT_URI_CHARS}"
    if any(c in value for c in "*?["):
        return f"{value!r}: the report is one object, not a wildcard"
    try:
        uri = parse_uri(value, output=True)
    except ValueError as exc:
        return str(exc)
    if uri.kind != "file":
        return (f"{value!r} is a folder; name one object, e.g. "
                f"gs://{uri.bucket}/{uri.path}report.jsonl")
    return None


def parallelism_problem(value: int, split: bool | None) -> str | None:
    """Why `parallelism` is too high for a job kept in one execution (split: false)."""
    if split is False and value > MAX_CONCURRENT_BRANCHES:
        return (f"{value} is over {MAX_CONCURRENT_BRANCHES}: Cloud Workflows runs at most "
                f"{MAX_CONCURRENT_BRANCHES} concurrent iterations of a parallel loop "
                "(remove tasks.split: false to run the tasks as child executions, up to "
                f"{MAX_SPLIT_PARALLELISM} at once)")
    return None


# Long jobs and preemption (stop_grace, checkpoint_dir, notify).
# The container's grace must leave the stop report time inside the platform's
# shutdown window: 30 s for Spot VMs, 120 s for standard ones (Compute v1
# Scheduling.skipGuestOsShutdown).
MAX_GRACE_SPOT_S = 25
MAX_GRACE_STANDARD_S = 110
DEFAULT_GRACE = "25s"
_GCS_DIR_RE = r"gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/[^\x00-\x1f\x7f]*)?"
_TOPIC_RE = (r"projects/(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/"
             r"[A-Za-z][A-Za-z0-9._~+%-]{2,254}")
NOTIFY_EVENTS = ("end", "retry")


def _check_topic(value: str) -> str | None:
    if not re.fullmatch(_TOPIC_RE, value):
        return (f"{value!r} is not a topic: write projects/PROJECT/topics/TOPIC (a topic id "
                "has 3-255 letters, digits or -._~+%, starting with a letter)")
    if value.rsplit("/", 1)[-1].startswith("goog"):
        return f"{value!r}: topic ids may not start with goog"
    return None


def _check_events(value: list[str]) -> str | None:
    if not value:
        return f"name at least one of {', '.join(NOTIFY_EVENTS)}"
    bad = [e for e in value if e not in NOTIFY_EVENTS]
    if bad:
        return f"unknown event {bad[0]!r}: the events are {', '.join(NOTIFY_EVENTS)}"
    if len(set(value)) < len(value):
        return "each event once"
    return None


JOB_FIELDS: tuple[Field, ...] = (
    Field("name", "str", "Workflow name, and prefix of the VM names.", default=None,
          check=lambda v: f"{v!r} is longer than 63 characters" if len(v) > 63 else
          _regex(_NAME_RE, "a valid name (a letter, then letters, digits, - or _, ending in a "
                 "letter or digit)")(v),
          pattern=f"^{_NAME_RE}$", example="resnet-train"),
    Field("project", "str", "GCP project of the VMs (default: the workflow's own project).",
          check=_regex(r"[a-z][a-z0-9-]{4,28}[a-z0-9]|[a-z0-9.-]+:[a-z][a-z0-9-]{4,28}[a-z0-9]",
                       "a GCP project id"), example="my-project"),
    Field("location", "str", "Region where the workflow lives.", default="us-central1",
          check=_regex(_REGION_RE, "a region such as us-central1"), pattern=f"^{_REGION_RE}$"),
    Field("zone", "zones", "Zone of the VMs, in the location's region (default: the region's "
          "first zone, e.g. us-central1-a, europe-west1-b); or a list of zones tried in order "
          "when one has no capacity; or any: every zone of the allowed regions that offers "
          "the machine's GPU.", check=_check_zones, pattern=f"^({_ZONE_RE}|any)$",
          example=["us-central1-a", "us-central1-b"]),
    Field("regions", "strlist", "More regions the zones may be in (zone: any spans them); "
          "the workflow stays in location.", check=_check_regions, example=["us-east1"]),
    Field("container", "object", "The container to run.", required=True, children=(
        Field("image", "str", "Container image to run.", required=True,
              check=_regex(IMAGE_RE, "an image reference such as "
                           "us-docker.pkg.dev/project/repo/image:tag", image_hint),
              pattern=f"^{IMAGE_RE}$",
              example="us-docker.pkg.dev/my-project/ml/train:1.4"),
        Field("command", "strlist", "Entrypoint override, as an argv list (default: the image's).",
              check=_check_command, example=["python", "train.py"]),
        Field("args", "strlist", "Arguments, as an argv list; never split on spaces (with "
              "script: its positional parameters, \"$@\").",
              default=[], example=["--epochs", "90"]),
        Field("script", "str", "Or: a shell script, run as `sh -c SCRIPT NAME ARGS...` inside "
              "the container."),
        Field("env", "strmap", "Environment variables of the container.", default={},
              check=_check_env, example={"WANDB_MODE": "offline"}),
        Field("secret_env", "strmap", "Environment variables read from Secret Manager on "
              "the VM just before the container starts: name -> a secret's name (its latest "
              "version in the VM's project) or projects/P/secrets/S/versions/V. Only these "
              "references reach the workflow and the VM's metadata; the VM's service account "
              "needs roles/secretmanager.secretAccessor.", check=_check_secret_env,
              example={"WANDB_API_KEY": "wandb-key"}),
    )),
    Field("machine", "object", "The VM.", default={}, children=(
        *_machine_choice_fields(defaults=True),
        Field("disk_gb", "int", "Boot disk size in GB.", default=50, minimum=10, maximum=65536),
        Field("disk_type", "str", "Boot disk type: pd-balanced, pd-ssd, pd-standard or "
              "hyperdisk-balanced (series such as C4 and N4 take only Hyperdisk, N1/N2/E2 "
              "only Persistent Disk). Unset: pd-balanced, or hyperdisk-balanced on a "
              "Hyperdisk-only series.",
              check=_choice(("pd-balanced", "pd-ssd", "pd-standard", "hyperdisk-balanced"),
                            "disk type"), example="pd-ssd"),
        Field("local_ssd", "int", "Local SSD disks (375 GiB each, NVMe) to attach as scratch, "
              "formatted and mounted into the container at /scratch (WFGEN_SCRATCH_DIR); the "
              "machine type decides the allowed counts.", default=0, minimum=0, maximum=24),
        Field("image_family", "str", "Boot image family (Container-Optimized OS).",
              default="cos-stable", check=_regex(r"[a-z][-a-z0-9]*", "an image family")),
        Field("image_project", "str", "Project of the boot image family.", default="cos-cloud",
              check=_regex(r"[a-z][-a-z0-9.:]*", "a project id")),
        Field("image", "str", "A pinned boot image (a URL or projects/P/global/images/NAME); "
              "overrides image_family."),
    )),
    Field("fallback", "fallback", "Machine choices tried in order when the one before has no "
          "capacity in any zone; each is merged over machine (a key set to null is removed).",
          children=_machine_choice_fields(defaults=False),
          example=[{"provisioning": "flex-start"}, {"provisioning": "standard"}]),
    Field("network", "object", "Networking of the VM.", default={}, children=(
        Field("network", "str", "VPC network.", default="default",
              check=_regex(_GCE_NAME_RE, "a network name")),
        Field("subnetwork", "str", "Subnetwork (in the zone's region).",
              check=_regex(_GCE_NAME_RE, "a subnetwork name")),
        Field("external_ip", "bool", "Give the VM an external IP (needed without Cloud NAT).",
              default=True),
        Field("tags", "strlist", "Network tags.", default=[], check=_check_tags),
    )),
    Field("service_account", "str", "Service account of the VM (default: Compute default).",
          check=_regex(r"default|[a-z0-9-]+@[a-z0-9.-]+\.iam\.gserviceaccount\.com|"
                       r"[0-9]+-compute@developer\.gserviceaccount\.com",
                       "a service account email"),
          example="runner@my-project.iam.gserviceaccount.com"),
    Field("timeout", "duration", "Whole job, all attempts (at most 100d).", default="7d"),
    Field("heartbeat", "duration", "How often the workflow checks that the VM is alive "
          "(default: a quarter of the timeout, at least 10s, at most 10m)."),
    Field("retries", "int", "New attempts after a preemption or a lost VM.", default=2,
          minimum=0, maximum=100),
    Field("retry_on_failure", "bool", "Also retry when the container exits non-zero.",
          default=False),
    Field("labels", "strmap", "Labels for the VMs.", default={}, check=_check_labels),
    Field("nodes", "int", "Multi-node: run the container on this many identical VMs in one "
          "zone as one job (WFGEN_NODE_RANK, WFGEN_NUM_NODES, WFGEN_MASTER_ADDR, "
          "WFGEN_MASTER_PORT, WFGEN_NODE_HOSTS, WFGEN_GPUS_PER_NODE tell each node its part); "
          "1 is a single VM.", default=1, minimum=1, maximum=MAX_NODES),
    Field("placement", "str", "Multi-node: compact asks Compute Engine to place the nodes "
          "close together (a compact placement policy, made for each attempt and deleted "
          "with it), for machine series that support it (A2, A3, A4, C2, C2D, C3, C3D, C4, "
          "C4D, G2, G4, H3, H4D, N2, N2D).", check=_check_placement, pattern="^compact$",
          example="compact"),
    Field("master_port", "int", "Multi-node: the port node 0 listens on for the rendezvous "
          "(WFGEN_MASTER_PORT).", default=29500, minimum=1024, maximum=65535),
    Field("tasks", "object", "Fan-out: run the container once per item, each task on its own "
          "VM, at most `parallelism` at once (WFGEN_TASK_INDEX, WFGEN_TASK_COUNT and "
          "WFGEN_TASK_ITEM tell a task which it is).", children=(
        Field("items", "jsonlist", "The work items, one task each: strings reach the task as "
              "they are, any other JSON value as compact JSON.",
              example=["shard-0", "shard-1", {"lr": 0.1}]),
        Field("count", "int", "Or: this many tasks (WFGEN_TASK_ITEM is the index).",
              minimum=1, maximum=MAX_TASKS),
        Field("items_file", "str", "Or: a JSON Lines file beside the spec, one work item a "
              "line (a JSON value, or else the line as a string).", example="items.jsonl"),
        Field("parallelism", "int", "Tasks (VMs) running at once (default: every task, up to "
              f"{MAX_CONCURRENT_BRANCHES}; over {MAX_CONCURRENT_BRANCHES}, the most Cloud "
              "Workflows runs concurrently in one execution, the job is split over child "
              f"executions, up to {MAX_SPLIT_PARALLELISM}).",
              minimum=1, check=_check_parallelism),
        Field("split", "bool", "Whether the tasks run as child executions of a generated "
              "shard workflow (a parent workflow awaits at most 20 at once; up to "
              f"{MAX_TASKS} tasks and {MAX_SPLIT_PARALLELISM} VMs at once). Default: split "
              "exactly when the job does not fit one execution; true splits anyway, false "
              "refuses a job that does not fit."),
        Field("max_vms", "int", "Refuse the job if it could run more VMs than this at once "
              "(default: parallelism).", minimum=1, maximum=MAX_SPLIT_PARALLELISM),
        Field("report", "str", "Write the full per-task report (one JSON object a line: "
              "index, status, exit_code, attempts, instance) to this Cloud Storage object, "
              "gs://BUCKET/PATH.jsonl, when the tasks end; the workflow's service account "
              "needs roles/storage.objectUser on the bucket.", check=_check_report_uri,
              example="gs://my-bucket/runs/report.jsonl"),
    )),
    Field("quota", "object", "Quotas of the project the job must fit, checked before any "
          "VM is made.", children=(
        Field("gpus", "int", "GPUs the project may use at once in the job's region: "
              "parallelism x accelerator.count must fit.", minimum=1),
    )),
    Field("stop_grace", "duration", "When the VM stops (preemption, delete, timeout): how long "
          "the container has between SIGTERM and SIGKILL to exit, e.g. to save a checkpoint "
          f"(at most {MAX_GRACE_SPOT_S}s on a Spot VM, {MAX_GRACE_STANDARD_S}s on a standard "
          "one).", default=DEFAULT_GRACE),
    Field("checkpoint_dir", "str", "Where the job keeps its checkpoints: the container gets "
          "WFGEN_CHECKPOINT_DIR=CHECKPOINT_DIR/NAME/EXECUTION_ID (/TASK in a fan-out), the same "
          "on every attempt (wfgen copies nothing).",
          check=lambda v: f"{len(v)} characters; at most 200" if len(v) > 200 else _regex(
              _GCS_DIR_RE, "a Cloud Storage path such as gs://my-bucket/checkpoints")(v),
          pattern=f"^{_GCS_DIR_RE}$", example="gs://my-bucket/checkpoints"),
    Field("inputs", "strmap", "Data downloaded to the VM's disk before the container starts: "
          "NAME -> gs://BUCKET/PATH (a folder when it ends in /, a wildcard with * in the "
          "last part, else one object); the container's $NAME is its local path. The VM's "
          "service account needs roles/storage.objectViewer.", check=_check_data_names,
          example={"DATASET": "gs://my-bucket/datasets/imagenet/"}),
    Field("outputs", "outputs", "Data uploaded after the container exits (success, failure "
          "or preemption): NAME -> gs://BUCKET/PATH (a folder when it ends in /, else one "
          "object), or {uri, sync_every} to also upload changed files at that interval while "
          "the container runs. The container writes to $NAME; the VM's service account "
          "needs roles/storage.objectCreator.", check=_check_data_names, children=OUTPUT_FIELDS,
          example={"CHECKPOINTS": {"uri": "gs://my-bucket/runs/ckpt/", "sync_every": "10m"},
                   "MODEL": "gs://my-bucket/runs/model.pt"}),
    Field("notify", "object", "Publish a message on Pub/Sub when the job ends (and, with "
          "events: [end, retry], when an attempt is retried): the result map as JSON data, "
          "attributes wfgen_job, wfgen_execution, wfgen_event and status.", children=(
        Field("pubsub_topic", "str", "The topic: projects/PROJECT/topics/TOPIC.",
              required=True, check=_check_topic, pattern=f"^{_TOPIC_RE}$",
              example="projects/my-project/topics/training"),
        Field("events", "strlist", "When to publish: end (the job ended), retry (an attempt "
              "ended and another starts).", default=["end"], check=_check_events,
              example=["end", "retry"]),
    )),
    Field("workdir", "str", "A folder beside the spec (a path relative to it) that run and "
          "deploy pack (honouring its .wfgenignore and .gitignore) and upload once, named by "
          "its content, to staging; the VM unpacks it as the container's working directory "
          "/workdir. Edited code runs without an image rebuild.", check=_check_workdir,
          example="./src"),
    Field("staging", "str", "Where run and deploy upload the packed workdir: "
          "gs://BUCKET/PREFIX (or --staging).",
          check=lambda v: f"{len(v)} characters; at most 200" if len(v) > 200 else _regex(
              _GCS_DIR_RE, "a Cloud Storage path such as gs://my-bucket/staging")(v),
          pattern=f"^{_GCS_DIR_RE}$", example="gs://my-bucket/staging"),
)

_KIND_NAMES = {
    "str": "a string", "int": "an integer", "bool": "true or false",
    "duration": "a duration like 90s, 10m, 36h or 7d", "strlist": "a list of strings",
    "strmap": "a map of strings", "object": "a map", "jsonlist": "a list",
    "zones": "a zone, a list of zones or any", "fallback": "a list of machine choices (maps)",
    "outputs": "a map of NAME: gs://BUCKET/PATH or NAME: {uri, sync_every}",
}


def default_name(path: str) -> str:
    """A job name from the file name: `train-job.yaml` -> `train-job`."""
    stem = Path(path).stem if path and not path.startswith("<") else "job"
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_") or "job"
    if not name[0].isalpha():
        name = "job-" + name
    return name[:63]


# A spec's args, env and script go into the generated workflow, which Cloud Workflows
# caps at 128 KB: a spec twice that size can never deploy, so it is refused unread.
MAX_SPEC_BYTES = 256 * 1024


def default_heartbeat(timeout_s: int) -> int:
    """A quarter of the timeout, at least 10s and at most 10m (and below the timeout)."""
    beat = min(600, max(10, timeout_s // 4))
    return beat if beat < timeout_s else max(1, timeout_s // 2)


def heartbeat_conflict(heartbeat_s: int, timeout_s: int, *, timeout_given: bool,
                       heartbeat_from: str = "", timeout_from: str = "") -> str:
    """The message for a heartbeat that is not shorter than the timeout: which value
    is whose, and what to write instead."""
    timeout_note = timeout_from or ("" if timeout_given else ", the default")
    return (f"heartbeat ({format_duration(heartbeat_s)}{heartbeat_from}) must be shorter than "
            f"timeout ({format_duration(timeout_s)}{timeout_note}); leave heartbeat out to get "
            f"the default for this timeout ({format_duration(default_heartbeat(timeout_s))}, a "
            "quarter of it, at least 10s, at most 10m) or write a shorter one")


# ---------------------------------------------------------------------------
# The execution argument: what a run may override

_KIND_TEXT = {"str": "a string", "strlist": "a list of strings", "strmap": "a map of strings"}


@dataclass(frozen=True)
class ArgumentKey:
    """One key of the execution argument."""

    name: str
    kind: str  # str, strlist, strmap
    doc: str
    pattern: str | None = None  # the whole string (a strmap: each value) must match
    what: str = ""  # what `pattern` describes, for messages
    # the workflow's check (shorter: a Workflows expression holds 400 characters)
    workflow_pattern: str | None = None
    nonempty: bool = False  # a list that needs at least one item
    value_check: Check | None = None  # more than a pattern says (a strmap: each value)
    workflow_refuse: str | None = None  # the workflow: the JSON text may not match this


ARGUMENT_KEYS: tuple[ArgumentKey, ...] = (
    ArgumentKey("image", "str", "Container image for this run.", pattern=IMAGE_RE,
                what="an image reference such as us-docker.pkg.dev/project/repo/image:tag",
                workflow_pattern=r"[A-Za-z0-9][A-Za-z0-9._/:@-]*"),
    ArgumentKey("command", "strlist", "Entrypoint for this run, as an argv list (drops the "
                "spec's script).", nonempty=True),
    ArgumentKey("args", "strlist", "Arguments for this run: the argv after the command, or "
                "the script's positional parameters (\"$@\")."),
    ArgumentKey("script", "str", "Shell script for this run, run as `sh -c SCRIPT NAME "
                "ARGS...` (drops the spec's command)."),
    ArgumentKey("env", "strmap", "Environment variables, merged over the spec's."),
)
KEY_NAMES = tuple(k.name for k in ARGUMENT_KEYS)
# Known only to a job whose spec has container.secret_env (argument_keys): the
# workflow of any other job carries nothing of secrets.
SECRET_ENV_KEY = ArgumentKey(
    "secret_env", "strmap", "Secrets as environment variables, merged over the spec's "
    "container.secret_env: name -> a secret reference, never a value (only for a job whose "
    "spec has container.secret_env).", pattern=SECRET_REF_RE, what=SECRET_REF_TEXT,
    workflow_pattern=r"[\w-]+|projects/[\w.:-]+/secrets/[\w-]+/versions/[\w-]+")


# A gs:// URI as the workflow checks it (RE2, on the JSON text, within the 400
# characters of an expression): a bucket and a path without '"' or '\\'
# (escapes), no wildcard in an output; then no '.' or '..' part, no '//', no
# wildcard before an input's last part (URI_REFUSE). The CLI checks the whole rule
# (wfgen.job.data_uris).
_URI_BUCKET = r"gs://[a-z0-9][\w.-]{1,220}[a-z0-9]/"
INPUT_URI_RE = _URI_BUCKET + r'[^"\\]*'
OUTPUT_URI_RE = _URI_BUCKET + r'[^"\\*?\[]*'
URI_REFUSE = r'/\.\.?[/"]|[^:]//|[*?\[][^"]*/'
URI_REFUSE_TEXT = "a path with no '.' or '..' part, no '//', and a wildcard only in its last part"


def _uri_value_check(output: bool) -> Check:
    def check(value: str) -> str | None:
        from wfgen.job.data_uris import parse_uri

        try:
            parse_uri(value, output=output)
        except ValueError as exc:
            return str(exc)
        return None

    return check


# Known only to a job whose spec has inputs (outputs): merged over the spec's, as env.
INPUTS_KEY = ArgumentKey(
    "inputs", "strmap", "Input URIs for this run, merged over the spec's inputs: NAME -> "
    "gs://BUCKET/PATH (only for a job whose spec has inputs).", pattern=INPUT_URI_RE,
    what="a gs://BUCKET/PATH URI", workflow_pattern=INPUT_URI_RE,
    value_check=_uri_value_check(False), workflow_refuse=URI_REFUSE)
OUTPUTS_KEY = ArgumentKey(
    "outputs", "strmap", "Output URIs for this run, merged over the spec's outputs (each "
    "keeps its sync_every): NAME -> gs://BUCKET/PATH, no wildcard (only for a job whose "
    "spec has outputs).", pattern=OUTPUT_URI_RE,
    what="a gs://BUCKET/PATH URI without a wildcard", workflow_pattern=OUTPUT_URI_RE,
    value_check=_uri_value_check(True), workflow_refuse=URI_REFUSE)


def _check_workdir_uri(value: str) -> str | None:
    from wfgen.job.data_uris import parse_uri

    try:
        uri = parse_uri(value, output=True)
    except ValueError as exc:
        return str(exc)
    return None if uri.kind == "file" else f"{value!r} is a folder; name one packed tree " \
        "(gs://BUCKET/PREFIX/workdir-SHA256.tar.gz)"


# Known only to a job whose spec has a workdir: another packed tree for this run.
WORKDIR_KEY = ArgumentKey(
    "workdir", "str", "Another packed tree for this run's working directory: the gs:// URI "
    "of a workdir-SHA256.tar.gz that run or deploy uploaded (only for a job whose spec has "
    "a workdir).", pattern=OUTPUT_URI_RE + r"[^/]", what="a gs://BUCKET/PATH URI of one object",
    workflow_pattern=OUTPUT_URI_RE + r"[^/\\]", value_check=_check_workdir_uri,
    workflow_refuse=URI_REFUSE)


def argument_keys(secrets: bool = False, inputs: bool = False,
                  outputs: bool = False, workdir: bool = False) -> tuple[ArgumentKey, ...]:
    """The keys an argument may give: secret_env, inputs, outputs and workdir only when
    the spec has them."""
    return ARGUMENT_KEYS + ((SECRET_ENV_KEY,) if secrets else ()) + (
        (INPUTS_KEY,) if inputs else ()) + ((OUTPUTS_KEY,) if outputs else ()) + (
        (WORKDIR_KEY,) if workdir else ())
# Pairs of keys one argument may not give together, and why.
EXCLUSIVE: tuple[tuple[str, str, str], ...] = (
    ("command", "script", "script runs with sh -c; it cannot be combined with command"),
)



def check_argument(value: Any, keys: tuple[ArgumentKey, ...] = ARGUMENT_KEYS) -> str | None:
    """Why `value` is not a valid execution argument, or None (messages name the key)."""
    if not isinstance(value, dict):
        return 'the execution argument must be a JSON object, e.g. {"args": ["--lr", "0.1"]}'
    names = tuple(k.name for k in keys)
    for key in value:
        if key not in names:
            why = (" (the job spec has no container.secret_env)"
                   if key == SECRET_ENV_KEY.name else
                   f" (the job spec has no {key})" if key in ("inputs", "outputs", "workdir")
                   else "")
            close = difflib.get_close_matches(str(key), names, n=1) if not why else []
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return f"unknown key {key!r}{why}{hint or ';'} known keys: {', '.join(names)}"
    for rule in keys:
        if rule.name not in value:
            continue
        item = value[rule.name]
        if not _has_kind(item, rule.kind):
            return _kind_problem(rule, item)
        texts = [item] if isinstance(item, str) else [*item, *(
            item.values() if isinstance(item, dict) else [])]
        if any("\x00" in text for text in texts):
            return f"{rule.name} may not contain the NUL character"
        if rule.nonempty and not item:
            return f"{rule.name} must name at least the program to run"
        if rule.kind == "strmap":
            bad = [name for name in item if not re.fullmatch(ENV_NAME_RE, name)]
            if bad:
                return (f"{rule.name}: variable name {bad[0]!r} must be letters, digits and _ "
                        "(not starting with a digit)")
        values = item.values() if isinstance(item, dict) else [item]
        bad = [v for v in values if rule.pattern and not re.fullmatch(rule.pattern, v)]
        if bad:
            hint = image_hint(bad[0]) if rule.name == "image" else ""
            return f"{rule.name}: {bad[0]!r} is not {rule.what}{hint}"
        for name, text in (item.items() if isinstance(item, dict) else [("", item)]):
            problem = rule.value_check(text) if rule.value_check else None
            if problem:
                return f"{rule.name}{'.' + name if name else ''}: {problem}"
    for first, second, why in EXCLUSIVE:
        if first in value and second in value:
            return why
    return None


def _kind_problem(rule: ArgumentKey, item: Any) -> str:
    """Why an argument's value has the wrong type, naming the item inside a list or
    map: the same rule as the spec's (strings only; a number is quoted)."""
    wrong: list[tuple[str, Any]] = []
    if rule.kind == "strlist" and isinstance(item, list):
        wrong = [(f"{rule.name}[{i}]", x) for i, x in enumerate(item) if not isinstance(x, str)]
    elif rule.kind == "strmap" and isinstance(item, dict):
        wrong = [(f"{rule.name}.{k}", x) for k, x in item.items() if not isinstance(x, str)]
    if not wrong:
        return f"{rule.name} must be {_KIND_TEXT[rule.kind]}"
    where, bad = wrong[0]
    quoted = isinstance(bad, int | float) and not isinstance(bad, bool)
    hint = f' (quote it: "{json.dumps(bad)}")' if quoted else ""
    return f"{where} must be a string, got {json.dumps(bad)}{hint}"


def _has_kind(item: Any, kind: str) -> bool:
    if kind == "str":
        return isinstance(item, str)
    if kind == "strlist":
        return isinstance(item, list) and all(isinstance(x, str) for x in item)
    return isinstance(item, dict) and all(isinstance(x, str) for x in item.values())

