"""The rules of wfgen/job/schedule.py: cron and time zone checks name what is
wrong; next runs follow the cron in its time zone across DST changes."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from wfgen.errors import UsageError
from wfgen.job import schedule as rules

UTC = dt.UTC


@pytest.mark.parametrize("cron", ["0 3 * * *", "*/5 1-3 * JAN MON-FRI", "0 0 * * 7",
                                  "15,45 */2 1-15 1,6,12 *", "  0   3 * * *  "])
def test_good_crons_are_normalised(cron):
    assert rules.check_cron(cron) == " ".join(cron.split())


@pytest.mark.parametrize(("cron", "says"), [
    ("* * * *", "has 4 field(s); a schedule has 5"),
    ("0 0 0 * * *", "has 6 field(s)"),
    ("@daily", "has 1 field(s)"),
    ("61 * * * *", "field 1 (minute) '61' is not valid: values are 0-59"),
    ("0 24 * * *", "field 2 (hour) '24' is not valid: values are 0-23"),
    ("0 0 32 * *", "field 3 (day of month) '32'"),
    ("0 0 * 13 *", "field 4 (month) '13'"),
    ("0 0 * * 8", "field 5 (day of week) '8'"),
    ("1-70 * * * *", "field 1 (minute) '1-70'"),
    ("x * * * *", "field 1 (minute) 'x'"),
    ("0 0 31 2 *", "never matches a date"),
])
def test_bad_crons_name_the_field(cron, says):
    with pytest.raises(UsageError) as caught:
        rules.check_cron(cron)
    assert says in str(caught.value)
    assert str(caught.value).startswith("--cron")


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../../etc/passwd", "Europe/Paris ",
                                  "/usr/share/zoneinfo/UTC"])
def test_bad_time_zones(zone):
    with pytest.raises(UsageError, match="is not an IANA time zone name"):
        rules.check_time_zone(zone)


def test_next_runs_read_the_cron_in_its_zone():
    after = dt.datetime(2026, 11, 30, 12, tzinfo=UTC)
    paris = rules.next_runs("0 3 * * *", "Europe/Paris", after, 2)
    assert paris == [dt.datetime(2026, 12, 1, 2, tzinfo=UTC), dt.datetime(2026, 12, 2, 2,
                                                                          tzinfo=UTC)]
    kolkata = rules.next_runs("30 2 * * *", "Asia/Kolkata", after)
    assert kolkata == [dt.datetime(2026, 11, 30, 21, tzinfo=UTC)]


def test_dst_skipped_time_runs_at_the_next_valid_minute():
    # Paris springs forward at 02:00 on 2026-03-29: 02:30 does not exist that day
    runs = rules.next_runs("30 2 * * *", "Europe/Paris", dt.datetime(2026, 3, 28, 12,
                                                                     tzinfo=UTC), 2)
    assert runs == [dt.datetime(2026, 3, 29, 1, tzinfo=UTC),  # 03:00 CEST
                    dt.datetime(2026, 3, 30, 0, 30, tzinfo=UTC)]  # 02:30 CEST


def test_executions_uri_round_trip_and_body():
    workflow = "projects/p/locations/us-central1/workflows/train"
    uri = rules.executions_uri(workflow)
    assert uri == f"https://workflowexecutions.googleapis.com/v1/{workflow}/executions"
    assert rules.workflow_of_uri(uri) == workflow
    assert rules.workflow_of_uri("https://example.com/v1/projects/p/topics/t") is None
    body = json.loads(rules.execution_body({"args": ["a b"]}))
    assert json.loads(body["argument"]) == {"args": ["a b"]}
    assert json.loads(rules.execution_body(None)) == {}


def test_pubsub_cloudevent_shape():
    message = {"data": base64.b64encode(b'{"args": []}').decode(), "messageId": "42",
               "publishTime": "2026-11-30T12:00:00.000000Z"}
    event = rules.pubsub_cloudevent("projects/p/topics/t", message,
                                    "projects/p/subscriptions/s", message["publishTime"])
    assert event["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert event["source"] == "//pubsub.googleapis.com/projects/p/topics/t"
    assert event["id"] == "42" and event["specversion"] == "1.0"
    assert event["data"]["message"]["data"] == message["data"]
