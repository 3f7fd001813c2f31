"""Cloud Scheduler API v1 (`cloudscheduler.googleapis.com`) in `wfgen serve`:
jobs create/get/list/patch/delete/run/pause/resume as gcloud and the Python
client send them, kept in the store, and a scheduler thread that fires each
ENABLED job on its cron in its time zone (croniter, see wfgen.job.schedule).

A job's HTTP target is delivered for real: a POST to the Workflow Executions
API (any host: serve is that API) starts an execution with the job's body, as
the service would with the OAuth token of the job's account; an http:// URL on
loopback gets the request; any other URL is recorded as a failed attempt. The
outcome lands in the job's `status` and `lastAttemptTime`, and in serve's log.

Test clock: with `wfgen serve --test-clock`, `POST /wfgen/test/clock` with
{"advanceTo": RFC3339} or {"advanceSeconds": N} moves the scheduler's clock
forward, so a test sees a cron fire at once instead of waiting for it."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from wfgen.errors import UsageError
from wfgen.job import schedule as rules
from wfgen.local.loopback import ApiError, Request, Response
from wfgen.server import wire
from wfgen.server.store import Resource, Store

KIND = "scheduler.job"
JOB_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,500}")
HTTP_METHODS = ("HTTP_METHOD_UNSPECIFIED", "POST", "GET", "HEAD", "PUT", "DELETE", "PATCH",
                "OPTIONS")
STATES = ("STATE_UNSPECIFIED", "ENABLED", "PAUSED", "DISABLED", "UPDATE_FAILED")
SETTABLE = ("description", "schedule", "timeZone", "httpTarget", "retryConfig",
            "attemptDeadline", "pubsubTarget", "appEngineHttpTarget")
SNAKE = {"time_zone": "timeZone", "http_target": "httpTarget", "retry_config": "retryConfig",
         "attempt_deadline": "attemptDeadline", "http_method": "httpMethod",
         "oauth_token": "oauthToken", "oidc_token": "oidcToken",
         "service_account_email": "serviceAccountEmail", "pubsub_target": "pubsubTarget",
         "app_engine_http_target": "appEngineHttpTarget", "retry_count": "retryCount",
         "max_retry_duration": "maxRetryDuration", "min_backoff_duration": "minBackoffDuration",
         "max_backoff_duration": "maxBackoffDuration", "max_doublings": "maxDoublings"}
DEFAULT_RETRY = {"retryCount": 0, "maxRetryDuration": "0s", "minBackoffDuration": "5s",
                 "maxBackoffDuration": "3600s", "maxDoublings": 5}
StartExecution = Callable[[str, Any], Resource]


def _camel(value: Any) -> Any:
    """Field names as the REST API spells them (clients may send snake_case)."""
    if isinstance(value, dict):
        return {SNAKE.get(k, k): _camel(v) for k, v in value.items()}
    return value


class Clock:
    """Real time, moved forward by the test clock hook (never backwards)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance_to(self, when: float) -> None:
        self.offset = max(self.offset, when - time.time())


