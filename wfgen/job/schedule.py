"""When a job starts without a person: the rules of a Cloud Scheduler cron
schedule and time zone (checked by `wfgen schedule` before any call, and by
serve, which fires the jobs), and the CloudEvent Eventarc hands a workflow for
a Pub/Sub message (built by serve; recognised by the generated workflow).

Cron expressions are parsed by croniter (unix-cron, as Cloud Scheduler takes
them: 5 fields, names for months and days, ranges, steps, lists, day-of-month
OR day-of-week); this module only names the field that is wrong."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
import zoneinfo
from typing import Any

from wfgen.errors import UsageError

CRON_FIELDS = (("minute", "0-59"), ("hour", "0-23"), ("day of month", "1-31"),
               ("month", "1-12 or JAN-DEC"), ("day of week", "0-7 or SUN-SAT, 0 and 7 = Sunday"))
DEFAULT_TIME_ZONE = "Etc/UTC"
PUBSUB_EVENT = "google.cloud.pubsub.topic.v1.messagePublished"
EXECUTIONS_HOST = "https://workflowexecutions.googleapis.com"
OAUTH_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
SCHEDULE_ID = re.compile(r"[A-Za-z0-9_-]{1,500}")
TRIGGER_ID = re.compile(r"[a-z][a-z0-9-]{0,62}")
TOPIC = re.compile(r"projects/[^/\s]+/topics/(?!goog)[A-Za-z][A-Za-z0-9._~+%-]{2,254}")


def check_cron(expression: str, where: str = "--cron") -> str:
    """The expression, normalised to single spaces, or a UsageError naming the
    field that is wrong and its valid values."""
    from croniter import croniter

    fields = expression.split()
    if len(fields) != 5:
        raise UsageError(f"{where} {expression!r} has {len(fields)} field(s); a schedule has 5: "
                         "minute hour day-of-month month day-of-week, e.g. '0 3 * * *'")
    for i, (name, values) in enumerate(CRON_FIELDS):
        probe = ["*"] * 5
        probe[i] = fields[i]
        if not _valid(" ".join(probe)):
            raise UsageError(f"{where} {expression!r}: field {i + 1} ({name}) {fields[i]!r} is "
                             f"not valid: values are {values}, with *, ranges a-b, steps /n "
                             "and lists a,b")
    normalised = " ".join(fields)
    if not _valid(normalised):  # each field fine, the whole never matches (e.g. 31 2)
        raise UsageError(f"{where} {expression!r} never matches a date")
    try:
        croniter(normalised).get_next(dt.datetime)
    except Exception:  # croniter gives up on dates that never come (30 2 = February 30)
        raise UsageError(f"{where} {expression!r} never matches a date") from None
    return normalised


def _valid(expression: str) -> bool:
    from croniter import croniter

    try:
        return bool(croniter.is_valid(expression))
    except Exception:  # croniter raises on some malformed input instead of answering
        return False


def check_time_zone(name: str, where: str = "--time-zone") -> str:
    """An IANA time zone name (e.g. Europe/Paris), or a UsageError."""
    try:
        if not name or name != name.strip() or name.startswith("/") or len(name) > 64:
            raise ValueError(name)
        zoneinfo.ZoneInfo(name)
    except (ValueError, OSError, zoneinfo.ZoneInfoNotFoundError):  # OSError: a name too long
        raise UsageError(f"{where} {name[:80]!r} is not an IANA time zone name "
                         "(e.g. Etc/UTC, Europe/Paris, America/New_York)") from None
    return name


def next_runs(expression: str, time_zone: str, after: dt.datetime, count: int = 1
              ) -> list[dt.datetime]:
    """The next `count` firing times strictly after `after`, in UTC. The cron is
    read in `time_zone`: a time skipped by a DST change runs at the next valid
    minute, and a time the change repeats runs at both occurrences (croniter)."""
    from croniter import croniter

    zone = zoneinfo.ZoneInfo(time_zone)
    it = croniter(expression, after.astimezone(zone))
    return [it.get_next(dt.datetime).astimezone(dt.UTC) for _ in range(count)]


def executions_uri(workflow: str, host: str = EXECUTIONS_HOST) -> str:
    """The Executions API URL a Scheduler job POSTs to, to start `workflow`."""
    return f"{host}/v1/{workflow}/executions"


def workflow_of_uri(uri: str) -> str | None:
    """The workflow name an Executions API create URL targets (any host), or None."""
    match = re.fullmatch(r"https?://[^/]+/v1/(projects/[^/]+/locations/[^/]+/workflows/[^/]+)"
                         r"/executions/?", uri)
    return match.group(1) if match else None


def pubsub_cloudevent(topic: str, message: dict[str, Any], subscription: str,
                      now: str) -> dict[str, Any]:
    """The CloudEvent (JSON form) Eventarc passes as a workflow's argument for a
    message published on `topic` ({data: base64, attributes, messageId, ...})."""
    return {
        "specversion": "1.0",
        "id": message["messageId"],
        "source": f"//pubsub.googleapis.com/{topic}",
        "type": PUBSUB_EVENT,
        "datacontenttype": "application/json",
        "time": now,
        "data": {"message": message, "subscription": subscription},
    }


def execution_body(argument: Any) -> str:
    """The body of an Executions API create with `argument` (a Scheduler job's
    message body): the argument travels as a JSON string."""
    return json.dumps({"argument": json.dumps(argument)} if argument is not None else {})


def message_id() -> str:
    return str(uuid.uuid4().int)[:16]
