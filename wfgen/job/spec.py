"""The job spec: a short YAML file describing one container job.

One declarative table (`JOB_FIELDS`) drives three things, so they never
disagree: loading and checking a job.yaml (every error names file, line,
column and field path, unknown keys get a "did you mean"), filling defaults,
and the JSON Schema that `wfgen schema` prints for editors.

Loading uses ruamel.yaml's round-trip loader because it keeps the line and
column of every key and value."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wfgen.errors import Location, SpecError, UsageError
from wfgen.job.arguments import ENV_NAME_RE, IMAGE_RE
from wfgen.limits import MAX_CONCURRENT_BRANCHES, MAX_STEPS

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


def _regex(pattern: str, what: str) -> Check:
    compiled = re.compile(pattern)

    def check(value: Any) -> str | None:
        return None if compiled.fullmatch(value) else f"{value!r} is not {what}"

    return check


_NAME_RE = r"[A-Za-z][A-Za-z0-9_-]{0,62}"
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


_RESERVATION_RE = r"any|[a-z]([-a-z0-9]{0,61}[a-z0-9])?|projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/" \
    r"reservations/[a-z]([-a-z0-9]{0,61}[a-z0-9])?"


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


def _check_parallelism(value: int) -> str | None:
    if value > MAX_CONCURRENT_BRANCHES:
        return (f"{value} is over {MAX_CONCURRENT_BRANCHES}: Cloud Workflows runs at most "
                f"{MAX_CONCURRENT_BRANCHES} concurrent iterations of a parallel loop")
    return None


JOB_FIELDS: tuple[Field, ...] = (
    Field("name", "str", "Workflow name, and prefix of the VM names.", default=None,
          check=lambda v: f"{v!r} is longer than 63 characters" if len(v) > 63 else
          _regex(_NAME_RE, "a valid name (a letter, then letters, digits, - or _)")(v),
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
                           "us-docker.pkg.dev/project/repo/image:tag"), pattern=f"^{IMAGE_RE}$",
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
    )),
    Field("machine", "object", "The VM.", default={}, children=(
        *_machine_choice_fields(defaults=True),
        Field("disk_gb", "int", "Boot disk size in GB.", default=50, minimum=10, maximum=65536),
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
    Field("tasks", "object", "Fan-out: run the container once per item, each task on its own "
          "VM, at most `parallelism` at once (WFGEN_TASK_INDEX, WFGEN_TASK_COUNT and "
          "WFGEN_TASK_ITEM tell a task which it is).", children=(
        Field("items", "jsonlist", "The work items, one task each: strings reach the task as "
              "they are, any other JSON value as compact JSON.",
              example=["shard-0", "shard-1", {"lr": 0.1}]),
        Field("count", "int", "Or: this many tasks (WFGEN_TASK_ITEM is the index).",
              minimum=1, maximum=MAX_TASKS),
        Field("parallelism", "int", "Tasks (VMs) running at once (default: every task, up to "
              f"{MAX_CONCURRENT_BRANCHES}, the most Cloud Workflows runs concurrently).",
              minimum=1, check=_check_parallelism),
    )),
)

_KIND_NAMES = {
    "str": "a string", "int": "an integer", "bool": "true or false",
    "duration": "a duration like 90s, 10m, 36h or 7d", "strlist": "a list of strings",
    "strmap": "a map of strings", "object": "a map", "jsonlist": "a list",
    "zones": "a zone, a list of zones or any", "fallback": "a list of machine choices (maps)",
}

# ---------------------------------------------------------------------------
# Loading


@dataclass
class JobSpec:
    """A checked job spec with every default filled in (plain data for templates)."""

    data: dict[str, Any]
    path: str = "<job>"
    seconds: dict[str, int] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # field path -> line in the file
    plan: Any = None  # wfgen.job.capacity.Plan: the zones and machine choices, in order

    def location(self, field_path: str) -> Location:
        """Where a field is in the spec file (its parent's line when it is absent)."""
        line, probe = 0, field_path
        while probe and not line:
            line = self.lines.get(probe, 0)
            probe = probe.rpartition(".")[0]
        return Location(self.path, line, 0, field_path)

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def timeout_s(self) -> int:
        return self.seconds["timeout"]

    @property
    def heartbeat_s(self) -> int:
        return self.seconds["heartbeat"]


def _position(node: Any, key: Any, *, value: bool) -> tuple[int, int]:
    """1-based (line, column) of a key (or its value) in a ruamel container."""
    try:
        if isinstance(key, int):
            line, col = node.lc.item(key)
        elif value:
            line, col = node.lc.value(key)
        else:
            line, col = node.lc.key(key)
        return line + 1, col + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        line = getattr(getattr(node, "lc", None), "line", None)
        return (line + 1, 1) if isinstance(line, int) else (0, 0)


class _Loader:
    """Walks the YAML tree against JOB_FIELDS, raising the first SpecError."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: dict[str, int] = {}  # field path -> line, for later messages
        self.errors: list[SpecError] = []  # every mistake found, in file order at the end

    def fail(self, message: str, node: Any, key: Any, field_path: str, *, value: bool = True
             ) -> SpecError:
        line, col = _position(node, key, value=value) if node is not None else (1, 1)
        return SpecError(message, Location(self.path, line, col, field_path))

    def load_object(self, node: Any, fields: tuple[Field, ...], prefix: str,
                    parent: Any, parent_key: Any) -> dict[str, Any]:
        if not isinstance(node, dict):
            raise self.fail(f"expected {_KIND_NAMES['object']}, got {_describe(node)}",
                            parent, parent_key, prefix.rstrip(".") or "(top level)")
        by_name = {f.name: f for f in fields}
        out: dict[str, Any] = {}
        for key in node:
            path = f"{prefix}{key}"
            if not isinstance(key, str) or key not in by_name:
                hint = difflib.get_close_matches(str(key), list(by_name), n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else (
                    f"; known keys: {', '.join(by_name)}")
                self.errors.append(self.fail(f"unknown key {key!r}{extra}", node, key, path,
                                             value=False))
        for f in fields:
            path = f"{prefix}{f.name}"
            try:
                out[f.name] = self.load_field(node, f, path, parent, parent_key)
            except SpecError as exc:  # keep going: report every mistake at once
                self.errors.append(exc)
                out[f.name] = _copy(f.default)
        return out

    def load_field(self, node: Any, f: Field, path: str, parent: Any, parent_key: Any) -> Any:
        if f.name in node:
            self.lines[path] = _position(node, f.name, value=False)[0]
        if f.name not in node or node[f.name] is None:
            if f.required:
                if f.name in node:
                    raise self.fail(f"{f.name!r} needs a value", node, f.name, path)
                raise self.fail(f"missing required key {f.name!r}", parent, parent_key,
                                path, value=False)
            if f.kind == "object" and f.default is not None:
                return self.load_object({}, f.children, path + ".", node, f.name)
            return _copy(f.default)
        return self.load_value(node[f.name], f, path, node, f.name)

    def load_value(self, value: Any, f: Field, path: str, node: Any, key: Any) -> Any:
        kind = f.kind
        if kind == "object":
            return self.load_object(value, f.children, path + ".", node, key)
        if kind == "jsonlist":
            return self.json_list(value, f, path, node, key)
        if kind == "fallback":
            return self.fallback(value, f, path, node, key)
        if kind == "duration":
            try:
                parse_duration(value)
            except ValueError as exc:
                raise self.fail(str(exc), node, key, path) from None
            return value
        if kind == "str":
            result = self.text(value, path, node, key, f.kind)
        elif kind == "zones" and isinstance(value, list):
            if not value:
                raise self.fail("needs at least one zone", node, key, path)
            result = [self.text(item, f"{path}[{i}]", value, i, "str")
                      for i, item in enumerate(value)]
        elif kind == "zones":
            result = self.text(value, path, node, key, "str")
        elif kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.fail(f"expected {_KIND_NAMES[kind]}, got {_describe(value)}",
                                node, key, path)
            if f.minimum is not None and value < f.minimum:
                raise self.fail(f"must be at least {f.minimum}", node, key, path)
            if f.maximum is not None and value > f.maximum:
                raise self.fail(f"must be at most {f.maximum}", node, key, path)
            result = int(value)
        elif kind == "bool":
            if not isinstance(value, bool):
                raise self.fail(f"expected {_KIND_NAMES[kind]}, got {_describe(value)}",
                                node, key, path)
            result = bool(value)
        elif kind == "strlist":
            if not isinstance(value, list):
                hint = " (write a YAML list: [\"a\", \"b\"]; a string is never split)" if (
                    isinstance(value, str)) else ""
                raise self.fail(f"expected {_KIND_NAMES[kind]}, got {_describe(value)}{hint}",
                                node, key, path)
            result = [self.text(item, f"{path}[{i}]", value, i, "str", scalar_ok=True)
                      for i, item in enumerate(value)]
        elif kind == "strmap":
            if not isinstance(value, dict):
                raise self.fail(f"expected {_KIND_NAMES[kind]}, got {_describe(value)}",
                                node, key, path)
            result = {}
            for k, item in value.items():
                if not isinstance(k, str):
                    raise self.fail(f"key {k!r} must be a string", value, k, f"{path}.{k}",
                                    value=False)
                result[k] = self.text(item, f"{path}.{k}", value, k, "str", scalar_ok=True)
        else:  # pragma: no cover - the table only uses the kinds above
            raise AssertionError(kind)
        if f.check is not None:
            message = f.check(result)
            if message:
                raise self.fail(message, node, key, path)
        return result

    def fallback(self, value: Any, f: Field, path: str, node: Any, key: Any) -> list[Any]:
        """Machine choices: each a map of the keys it changes (null: removed)."""
        if not isinstance(value, list) or not value:
            raise self.fail(f"expected {_KIND_NAMES[f.kind]}, e.g. [{{provisioning: "
                            "flex-start}, {provisioning: standard}]", node, key, path)
        out = []
        for i, item in enumerate(value):
            loaded = self.load_object(item, f.children, f"{path}[{i}].", value, i)
            out.append({k: loaded[k] for k in item if k in loaded})
        return out

    def json_list(self, value: Any, f: Field, path: str, node: Any, key: Any) -> list[Any]:
        """A list of any JSON values, as plain Python data."""
        if not isinstance(value, list):
            raise self.fail(f"expected {_KIND_NAMES[f.kind]}, got {_describe(value)}",
                            node, key, path)
        if not value:
            raise self.fail("needs at least one item", node, key, path)
        if len(value) > MAX_TASKS:
            raise self.fail(f"{len(value)} items; at most {MAX_TASKS} tasks", node, key, path)
        return [self.json_value(item, f"{path}[{i}]", value, i) for i, item in enumerate(value)]

    def json_value(self, value: Any, path: str, node: Any, key: Any) -> Any:
        if value is None or isinstance(value, bool):
            return None if value is None else bool(value)
        if isinstance(value, int):
            if type(value) is not int:  # 010, 0x1F, 1_000: quote to keep the text
                raise self.fail(f"this number would be read as {int(value)}; quote it to "
                                "pass the text as written", node, key, path)
            return int(value)
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise self.fail("not a JSON number (quote it to pass text)", node, key, path)
            return float(value)
        if isinstance(value, str):
            return self.text(value, path, node, key, "str")
        if isinstance(value, list):
            return [self.json_value(x, f"{path}[{i}]", value, i) for i, x in enumerate(value)]
        if isinstance(value, dict):
            out = {}
            for k, x in value.items():
                if not isinstance(k, str):
                    raise self.fail(f"map key {k!r} must be a string", value, k,
                                    f"{path}.{k}", value=False)
                out[str(k)] = self.json_value(x, f"{path}.{k}", value, k)
            return out
        raise self.fail(f"{_describe(value)} is not JSON data; quote it", node, key, path)

    def text(self, value: Any, path: str, node: Any, key: Any, kind: str,
             *, scalar_ok: bool = False) -> str:
        """A string value; in lists and maps plain decimal integers are accepted as
        their text (`--epochs, 90`); 010, 0x1F or 1_000 would silently change, so
        they must be quoted."""
        if scalar_ok and isinstance(value, int) and not isinstance(value, bool):
            if type(value) is not int:  # ruamel keeps 010, 0x1F, 0o17, 1_000 as ScalarInt
                raise self.fail(f"this number would be read as {int(value)}; quote it to "
                                "pass the text as written", node, key, path)
            value = str(value)
        if not isinstance(value, str):
            hint = ' (quote it: "...")' if scalar_ok and isinstance(value, bool | float) else ""
            raise self.fail(f"expected {_KIND_NAMES[kind]}, got {_describe(value)}{hint}",
                            node, key, path)
        value = str(value)
        if "\x00" in value:
            raise self.fail("text may not contain the NUL character", node, key, path)
        if any("\ud800" <= ch <= "\udfff" for ch in value):
            # JSON-style "\ud83d\ude00" escapes reach us as two surrogates: join them.
            try:
                value = value.encode("utf-16", "surrogatepass").decode("utf-16")
            except UnicodeDecodeError:
                raise self.fail("text is not valid Unicode (a lone surrogate)", node, key,
                                path) from None
        return value


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    return type(value).__name__


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


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


def load_spec_text(text: str, path: str = "<job>", *, tree: Any = None) -> JobSpec:
    """Parse and check a job spec; raises SpecError naming file, line and field.

    `tree` is the text already loaded by wfgen.yamlload (so validate parses once)."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    from wfgen import yamlload

    if not text.strip():
        raise SpecError("the file is empty; a job spec needs at least container.image",
                        Location(path, 1, 1))
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SPEC_BYTES:
        raise SpecError(f"the file is {size // 1024} KB; a job spec may be "
                        f"at most {MAX_SPEC_BYTES // 1024} KB (its workflow must fit in 128 KB)",
                        Location(path, 1, 1))
    try:
        if tree is None:
            tree = yamlload.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or exc.context or "not valid YAML"
        raise SpecError(f"not valid YAML: {problem}", Location(path, line, col)) from None
    except (YAMLError, ValueError, TypeError) as exc:
        raise SpecError(f"not valid YAML: {exc}", Location(path, 1, 1)) from None
    except Exception as exc:  # the YAML library itself trips on some inputs (e.g. "-_")
        raise SpecError(f"not valid YAML (the parser failed: {type(exc).__name__})",
                        Location(path, 1, 1)) from None
    if tree is None:
        raise SpecError("the file holds no YAML document; a job spec needs container.image",
                        Location(path, 1, 1))
    loader = _Loader(path)
    if not isinstance(tree, dict):
        raise SpecError(f"a job spec is a YAML map, got {_describe(tree)}", Location(path, 1, 1))
    data = loader.load_object(tree, JOB_FIELDS, "", None, None)
    if loader.errors:
        errors = sorted(loader.errors, key=lambda e: (e.location.line, e.location.column)
                        if e.location else (0, 0))
        first = errors[0]
        first.others = errors[1:]
        raise first
    return _finish(data, tree, loader)


def _node_for(tree: Any, field_path: str) -> tuple[Any, Any]:
    """(node, key) of the deepest part of field_path the file has (for positions)."""
    node, found = tree, (None, None)
    for part in field_path.split("."):
        if not isinstance(node, dict) or part not in node:
            break
        found, node = (node, part), node[part]
    return found


def _check_placement(data: dict[str, Any], tree: Any, loader: _Loader) -> None:
    """Region, zone and machine/GPU combinations Compute Engine would refuse."""
    from wfgen.job import machines

    problem = machines.region_problem(data["location"])
    if problem:
        raise loader.fail(problem, tree, "location", "location")
    if data["zone"] is None:
        data["zone"] = machines.default_zone(data["location"])
    elif isinstance(data["zone"], str) and data["zone"] != "any" and not data["regions"]:
        problem = machines.zone_problem(data["zone"], data["location"])
        if problem:
            raise loader.fail(problem, tree, "zone", "zone")
    found = machines.machine_problem(data["machine"])
    if found:
        where, message = found
        node, key = _node_for(tree, where)
        raise loader.fail(message, node, key, where, value=False)


def _plan_capacity(spec: JobSpec, tree: Any, loader: _Loader) -> None:
    """The zones and machine choices to try (wfgen.job.capacity); `zone` becomes
    the first zone tried, the plan the rest."""
    from wfgen.job import capacity

    data = spec.data
    given = tree.get("zone") if isinstance(tree, dict) else None
    try:
        spec.plan = capacity.plan_for(
            zone=given if given is not None else None, location=data["location"],
            regions=data["regions"], machine=data["machine"], fallback=data["fallback"],
            timeout_s=spec.timeout_s)
    except capacity.CapacityProblem as exc:
        node, key = _fallback_node(tree, exc.field)
        raise loader.fail(exc.message, node, key, exc.field, value=False) from None
    data["zone"] = spec.plan.entries[0][0]


def _fallback_node(tree: Any, field_path: str) -> tuple[Any, Any]:
    """(node, key) of a field path that may index the fallback list: fallback[1].type."""
    match = re.fullmatch(r"fallback\[(\d+)\](?:\.(\w+))?", field_path)
    if match and isinstance(tree.get("fallback"), list):
        items = tree["fallback"]
        index = int(match.group(1))
        item = items[index] if index < len(items) else None
        if match.group(2) and isinstance(item, dict) and match.group(2) in item:
            return item, match.group(2)
        return items, index
    return _node_for(tree, field_path)


def _finish(data: dict[str, Any], tree: Any, loader: _Loader) -> JobSpec:
    """Cross-field rules and derived defaults."""
    container = data["container"]
    ctree = tree["container"]
    if container["script"] is not None and container["command"] is not None:
        raise loader.fail("script runs with `sh -c`; it cannot be combined with command",
                          ctree, "script", "container.script", value=False)
    if data["name"] is None:
        data["name"] = default_name(loader.path)
    _check_placement(data, tree, loader)
    timeout_s = parse_duration(data["timeout"])
    if data["heartbeat"] is None:
        data["heartbeat"] = format_duration(default_heartbeat(timeout_s))
    seconds = {"timeout": timeout_s, "heartbeat": parse_duration(data["heartbeat"])}
    if seconds["timeout"] > MAX_TIMEOUT_S:
        raise loader.fail("may be at most 100d (Compute Engine stops a VM after 120 days "
                          "at the latest)", tree, "timeout", "timeout")
    if seconds["heartbeat"] >= seconds["timeout"]:
        raise loader.fail(heartbeat_conflict(seconds["heartbeat"], seconds["timeout"],
                                             timeout_given="timeout" in tree),
                          tree, "heartbeat", "heartbeat")
    if seconds["heartbeat"] < 1:
        raise loader.fail("heartbeat must be at least 1s", tree, "heartbeat", "heartbeat")
    spec = JobSpec(data=data, path=loader.path, seconds=seconds, lines=loader.lines)
    _plan_capacity(spec, tree, loader)
    if data["tasks"] is not None:
        _finish_tasks(spec, tree, loader)
    problem = budget_problem(spec)
    if problem:
        if data["tasks"] is not None:
            node, key = _task_size_node(tree)
            raise loader.fail(problem, node, key, f"tasks.{key}")
        where = "heartbeat" if "heartbeat" in tree else "timeout"
        raise loader.fail(problem, tree, where, where)
    return spec


def _task_size_node(tree: Any) -> tuple[Any, str]:
    ttree = tree["tasks"]
    return ttree, "items" if "items" in ttree and ttree["items"] is not None else "count"


def _finish_tasks(spec: JobSpec, tree: Any, loader: _Loader) -> None:
    """Fan-out: exactly one of items and count; the default parallelism; whether
    every task's result fits in the execution's variables."""
    from wfgen.job.tasks import default_parallelism, memory_problem

    tasks = spec.data["tasks"]
    if (tasks["items"] is None) == (tasks["count"] is None):
        raise loader.fail("give either items (a list of work items) or count (a number of "
                          "tasks), not both" if tasks["items"] is not None else
                          "give items (a list of work items) or count (a number of tasks)",
                          tree, "tasks", "tasks", value=False)
    count = len(tasks["items"]) if tasks["items"] is not None else tasks["count"]
    if tasks["parallelism"] is None:
        tasks["parallelism"] = default_parallelism(count)
    problem = memory_problem(spec)
    if problem:
        node, key = _task_size_node(tree)
        raise loader.fail(problem, node, key, f"tasks.{key}")


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


# Cloud Workflows ends an execution after 100,000 steps, and then nothing deletes
# the VM but its maxRunDuration backstop: keep well clear of it.
STEPS_PER_HEARTBEAT = 3
STEPS_PER_ATTEMPT = 30
MAX_RUN_DURATION_S = 120 * 86400  # Compute Engine's limit for maxRunDuration


def budget_problem(spec: JobSpec) -> str | None:
    """Why the timeout/heartbeat pair (with the tasks, if any) cannot work, or None."""
    timeout, heartbeat = spec.timeout_s, spec.heartbeat_s
    if spec.data.get("tasks") is not None:
        from wfgen.job.tasks import steps_problem

        problem = steps_problem(spec)
        if problem:
            return problem
    beats = timeout // heartbeat
    steps = beats * STEPS_PER_HEARTBEAT + (spec.data["retries"] + 1) * STEPS_PER_ATTEMPT
    if steps > 0.9 * MAX_STEPS:
        shortest = format_duration(-(-timeout * STEPS_PER_HEARTBEAT // int(0.8 * MAX_STEPS)))
        return (f"a {format_duration(timeout)} timeout with a {format_duration(heartbeat)} "
                f"heartbeat needs about {steps} workflow steps, over the 100,000 an execution "
                f"may run; use a heartbeat of at least {shortest}")
    if timeout + heartbeat + 300 > MAX_RUN_DURATION_S:
        return ("timeout plus heartbeat may be at most 120 days less 5 minutes (Compute "
                "Engine's longest maxRunDuration, the VM's backstop)")
    return None


def read_source(path: str | Path) -> str:
    """A YAML file's text; unreadable files become a SpecError naming the file."""
    name = str(path)
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such file", Location(name)) from None
    except IsADirectoryError:
        raise SpecError("is a directory, not a YAML file", Location(name)) from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"not UTF-8 text (byte {exc.start})", Location(name)) from None
    except OSError as exc:
        raise SpecError(f"cannot read: {exc.strerror}", Location(name)) from None


def load_spec(path: str | Path, *, heartbeat: str | None = None,
              timeout: str | None = None) -> JobSpec:
    """Read and check a job spec file; `heartbeat` and `timeout` override the
    file's (command-line flags), and the pair is checked again with them: the
    heartbeat is shorter than the timeout, and the steps fit the budget."""
    spec = load_spec_text(read_source(path), str(path))
    if heartbeat is None and timeout is None:
        return spec
    for key, value in (("heartbeat", heartbeat), ("timeout", timeout)):
        if value is not None:
            try:
                spec.seconds[key] = parse_duration(value)
            except ValueError as exc:
                raise UsageError(f"--{key}: {exc}") from None
            spec.data[key] = value
    if timeout is not None and heartbeat is None and "heartbeat" not in spec.lines:
        spec.seconds["heartbeat"] = default_heartbeat(spec.timeout_s)  # follows --timeout
        spec.data["heartbeat"] = format_duration(spec.heartbeat_s)
    if spec.heartbeat_s >= spec.timeout_s:
        in_file = f", from {spec.path}"
        if heartbeat is None and "heartbeat" not in spec.lines:  # the default, too long
            raise UsageError(f"--timeout {timeout}: too short for a heartbeat (a timeout "
                             "of at least 2s leaves room for one)")
        raise UsageError(heartbeat_conflict(
            spec.heartbeat_s, spec.timeout_s, timeout_given="timeout" in spec.lines,
            heartbeat_from=", from --heartbeat" if heartbeat else in_file,
            timeout_from=", from --timeout" if timeout else (
                in_file if "timeout" in spec.lines else "")))
    problem = budget_problem(spec)
    if problem:
        raise UsageError(problem)
    return spec


# ---------------------------------------------------------------------------
# JSON Schema (for yaml-language-server and other editors)

def _field_schema(f: Field) -> dict[str, Any]:
    schema: dict[str, Any] = {"description": f.doc}
    if f.kind == "object":
        schema.update(_object_schema(f.children))
    elif f.kind == "str":
        schema["type"] = "string"
        if f.pattern:
            schema["pattern"] = f.pattern
    elif f.kind == "int":
        schema["type"] = "integer"
        if f.minimum is not None:
            schema["minimum"] = f.minimum
        if f.maximum is not None:
            schema["maximum"] = f.maximum
    elif f.kind == "bool":
        schema["type"] = "boolean"
    elif f.kind == "duration":
        schema["anyOf"] = [{"type": "string", "pattern": _DURATION_PATTERN},
                           {"type": "integer", "minimum": 1}]
    elif f.kind == "strlist":
        schema["type"] = "array"
        schema["items"] = {"type": ["string", "integer"]}
    elif f.kind == "strmap":
        schema["type"] = "object"
        schema["additionalProperties"] = {"type": ["string", "integer"]}
    elif f.kind == "jsonlist":
        schema.update(type="array", minItems=1, maxItems=MAX_TASKS)
    elif f.kind == "zones":
        schema["anyOf"] = [{"type": "string", "pattern": f.pattern},
                           {"type": "array", "minItems": 1,
                            "items": {"type": "string", "pattern": f"^{_ZONE_RE}$"}}]
    elif f.kind == "fallback":
        item = _object_schema(f.children)
        item["properties"] = {k: {"anyOf": [v, {"type": "null"}]}
                              for k, v in item["properties"].items()}
        schema.update(type="array", minItems=1, items=item)
    if f.default not in (None, {}) and f.kind != "object":
        schema["default"] = f.default
    if f.example is not None:
        schema["examples"] = [f.example]
    return schema


def _object_schema(fields: tuple[Field, ...]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {f.name: _field_schema(f) for f in fields},
    }
    required = [f.name for f in fields if f.required]
    if required:
        schema["required"] = required
    return schema


def json_schema() -> dict[str, Any]:
    """The job spec's JSON Schema (draft 2020-12)."""
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/wfgen/wfgen/job.schema.json",
        "title": "wfgen job spec",
        "description": "One container job run on a throw-away Compute Engine VM by a "
                       "Cloud Workflows workflow that wfgen generates.",
        **_object_schema(JOB_FIELDS),
    }
    from wfgen.job import arguments

    container = schema["properties"]["container"]
    container["allOf"] = [{"not": {"required": [a, b]}} for a, b, _ in arguments.EXCLUSIVE]
    tasks = schema["properties"]["tasks"]
    tasks["oneOf"] = [{"required": ["items"]}, {"required": ["count"]}]
    tasks["properties"]["parallelism"]["maximum"] = MAX_CONCURRENT_BRANCHES
    # The execution argument a deployed workflow accepts (gcloud workflows run --data)
    schema["$defs"] = {"execution_argument": arguments.json_schema()}
    return schema
