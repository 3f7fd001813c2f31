"""Job spec -> Cloud Workflows YAML, through the jinja2 template in templates/.

The template holds the workflow's logic; this module only prepares values.
Every value reaches the template through the `q` filter (wfgen.job.quoting), and
the user's container settings travel base64-encoded, so nothing a user writes
can become YAML structure or a Workflows expression. The rendered text is
parsed back before anyone sees it: a render that does not parse is a bug in
wfgen and is reported as one."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

from wfgen import __version__
from wfgen.errors import SpecError, WfgenError
from wfgen.job.model import JobSpec, container_payload
from wfgen.job.quoting import comment, expression_literal, quote, yaml_string
from wfgen.job.resources import startup_script, templates_dir
from wfgen.job.rules import argument_keys, format_duration
from wfgen.limits import MAX_EXPRESSION_CHARS, MAX_SOURCE_BYTES

TEMPLATE = "workflow.yaml.j2"
RETRY_STATUSES = ["preempted", "lost", "stopped", "unavailable"]
FAILURE_STATUSES = ["failed", "error"]
LOGS_QUERY = ("https://console.cloud.google.com/logs/query;query=resource.type%3D%22gce_instance%22"
              "%0Alabels.%22compute.googleapis.com%2Fresource_name%22%3D%22")
# VM names are PREFIX-TAG12-ATTEMPT (a fan-out task's PREFIX-TAG12-TASK-ATTEMPT, the
# task in at most 4 digits) and must fit Compute Engine's 63 characters.
VM_PREFIX_MAX = 63 - 1 - 12 - 1 - 3
VM_PREFIX_MAX_TASKS = VM_PREFIX_MAX - 1 - 4


class RenderBug(WfgenError):
    """The template produced text that does not parse: a bug in wfgen itself."""


def vm_prefix(name: str, *, tasks: bool = False) -> str:
    """A Compute Engine-safe prefix of VM names from the job name."""
    prefix = re.sub(r"[^a-z0-9-]+", "-", name.lower())
    prefix = re.sub(r"-{2,}", "-", prefix).strip("-")
    if not prefix or not prefix[0].isalpha():
        prefix = "wf-" + prefix
    return prefix[:VM_PREFIX_MAX_TASKS if tasks else VM_PREFIX_MAX].rstrip("-")


def label_value(text: str) -> str:
    """A Compute Engine label value (lowercase letters, digits, - and _)."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower())[:63]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def template_context(spec: JobSpec) -> dict[str, Any]:
    from wfgen.job import machines
    from wfgen.job.arguments import workflow_checks

    data = spec.data
    if data["workdir"] and spec.workdir_uri is None:  # named by its content in staging
        from wfgen.job.workdir import prepare

        prepare(spec)
    secrets = data["container"].get("secret_env") is not None
    zone = data["zone"]
    machine = data["machine"]
    fanout = data["tasks"] is not None
    short = fanout or data["nodes"] > 1  # VM names with room for a task or a node rank
    payload = json.dumps(container_payload(spec), ensure_ascii=False, sort_keys=True,
                         separators=(",", ":"))
    project_expr = (expression_literal(data["project"]) if data["project"] else
                    'sys.get_env("GOOGLE_CLOUD_PROJECT_ID")')
    retry = RETRY_STATUSES + (FAILURE_STATUSES if data["retry_on_failure"] else [])
    image = machine["image"] or (f"projects/{machine['image_project']}/global/images/family/"
                                 f"{machine['image_family']}")
    return {
        "version": __version__,
        "source": Path(spec.path).name,
        "name": data["name"],
        "zone": zone,
        "region": zone.rsplit("-", 1)[0],
        "container": data["container"],
        "container_b64": _b64(payload),
        "startup_b64": _b64(startup_script("startup.sh")),
        "shutdown_b64": _b64(startup_script("shutdown.sh")),
        "machine": machine,
        "source_image": image,
        "maintenance": machines.on_host_maintenance(machine),
        "gpu_count": machines.gpu_count(machine),
        "attach_gpus": bool(machine["accelerator"]) and not machines.built_in_gpus(
            machine["type"]),
        "network": data["network"],
        "service_account": data["service_account"],
        "labels": data["labels"],
        "label_job": label_value(data["name"]),
        "project_yaml": quote(data["project"]) if data["project"] else "${" + project_expr + "}",
        "vm_base_expr": (f"{expression_literal(vm_prefix(data['name'], tasks=short) + '-')} + "
                         "text.substring("
                         "text.replace_all(sys.get_env(\"GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID\"), "
                         "\"-\", \"\"), 0, 12)"),
        "argument_checks": workflow_checks(
            "default(input, {})", ("items",) if fanout else (),
            argument_keys(secrets, bool(data["inputs"]), bool(data["outputs"]),
                          bool(data["workdir"]))),
        "workdir": bool(data["workdir"]),
        "secrets": secrets,
        "inputs": bool(data["inputs"]),
        # the VM agent's data step (startup/data.sh), carried only by a job with data
        "data_b64": _b64(startup_script("data.sh"))
        if data["inputs"] or data["outputs"] or data["workdir"] else "",
        "outputs": bool(data["outputs"]),
        "command_expr": ('json.encode_to_string(default(map.get({"true": ["sh", "-c", '
                         f'container.script, {expression_literal(data["name"])}]}}, '
                         'string(container.script != null)), container.command))'),
        **_capacity(spec),
        "retry_condition": (f"event.http_request.body.status in {json.dumps(retry)} and "
                            f"attempt <= {data['retries']} and sys.now() < deadline"),
        "delete_failed_message": ('"could not delete the VM " + instance + " in " + '
                                  f'{"zone" if spec.plan.failover else expression_literal(zone)}'
                                  ' + "; delete it with gcloud compute instances delete"'),
        "logs_expr": (f"{expression_literal(LOGS_QUERY)} + instance + \"%22?project=\" + "
                      f"{project_expr}"),
        "timeout": format_duration(spec.timeout_s),
        "timeout_s": spec.timeout_s,
        "heartbeat": format_duration(spec.heartbeat_s),
        "heartbeat_s": spec.heartbeat_s,
        # how long a lost VM's report (a preemption notice in flight) is awaited
        "grace_s": min(30, max(1, spec.heartbeat_s // 10)),
        # how long the stop report of a VM deleted at the timeout is awaited (the
        # container's grace, then the report)
        "stop_grace_s": max(min(30, max(5, spec.heartbeat_s)), spec.seconds["stop_grace"] + 10),
        **preemption_values(spec, fanout),
        "backstop_margin_s": spec.heartbeat_s + 300,
        "retries": data["retries"],
        **fanout_values(spec),
        **gang_context(spec, project_expr),
        **disk_values(spec),
    }


def disk_values(spec: JobSpec) -> dict[str, Any]:
    """The boot disk's type and the Local SSD disks of the insert body: a partial URL
    in the VM's zone (a literal, or the failover's zone of this try)."""
    machine = spec.data["machine"]

    def in_zone(kind: str) -> str:
        if spec.plan.failover:
            return "${" + f'"zones/" + failover.at.zone + "/diskTypes/{kind}"' + "}"
        return quote(f"zones/{spec.data['zone']}/diskTypes/{kind}")

    disk_type = machine["disk_type"] or _default_disk_type(spec)
    return {"boot_disk_type_yaml": in_zone(disk_type) if disk_type else "",
            "local_ssd": machine["local_ssd"], "local_ssd_type_yaml": in_zone("local-ssd")}


def _default_disk_type(spec: JobSpec) -> str | None:
    """The boot disk type every machine choice of the job agrees on (wfgen.job.disks),
    or None: then the insert names none and Compute Engine picks per series."""
    from wfgen.job.disks import default_disk_type

    types = {spec.data["machine"]["type"]} | {
        choice["type"] for choice in spec.data["fallback"] or () if choice.get("type")}
    defaults = {default_disk_type(machine_type) for machine_type in types}
    return defaults.pop() if len(defaults) == 1 else None


def gang_context(spec: JobSpec, project_expr: str) -> dict[str, Any]:
    """What a multi-node job's template needs (wfgen.job.gang); nodes is 0 otherwise."""
    from wfgen.job.gang import gang_values

    values = gang_values(spec, project_expr)
    if values["nodes"]:
        values["gang_logs_expr"] = (f"{expression_literal(LOGS_QUERY)} + vm_base + \"-\" + "
                                    "string(attempt) + \"-\" + string(default(rank, 0)) + "
                                    f"\"%22?project=\" + {project_expr}")
        values["startup_script_yaml"] = yaml_string(
            startup_script("startup.sh")).replace("$", "\\x24")
        values["shutdown_script_yaml"] = yaml_string(
            startup_script("shutdown.sh")).replace("$", "\\x24")
    return values


def preemption_values(spec: JobSpec, fanout: bool) -> dict[str, Any]:
    """Long jobs and preemption: the container's stop grace (VM metadata), how long
    a STOPPING VM's report is awaited, the checkpoint directory (an expression:
    the spec's directory, the job, the execution, the task) and notify."""
    grace = spec.seconds["stop_grace"]
    directory = spec.data["checkpoint_dir"]
    checkpoint = None
    if directory is not None:
        checkpoint = (f"{expression_literal(directory + '/' + spec.name + '/')} + "
                      "sys.get_env(\"GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID\")"
                      + (' + "/" + string(task)' if fanout else ""))
    return {"container_grace_s": grace, "stop_wait_s": grace + 10,
            "checkpoint_expr": checkpoint, "notify": spec.data["notify"]}


def _capacity(spec: JobSpec) -> dict[str, Any]:
    """The capacity layer's values (zones, provisioning, fallback): render_capacity."""
    from wfgen.job import render_capacity

    found = render_capacity.values(spec, margin_s=spec.heartbeat_s + 300)
    found["job_result_call"] = render_capacity.job_result_call(found["failover"])
    return found


def fanout_values(spec: JobSpec) -> dict[str, Any]:
    """What the template needs for a `tasks:` job (wfgen.job.tasks); tasks is None
    for a single job."""
    from wfgen.job import budget, tasks

    if spec.data["tasks"] is None:
        return {"tasks": None}
    rules = tasks.item_rules(spec)
    items = json.dumps(budget.items_of(spec), ensure_ascii=False, separators=(",", ":"))
    return {
        "tasks": spec.data["tasks"],
        "report": report_values(spec),
        "parallelism": spec.data["tasks"]["parallelism"],
        "items_b64": _b64(items),
        # a split job's shard workflow sets these (wfgen.job.render_split)
        "shard": False,
        "task_index": "index",
        "task_count": "len(items)",
        "item_checks": tasks.workflow_item_checks("default(input, {})", rules),
        # literal in each VM insert (not parameters, which every running task would
        # hold as variables); `$` written \x24 so that the YAML shows no `${`
        "startup_script_yaml": yaml_string(startup_script("startup.sh")).replace("$", "\\x24"),
        "shutdown_script_yaml": yaml_string(startup_script("shutdown.sh")).replace("$", "\\x24"),
    }


def report_values(spec: JobSpec) -> dict[str, str] | None:
    """tasks.report's bucket and object (templates/report.yaml.j2), or None."""
    uri = (spec.data["tasks"] or {}).get("report")
    if not uri:
        return None
    bucket, _, name = uri[len("gs://"):].partition("/")
    return {"bucket": bucket, "object": name, "uri": uri}


def expression(text: str) -> str:
    """A YAML scalar holding the Workflows expression `text` (the template filter `x`)."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise RenderBug(f"internal error: an expression of {len(text)} characters, over the "
                        f"{MAX_EXPRESSION_CHARS} Cloud Workflows allows; please report this as a "
                        "wfgen bug")
    body = "${" + text + "}"
    if all(" " <= ch <= "~" for ch in body):  # printable ASCII: the readable YAML form
        return "'" + body.replace("'", "''") + "'"
    return yaml_string(body)


def message(text: str) -> str:
    """A raise message: a plain string when the expression is one string literal."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    return quote(value) if isinstance(value, str) else expression(text)


def _comment(value: Any) -> str:
    """A value for a header comment: one line, and cut short (it is only a reminder)."""
    text = comment(str(value))
    if len(text) > COMMENT_CHARS:
        text = f"{text[:COMMENT_CHARS]}... ({len(text) - COMMENT_CHARS} more characters)"
    return text


def _bytecode_cache(jinja2: Any) -> Any:
    """Compiled templates kept between runs (compiling them is most of a cold
    `generate`) in the user's cache directory; none where it cannot be made."""
    import os

    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    directory = os.path.join(base, "wfgen", "templates")
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        return jinja2.FileSystemBytecodeCache(directory)
    except OSError:
        return None


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        bytecode_cache=_bytecode_cache(jinja2),
    )
    env.filters["q"] = quote
    env.filters["comment"] = _comment
    env.filters["x"] = expression
    env.filters["message"] = message
    return env


COMMENT_CHARS = 100  # user values shown in the header comment are cut here


def render_workflow(spec: JobSpec) -> str:
    """The workflow YAML for a job spec; parsed back before it is returned."""
    text = _environment().get_template(TEMPLATE).render(**template_context(spec))
    parse_rendered(text)
    size = len(text.encode("utf-8"))
    if size > MAX_SOURCE_BYTES:
        container = spec.data["container"]
        biggest = max(("script", "args", "env", "command"),
                      key=lambda k: len(json.dumps(container[k])))
        where = f"container.{biggest}"
        if spec.data["tasks"] is not None and spec.data["tasks"]["items"] is not None and (
                len(json.dumps(spec.data["tasks"]["items"])) > len(json.dumps(container))):
            where = "tasks.items"
        raise SpecError(f"the generated workflow would be {size // 1024} KB, over the 128 KB "
                        "Cloud Workflows accepts; make this smaller (ship long scripts in the "
                        "image instead; split many items over several executions)",
                        spec.location(where))
    return text


def parse_rendered(text: str) -> Any:
    """Parse rendered YAML; failure means the template or the filter is wrong."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        tree = YAML(typ="safe").load(text)  # the C parser when ruamel.yaml.clib is there
    except YAMLError as exc:
        raise RenderBug(f"internal error: the generated workflow is not valid YAML ({exc}); "
                        "please report this as a wfgen bug") from None
    if not isinstance(tree, dict) or "main" not in tree:
        raise RenderBug("internal error: the generated workflow has no main block; "
                        "please report this as a wfgen bug")
    return tree