class SchedulerService:
    """Scheduler jobs, stored, and the thread that fires them."""

    def __init__(self, store: Store, start_execution: StartExecution,
                 log: Callable[[str], None], clock: Clock | None = None) -> None:
        self.store = store
        self.start_execution = start_execution
        self.log = log
        self.clock = clock or Clock()
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self._thread: threading.Thread | None = None

    # -- API ---------------------------------------------------------------------
    def create(self, parent: str, body: Any) -> Resource:
        wire.split_parent(parent)
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received: the body must be a Job")
        body = _camel(body)
        name = body.get("name") or f"{parent}/jobs/{int(time.time() * 1e6)}"
        if not name.startswith(f"{parent}/jobs/") or not JOB_ID_RE.fullmatch(
                name[len(parent) + 6:]):
            raise ApiError(400, f"Job name {name!r} must be {parent}/jobs/ID, ID being letters, "
                                "digits, hyphens or underscores (at most 500)")
        with self._lock:
            if self.store.get_resource(KIND, name) is not None:
                raise ApiError(409, f"Job {name} already exists.", resource=name)
            job = self._checked({"name": name, **{k: body[k] for k in SETTABLE if k in body}})
            job["state"] = "PAUSED" if _state(body.get("state")) == "PAUSED" else "ENABLED"
            self._save(job, schedule_changed=True)
        return self._public(job)

    def get(self, name: str) -> Resource:
        return self._public(self._job(name))

    def list(self, parent: str, size: Any = None, token: str | None = None) -> Resource:
        wire.split_parent(parent)
        return wire.paged("jobs", parent, size, token,
                          lambda offset, count: self.store.list_resources(KIND, parent)[
                              offset:offset + count], default=500, maximum=500,
                          show=self._public)

    def patch(self, name: str, body: Any, mask: list[str] | None) -> Resource:
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid JSON payload received: the body must be a Job")
        body = _camel(body)
        with self._lock:
            job = self._job(name)
            updated = json.loads(json.dumps(job))
            paths = [".".join(SNAKE.get(p, p) for p in path.split("."))
                     for path in (mask or [k for k in SETTABLE if k in body])]
            for path in paths:
                head, _, rest = path.partition(".")
                if head not in SETTABLE:
                    raise ApiError(400, f"update_mask path {path!r} is not a field of Job that "
                                        "can be updated")
                if not rest:
                    if head in body:
                        updated[head] = body[head]
                    else:
                        updated.pop(head, None)
                    continue
                value = (body.get(head) or {}).get(rest)
                target = updated.setdefault(head, {})
                if value is None:
                    target.pop(rest, None)
                else:
                    target[rest] = value
            for key in ("pubsubTarget", "appEngineHttpTarget", "httpTarget"):
                if key in updated and not updated[key]:
                    updated.pop(key)
            updated = self._checked(updated)
            changed = (updated.get("schedule"), updated.get("timeZone")) != (
                job.get("schedule"), job.get("timeZone"))
            self._save(updated, schedule_changed=changed)
        return self._public(updated)

    def delete(self, name: str) -> Resource:
        with self._lock:
            if not self.store.delete_resource(KIND, name):
                raise ApiError(404, f"Job not found: {name}", resource=name)
            self._wake.notify_all()
        return {}

    def run(self, name: str) -> Resource:
        job = self._job(name)
        threading.Thread(target=self._fire, args=(name, False), daemon=True,
                         name=f"scheduler-run-{name.rsplit('/', 1)[-1]}").start()
        return self._public(job)

    def set_state(self, name: str, state: str) -> Resource:
        with self._lock:
            job = self._job(name)
            job["state"] = state
            self._save(job, schedule_changed=state == "ENABLED")
        return self._public(job)

    # -- checks and storage -------------------------------------------------------
    def _job(self, name: str) -> Resource:
        job = self.store.get_resource(KIND, name)
        if job is None:
            raise ApiError(404, f"Job not found: {name}", resource=name)
        return job

    def _checked(self, job: Resource) -> Resource:
        """The job with defaults filled in; a 400 naming the first bad field."""
        if "pubsubTarget" in job or "appEngineHttpTarget" in job:
            raise ApiError(400, "wfgen serve runs jobs with an httpTarget only (Pub/Sub and "
                                "App Engine targets are not emulated)",
                           code_name="UNIMPLEMENTED")
        target = job.get("httpTarget")
        if not isinstance(target, dict) or not target.get("uri"):
            raise ApiError(400, "job.http_target.uri is required")
        if not re.match(r"https?://[^/\s]+", str(target["uri"])):
            raise ApiError(400, f"job.http_target.uri {target['uri']!r} is not an http(s) URL")
        target["httpMethod"] = wire.enum_name("job.http_target.http_method",
                                              target.get("httpMethod") or 1, HTTP_METHODS)
        if "body" in target:
            try:
                base64.b64decode(str(target["body"]), validate=True)
            except ValueError:
                raise ApiError(400, "job.http_target.body must be base64") from None
            if target["httpMethod"] not in ("POST", "PUT", "PATCH"):
                raise ApiError(400, "job.http_target.body is only for POST, PUT and PATCH")
        if "oauthToken" in target:
            token = target["oauthToken"]
            if not isinstance(token, dict) or not token.get("serviceAccountEmail"):
                raise ApiError(400, "job.http_target.oauth_token.service_account_email is "
                                    "required")
            token.setdefault("scope", rules.OAUTH_SCOPE)
        if "oauthToken" in target and "oidcToken" in target:
            raise ApiError(400, "job.http_target may have oauth_token or oidc_token, not both")
        try:
            job["schedule"] = rules.check_cron(str(job.get("schedule") or ""), "job.schedule")
            job["timeZone"] = rules.check_time_zone(
                str(job.get("timeZone") or rules.DEFAULT_TIME_ZONE), "job.time_zone")
        except UsageError as exc:
            raise ApiError(400, str(exc)) from None
        job.setdefault("retryConfig", {})
        for key, value in DEFAULT_RETRY.items():
            job["retryConfig"].setdefault(key, value)
        job.setdefault("attemptDeadline", "180s")
        return job

    def _save(self, job: Resource, *, schedule_changed: bool) -> None:
        job["userUpdateTime"] = wire.now()[1]
        if schedule_changed or "scheduleTime" not in job:
            job["scheduleTime"] = self._next(job, self.clock.now())
        self.store.put_resource(KIND, job, job["name"].rsplit("/jobs/", 1)[0])
        self._wake.notify_all()

    def _next(self, job: Resource, after: float) -> str:
        when = rules.next_runs(job["schedule"], job["timeZone"],
                               dt.datetime.fromtimestamp(after, dt.UTC))[0]
        return wire.timestamp(when.timestamp())

    @staticmethod
    def _public(job: Resource) -> Resource:
        out = dict(job)
        if out.get("state") != "ENABLED":
            out.pop("scheduleTime", None)
        return out

    # -- the scheduler -------------------------------------------------------------
    def start(self) -> None:
        """Fire jobs on their schedule from now on (runs missed while serve was
        stopped are skipped, each job's next run is counted from now)."""
        now = self.clock.now()
        with self._lock:
            for job in self.store.list_resources(KIND):
                if job.get("state") == "ENABLED" and wire.parse_timestamp(
                        job["scheduleTime"]) <= now:
                    job["scheduleTime"] = self._next(job, now)
                    self.store.put_resource(KIND, job, job["name"].rsplit("/jobs/", 1)[0])
        self._thread = threading.Thread(target=self._loop, daemon=True, name="scheduler")
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(5)

    def advance_to(self, when: float) -> None:
        with self._lock:
            self.clock.advance_to(when)
            self._wake.notify_all()

    def _loop(self) -> None:
        while True:
            with self._lock:
                if self._stop:
                    return
                now = self.clock.now()
                due, soonest = [], now + 60.0
                for job in self.store.list_resources(KIND):
                    if job.get("state") != "ENABLED":
                        continue
                    at = wire.parse_timestamp(job["scheduleTime"])
                    if at <= now:
                        job["scheduleTime"] = self._next(job, max(now, at))
                        self.store.put_resource(KIND, job, job["name"].rsplit("/jobs/", 1)[0])
                        due.append(job["name"])
                    soonest = min(soonest, wire.parse_timestamp(job["scheduleTime"]))
                if not due:
                    self._wake.wait(max(0.05, min(soonest - now, 60.0)))
                    continue
            for name in due:
                threading.Thread(target=self._fire, args=(name, True), daemon=True,
                                 name="scheduler-fire").start()

    def _fire(self, name: str, scheduled: bool) -> None:
        """One attempt of the job's HTTP target; its outcome goes in the job."""
        job = self.store.get_resource(KIND, name)
        if job is None:
            return
        attempt = wire.timestamp(self.clock.now())
        try:
            detail = self._deliver(job["httpTarget"])
            status: Resource = {}
            self.log(f"wfgen serve: scheduler: {name} {'fired' if scheduled else 'ran'}: "
                     f"{detail}")
        except ApiError as exc:
            status = {"code": _rpc_code(exc.code_name), "message": exc.message}
            self.log(f"wfgen serve: scheduler: {name}: the attempt failed: {exc.message}")
        with self._lock:
            job = self.store.get_resource(KIND, name)
            if job is None:
                return
            job["lastAttemptTime"] = attempt
            if status:
                job["status"] = status
            else:
                job.pop("status", None)
            self.store.put_resource(KIND, job, name.rsplit("/jobs/", 1)[0])

    def _deliver(self, target: Resource) -> str:
        body = base64.b64decode(target.get("body") or "")
        workflow = rules.workflow_of_uri(target["uri"])
        if workflow and target.get("httpMethod") == "POST":
            try:
                request = json.loads(body) if body.strip() else {}
            except ValueError as exc:
                raise ApiError(400, f"the job's body is not JSON: {exc}") from None
            execution = self.start_execution(workflow, request)
            return f"started {execution['name']}"
        if re.match(r"http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/", target["uri"]):
            request = urllib.request.Request(
                target["uri"], data=body or None, method=target.get("httpMethod", "POST"),
                headers={"User-Agent": "Google-Cloud-Scheduler",
                         **(target.get("headers") or {})})
            try:
                with urllib.request.urlopen(request, timeout=180) as response:
                    return f"{target['uri']} answered {response.status}"
            except urllib.error.HTTPError as exc:
                raise ApiError(exc.code, f"{target['uri']} answered {exc.code}") from None
            except OSError as exc:
                raise ApiError(503, f"{target['uri']}: {exc}") from None
        raise ApiError(400, f"wfgen serve delivers only to the Workflow Executions API and "
                            f"to loopback http:// URLs, not {target['uri']}",
                       code_name="FAILED_PRECONDITION")


