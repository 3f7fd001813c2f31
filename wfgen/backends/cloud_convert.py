"""The cloud backend's conversions: the client libraries' messages (proto-plus)
and REST items into wfgen's records (Execution, Schedule, Trigger, Vm), and
the times and values they carry. google.cloud is imported inside functions."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from typing import Any

from wfgen.backends.base import (
    Execution,
    ExecutionError,
    Vm,
)
from wfgen.backends.cloud_types import Schedule, Trigger

# -- conversions -------------------------------------------------------------


def _message(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc)
    return " ".join(str(text).split())[:500]


def _account(value: str) -> str:
    """A service account's e-mail, whichever form the service echoes."""
    return value.rsplit("/", 1)[-1]


def _json(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _timestamp(pb: Any, name: str) -> str:
    raw = type(pb).pb(pb)
    return getattr(raw, name).ToJsonString() if raw.HasField(name) else ""


def _execution(pb: Any) -> Execution:
    """Our Execution from the proto-plus one (result and argument decoded)."""
    from google.cloud.workflows.executions_v1 import Execution as Pb

    raw = Pb.pb(pb)
    error = None
    if raw.HasField("error"):
        elements = list(pb.error.stack_trace.elements)
        error = ExecutionError(payload=pb.error.payload, context=pb.error.context,
                               step=elements[0].step if elements else None,
                               subworkflow=elements[0].routine if elements else None)
    current = list(pb.status.current_steps) if raw.HasField("status") else []
    step = f"{current[-1].step} ({current[-1].routine})" if current else ""
    return Execution(name=pb.name, state=Pb.State(pb.state).name, argument=_json(pb.argument),
                     result=_json(pb.result), error=error, start_time=_timestamp(pb, "start_time"),
                     end_time=_timestamp(pb, "end_time"), revision_id=pb.workflow_revision_id,
                     current_step=step)


def _schedule(pb: Any) -> Schedule:
    from google.cloud.scheduler_v1 import Job

    raw = Job.pb(pb)
    target = pb.http_target
    argument = None
    with contextlib.suppress(ValueError, TypeError, AttributeError):
        argument = json.loads(json.loads(target.body or b"{}").get("argument") or "null")
    error = ""
    if raw.HasField("status") and pb.status.code:
        error = pb.status.message or f"code {pb.status.code}"
    return Schedule(name=pb.name, schedule=pb.schedule, time_zone=pb.time_zone or "Etc/UTC",
                    uri=target.uri, argument=argument,
                    service_account=target.oauth_token.service_account_email,
                    state=Job.State(pb.state).name, next_run=_timestamp(pb, "schedule_time"),
                    last_attempt=_timestamp(pb, "last_attempt_time"), last_error=error)


def _trigger(pb: Any) -> Trigger:
    return Trigger(name=pb.name, topic=pb.transport.pubsub.topic,
                   workflow=pb.destination.workflow, service_account=pb.service_account,
                   subscription=pb.transport.pubsub.subscription)


def _vm(item: dict[str, Any]) -> Vm:
    seconds = ((item.get("scheduling") or {}).get("maxRunDuration") or {}).get("seconds")
    return Vm(name=item["name"], zone=str(item.get("zone", "")).rsplit("/", 1)[-1],
              status=item.get("status", ""), labels=dict(item.get("labels") or {}),
              created=item.get("creationTimestamp", ""),
              max_run_duration_s=int(seconds) if seconds is not None else None)


def _entry_text(entry: dict[str, Any]) -> str:
    if "textPayload" in entry:
        return str(entry["textPayload"])
    payload = entry.get("jsonPayload") or {}
    if isinstance(payload, dict) and "message" in payload:
        return str(payload["message"])
    return json.dumps(payload, ensure_ascii=False)


def error_value(ex: Execution) -> Any:
    """The value the workflow raised (decoded from error.payload)."""
    return _json(ex.error.payload) if ex.error else None


def parse_time(text: str) -> dt.datetime | None:
    """RFC 3339, as Workflows and Compute Engine write it."""
    if not text:
        return None
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def api_message_types() -> tuple[Any, Any]:
    """The Workflows and Executions APIs' message modules (proto-plus), for
    serve's gRPC front, which speaks the APIs' own messages: this module stays
    the one place that imports google.cloud."""
    from google.cloud.workflows.executions_v1.types import executions
    from google.cloud.workflows_v1.types import workflows

    return workflows, executions
