"""What each dashboard page shows, gathered from serve's store, its
executions service and its local Compute Engine (reads only): plain dicts
the templates render."""

from __future__ import annotations

import re
import time
from typing import Any

from wfgen.backends.base import LABEL_ATTEMPT, LABEL_EXECUTION, LABEL_JOB
from wfgen.local.compute import Instance, LocalCompute
from wfgen.local.loopback import ApiError
from wfgen.server import trace
from wfgen.server.eventarc_api import KIND as TRIGGER_KIND
from wfgen.server.eventarc_api import TOPIC_KIND
from wfgen.server.executions_api import ExecutionsService
from wfgen.server.scheduler_api import KIND as SCHEDULE_KIND
from wfgen.server.store import Store
from wfgen.server.ui import present
from wfgen.server.ui.queries import STATES, Queries

WORKFLOW_IN_URI = re.compile(r"/v1/(projects/[^/]+/locations/[^/]+/workflows/[^/]+)"
                             r"/executions$")
SUBSCRIPTION_KIND = "pubsub.subscription"  # kept by serve's Pub/Sub once it has them
OUTPUT_TAIL = 8 * 1024  # characters of a job's output shown on its execution page
LABEL_TASK = "wfgen-task"


class Pages:
    """One method per page; each returns the template's context."""

    def __init__(self, store: Store, executions: ExecutionsService, runner: Any,
                 compute: LocalCompute) -> None:
        self.store = store
        self.queries = Queries(store)
        self.executions = executions
        self.runner = runner
        self.compute = compute

    # -- home ------------------------------------------------------------------
    def home(self) -> dict[str, Any]:
        workflows, total = self.queries.workflows()
        running = self.queries.running()
        counts = self.queries.counts()
        schedules = []
        for job in self.queries.resources(SCHEDULE_KIND):
            uri = str((job.get("httpTarget") or {}).get("uri") or "")
            match = WORKFLOW_IN_URI.search(uri)
            target = match.group(1) if match else uri
            schedules.append({"name": job["name"], "schedule": job.get("schedule", ""),
                              "zone": job.get("timeZone", "Etc/UTC"),
                              "state": job.get("state", ""),
                              "next": job.get("scheduleTime", "") if job.get(
                                  "state") == "ENABLED" else "",
                              "last": job.get("lastAttemptTime", ""), "target": target,
                              "is_workflow": match is not None})
        triggers = [{"name": t["name"],
                     "topic": ((t.get("transport") or {}).get("pubsub") or {}).get("topic", ""),
                     "workflow": ((t.get("destination") or {}).get("workflow") or "")}
                    for t in self.queries.resources(TRIGGER_KIND)]
        return {"workflows": workflows, "workflow_total": total, "running": running,
                "counts": [(state, counts.get(state, 0)) for state in STATES],
                "total": sum(counts.values()), "vms": self.vms_now(),
                "schedules": schedules, "triggers": triggers, "live": bool(running)}

    def vms_now(self) -> list[dict[str, Any]]:
        return [self._vm_row(r) for r in self.compute.known_instances() if r.deleted is None]

    # -- a workflow --------------------------------------------------------------
    def workflow(self, name: str, state: str | None, token: str | None) -> dict[str, Any]:
        workflow = self.executions.workflows.get(name)
        rows, next_token = self.queries.executions(name, state, token)
        counts = self.queries.counts(name)
        source = workflow.get("sourceContents", "")
        return {"workflow": workflow, "name": name, "lines": source.splitlines(),
                "revisions": self.queries.revisions(name), "executions": rows,
                "next_token": next_token, "state": state or "", "first_page": not token,
                "counts": [(s, counts.get(s, 0)) for s in STATES],
                "total": sum(counts.values()),
                "live": any(row.state == "ACTIVE" for row in rows)}

    # -- an execution ------------------------------------------------------------
    def execution(self, name: str) -> dict[str, Any]:
        resource = self.executions.get(name)
        state = resource.get("state", "")
        result_text = resource.get("result")
        result_value = present.loads(result_text)
        error = resource.get("error") or {}
        payload_value = present.loads(error.get("payload"))
        job = _job_map(result_value) or _job_map(payload_value)
        message, tags = "", []
        if isinstance(payload_value, dict):
            message = str(payload_value.get("message", ""))
            tags = [str(t) for t in payload_value.get("tags") or [] if isinstance(t, str)]
        elif isinstance(payload_value, str):  # `raise: "text"`
            message = payload_value
        elif error:
            message = str(error.get("payload", ""))
        frames = (error.get("stackTrace") or {}).get("elements") or []
        failing = frames[0] if frames else None
        execution_id = name.rsplit("/", 1)[-1]
        vms = [self._vm_row(r, job) for r in self.compute.known_instances()
               if r.labels.get(LABEL_EXECUTION) == execution_id]
        output = ""
        if job and isinstance(job.get("output_tail"), str):
            output = job["output_tail"]
        elif vms:
            last = self.compute.find_record(vms[-1]["project"], vms[-1]["zone"],
                                            vms[-1]["name"])
            output = last.console.read(-OUTPUT_TAIL)[0] if last else ""
        steps_log = trace.load(self.store, name, self.runner)
        start = present.parse_time(resource.get("startTime", "")) or 0.0
        entries = steps_log.get("steps") or []
        steps = []
        end = present.parse_time(resource.get("endTime", ""))
        for i, (t, routine, step) in enumerate(entries):
            until = entries[i + 1][0] if i + 1 < len(entries) else end
            steps.append({"at": present.when(t), "offset": present.took(max(0.0, t - start)),
                          "routine": routine, "step": step,
                          "took": present.took(until - t) if until is not None else (
                              "running" if state == "ACTIVE" else "")})
        current = ((resource.get("status") or {}).get("currentSteps") or [{}])[-1]
        return {"execution": resource, "name": name, "state": state,
                "workflow": name.split("/executions/")[0],
                "argument": present.json_text(resource.get("argument")),
                "result": present.json_text(result_text) if result_text is not None else None,
                "error": error, "message": present.cut_head(message), "tags": tags,
                "context": present.cut_head(error.get("context", "")), "failing": failing,
                "job": _job_summary(job), "vms": vms, "output": present.cut_tail(
                    output, OUTPUT_TAIL), "steps": steps,
                "calls": steps_log.get("calls", 0), "billed": steps_log.get("billed"),
                "current": current, "duration": present.running_for(
                    resource.get("startTime", ""), resource.get("endTime", ""),
                    resource.get("duration", "")),
                "live": state == "ACTIVE"}

    # -- a VM --------------------------------------------------------------------
    def vm(self, project: str, zone: str, name: str) -> dict[str, Any]:
        record = self.compute.find_record(project, zone, name)
        if record is None:
            raise ApiError(404, f"no VM {name} in {project}/{zone} (serve keeps the last "
                                "deleted ones only)")
        items = (record.body.get("metadata") or {}).get("items") or []
        metadata = []
        for item in items:
            if not isinstance(item, dict):
                continue
            key = str(item.get("key", ""))
            secret = present.is_secret(key)
            metadata.append({"key": key, "secret": secret,
                             "value": present.cut_head("" if secret else str(
                                 item.get("value", "")), present.METADATA_LIMIT)})
        text, begin, end = record.console.read(-present.CONSOLE_LIMIT)
        execution_id = record.labels.get(LABEL_EXECUTION, "")
        execution = self.queries.execution_by_id(project, execution_id) if (
            execution_id) else None
        row = self._vm_row(record)
        return {"vm": row, "metadata": metadata, "console": text, "console_start": begin,
                "console_end": end, "labels": sorted(record.labels.items()),
                "execution": execution, "live": record.deleted is None}

    # -- pub/sub -----------------------------------------------------------------
    def pubsub(self) -> dict[str, Any]:
        triggers: dict[str, list[str]] = {}
        for trigger in self.queries.resources(TRIGGER_KIND):
            topic = ((trigger.get("transport") or {}).get("pubsub") or {}).get("topic", "")
            workflow = (trigger.get("destination") or {}).get("workflow", "")
            triggers.setdefault(topic, []).append(workflow)
        topics = [{"name": t["name"], "workflows": triggers.get(t["name"], [])}
                  for t in self.queries.resources(TOPIC_KIND)]
        subscriptions = [{"name": s["name"], "topic": s.get("topic", "")}
                         for s in self.queries.resources(SUBSCRIPTION_KIND)]
        return {"topics": topics, "subscriptions": subscriptions, "live": False}

    # -- helpers -------------------------------------------------------------------
    def _vm_row(self, record: Instance, job: dict[str, Any] | None = None) -> dict[str, Any]:
        labels = record.labels
        exit_code = None
        for run in _runs(job):
            if run.get("instance") == record.name:
                exit_code = run.get("exit_code")
        return {"name": record.name, "zone": record.zone, "project": record.project,
                "id": record.id,
                "machine": present.short(str(record.body.get("machineType") or
                                             "n1-standard-1")),
                "status": "DELETED" if record.deleted is not None else (
                    "STOPPING" if record.busy else record.vm.status),
                "attempt": labels.get(LABEL_ATTEMPT, ""), "task": labels.get(LABEL_TASK, ""),
                "job": labels.get(LABEL_JOB, ""), "preempted": record.vm.metadata.preempted,
                "created": present.when(record.created), "exit_code": exit_code,
                "age": present.took(time.time() - record.created)}


def _job_map(value: Any) -> dict[str, Any] | None:
    """The result map of a wfgen job (status, exit_code, attempts...), found in
    a result or inside a failed job's error payload."""
    for candidate in (value, (value or {}).get("payload") if isinstance(value, dict) else None):
        if isinstance(candidate, dict) and "status" in candidate and (
                "exit_code" in candidate or "tasks" in candidate or "attempts" in candidate):
            return candidate
    return None


def _runs(job: dict[str, Any] | None) -> list[dict[str, Any]]:
    if not job:
        return []
    tasks = job.get("tasks")
    if isinstance(tasks, list):
        return [t for t in tasks if isinstance(t, dict)]
    return [job]


def _job_summary(job: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The job map's short fields, as (label, text) rows."""
    if not job:
        return []
    rows = []
    for key in ("status", "exit_code", "attempts", "instance", "zone", "message",
                "succeeded", "failed", "duration_s"):
        if key in job and not isinstance(job[key], dict | list):
            rows.append((key, str(job[key])))
    return rows
