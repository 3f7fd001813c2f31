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
from wfgen.job.quoting import comment, quote
from wfgen.job.resources import startup_script, templates_dir
from wfgen.job.spec import JobSpec, format_duration
from wfgen.limits import MAX_SOURCE_BYTES

TEMPLATE = "workflow.yaml.j2"
RETRY_STATUSES = ["preempted", "lost", "stopped", "unavailable"]
FAILURE_STATUSES = ["failed", "error"]
LOGS_QUERY = ("https://console.cloud.google.com/logs/query;query=resource.type%3D%22gce_instance%22"
              "%0Alabels.%22compute.googleapis.com%2Fresource_name%22%3D%22")
# VM names are PREFIX-TAG12-ATTEMPT and must fit Compute Engine's 63 characters.
VM_PREFIX_MAX = 63 - 1 - 12 - 1 - 3


class RenderBug(WfgenError):
    """The template produced text that does not parse: a bug in wfgen itself."""


def vm_prefix(name: str) -> str:
    """A Compute Engine-safe prefix of VM names from the job name."""
    prefix = re.sub(r"[^a-z0-9-]+", "-", name.lower())
    prefix = re.sub(r"-{2,}", "-", prefix).strip("-")
    if not prefix or not prefix[0].isalpha():
        prefix = "wf-" + prefix
    return prefix[:VM_PREFIX_MAX].rstrip("-")


def label_value(text: str) -> str:
    """A Compute Engine label value (lowercase letters, digits, - and _)."""
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower())[:63]


def container_payload(spec: JobSpec) -> dict[str, Any]:
    """The container settings as the workflow decodes them (see the template)."""
    c = spec.data["container"]
    return {
        "image": c["image"],
        "command": list(c["command"] or []),
        "args": list(c["args"]),
        "script": c["script"],
        "env": dict(c["env"]),
    }


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def template_context(spec: JobSpec) -> dict[str, Any]:
    data = spec.data
    zone = data["zone"]
    payload = json.dumps(container_payload(spec), ensure_ascii=False, sort_keys=True,
                         separators=(",", ":"))
    return {
        "version": __version__,
        "source": Path(spec.path).name,
        "name": data["name"],
        "project": data["project"],
        "zone": zone,
        "region": zone.rsplit("-", 1)[0],
        "container": data["container"],
        "container_b64": _b64(payload),
        "startup_b64": _b64(startup_script("startup.sh")),
        "shutdown_b64": _b64(startup_script("shutdown.sh")),
        "machine": data["machine"],
        "network": data["network"],
        "service_account": data["service_account"],
        "labels": data["labels"],
        "label_job": label_value(data["name"]),
        "vm_prefix": vm_prefix(data["name"]),
        "timeout": format_duration(spec.timeout_s),
        "timeout_s": spec.timeout_s,
        "heartbeat": format_duration(spec.heartbeat_s),
        "heartbeat_s": spec.heartbeat_s,
        # how long a lost VM's report (a preemption notice in flight) is awaited
        "grace_s": min(30, max(1, spec.heartbeat_s // 10)),
        "backstop_margin_s": spec.heartbeat_s + 300,
        "retries": data["retries"],
        "retry_statuses": RETRY_STATUSES + (FAILURE_STATUSES if data["retry_on_failure"] else []),
        "logs_query": LOGS_QUERY,
    }


def _comment(value: Any) -> str:
    """A value for a header comment: one line, and cut short (it is only a reminder)."""
    text = comment(str(value))
    if len(text) > COMMENT_CHARS:
        text = f"{text[:COMMENT_CHARS]}... ({len(text) - COMMENT_CHARS} more characters)"
    return text


def _environment() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    env.filters["q"] = quote
    env.filters["comment"] = _comment
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
        raise SpecError(f"the generated workflow would be {size // 1024} KB, over the 128 KB "
                        "Cloud Workflows accepts; make this smaller (ship long scripts in the "
                        "image instead)", spec.location(f"container.{biggest}"))
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