def _state(value: Any) -> str:
    if value in (None, "", 0):
        return "ENABLED"
    return wire.enum_name("job.state", value, STATES)


def _rpc_code(name: str) -> int:
    codes = {"INVALID_ARGUMENT": 3, "NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7,
             "FAILED_PRECONDITION": 9, "UNIMPLEMENTED": 12, "INTERNAL": 13, "UNAVAILABLE": 14,
             "UNAUTHENTICATED": 16}
    return codes.get(name, 2)


class SchedulerRest:
    """The REST paths of the Scheduler API, and the test clock hook."""

    def __init__(self, service: SchedulerService, test_clock: bool = False) -> None:
        self.service = service
        self.test_clock = test_clock

    def handle(self, request: Request) -> Response | None:
        path = request.path
        if path == "/wfgen/test/clock" and self.test_clock:
            return self._clock(request)
        if not path.startswith("/v1/projects/"):
            return None
        name = path[len("/v1/"):].rstrip("/")
        parts = name.split("/")
        if len(parts) < 5 or parts[2] != "locations" or parts[4] != "jobs":
            return None
        method = request.method
        if len(parts) == 5:
            parent = "/".join(parts[:4])
            if method == "GET":
                return Response.of_json(self.service.list(
                    parent, request.arg("pageSize"), request.arg("pageToken")))
            if method == "POST":
                return Response.of_json(self.service.create(parent, request.json()))
        elif len(parts) == 6:
            job, _, custom = name.partition(":")
            if custom and method == "POST":
                if custom == "run":
                    return Response.of_json(self.service.run(job))
                if custom in ("pause", "resume"):
                    return Response.of_json(self.service.set_state(
                        job, "PAUSED" if custom == "pause" else "ENABLED"))
                raise ApiError(404, f"Unknown method :{custom}")
            if method == "GET":
                return Response.of_json(self.service.get(job))
            if method == "PATCH":
                mask = request.arg("updateMask") or request.arg("update_mask")
                paths = [p.strip() for p in mask.split(",") if p.strip()] if mask else None
                return Response.of_json(self.service.patch(job, request.json(), paths))
            if method == "DELETE":
                return Response.of_json(self.service.delete(job))
        else:
            return None
        raise ApiError(405, f"{method} is not allowed on {path}", code_name="UNIMPLEMENTED")

    def _clock(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise ApiError(400, "expected {\"advanceTo\": RFC3339} or {\"advanceSeconds\": N}")
        if "advanceTo" in body:
            try:
                when = dt.datetime.fromisoformat(str(body["advanceTo"]).replace("Z", "+00:00"))
            except ValueError:
                raise ApiError(400, f"advanceTo {body['advanceTo']!r} is not RFC 3339") from None
            self.service.advance_to(when.timestamp())
        elif isinstance(body.get("advanceSeconds"), int | float):
            self.service.advance_to(self.service.clock.now() + float(body["advanceSeconds"]))
        else:
            raise ApiError(400, "expected {\"advanceTo\": RFC3339} or {\"advanceSeconds\": N}")
        return Response.of_json({"now": wire.timestamp(self.service.clock.now())})
