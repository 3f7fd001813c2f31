"""`wfgen schedule` against one real `wfgen serve --test-clock` for the module,
checked with the real gcloud (`gcloud scheduler jobs ... --location`, as
gcloud needs it offline), and serve's own scheduler firing a cron: the test
moves serve's scheduler clock to the job's next run time (POST
/wfgen/test/clock), so the firing is tested without waiting for it."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import zoneinfo

import pytest

from tests.cloud.serve_cli import GCLOUD, PROJECT, Serve, job

pytestmark = pytest.mark.xdist_group("schedule_serve")
LOCATION = "us-central1"
WORKFLOWS = f"projects/{PROJECT}/locations/{LOCATION}/workflows"
JOBS = f"projects/{PROJECT}/locations/{LOCATION}/jobs"
ECHO = 'echo "args:$*"; echo "WHO=${WHO:-nobody}"'
SA = f"scheduler@{PROJECT}.iam.gserviceaccount.com"


def echo_job(path, name: str) -> str:
    """A job whose container prints its args and $WHO (args replaceable per run)."""
    return job(path, name, ECHO, container={"image": "alpine:3.20",
                                            "command": ["sh", "-c", ECHO, "sh"], "args": []})


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("schedule-serve"), "--test-clock").start()
    yield server
    assert server.stop() == 0, "\n".join(server.lines[-40:])


def gcloud_json(serve: Serve, *args: str) -> object:
    done = serve.gcloud("scheduler", "jobs", *args, f"--location={LOCATION}", "--format=json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def executions(serve: Serve, workflow: str) -> list[dict]:
    return serve.rest("GET", f"/v1/{WORKFLOWS}/{workflow}/executions?view=FULL")[
        "executions"]


def finished(serve: Serve, name: str) -> dict:
    return serve.wait_for(lambda: (lambda e: e if e["state"] != "ACTIVE" else None)(
        serve.rest("GET", f"/v1/{name}")), f"{name} to end")


def next_local(hour: int, minute: int, zone: str, after: dt.datetime) -> dt.datetime:
    """The next HH:MM in `zone` after `after`, in UTC (computed without croniter)."""
    tz = zoneinfo.ZoneInfo(zone)
    local = after.astimezone(tz)
    for days in range(3):
        day = (local + dt.timedelta(days=days)).date()
        candidate = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz)
        if candidate > local:
            return candidate.astimezone(dt.UTC)
    raise AssertionError("no next run")


def stamp(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.skipif(not GCLOUD, reason="gcloud is not installed")
def test_schedule_shows_in_gcloud_and_runs_with_its_args(serve, tmp_path):
    spec = echo_job(tmp_path / "job.yaml", "nightly")
    data = {"args": ["--epochs", "3 4"], "env": {"WHO": "cron"}}
    done = serve.wfgen("schedule", spec, "--cron", "0 3 * * *", "--time-zone", "Europe/Paris",
                       "--data", json.dumps(data), "--service-account", SA)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{JOBS}/nightly"
    assert f"deployed {WORKFLOWS}/nightly" in done.stderr
    assert "created the schedule" in done.stderr
    assert ("gcloud scheduler jobs create http nightly --location=us-central1 "
            f"--project={PROJECT} '--schedule=0 3 * * *' --time-zone=Europe/Paris") in done.stderr

    jobs = {j["name"]: j for j in gcloud_json(serve, "list")}
    got = jobs[f"{JOBS}/nightly"]
    uri = f"https://workflowexecutions.googleapis.com/v1/{WORKFLOWS}/nightly/executions"
    assert got["schedule"] == "0 3 * * *"
    assert got["timeZone"] == "Europe/Paris"
    assert got["state"] == "ENABLED"
    target = got["httpTarget"]
    assert target["uri"] == uri and target["httpMethod"] == "POST"
    assert target["oauthToken"]["serviceAccountEmail"] == SA
    assert "oidcToken" not in target
    assert target["headers"]["Content-Type"] == "application/json"
    body = json.loads(base64.b64decode(target["body"]))
    assert json.loads(body["argument"]) == data
    # the next run is 03:00 in Paris, whatever the offset today
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    assert stamp(got["scheduleTime"]) in (next_local(3, 0, "Europe/Paris", now),
                                          next_local(3, 0, "Europe/Paris",
                                                     now + dt.timedelta(minutes=2)))
    table = serve.gcloud("scheduler", "jobs", "list", f"--location={LOCATION}")
    assert "0 3 * * * (Europe/Paris)" in table.stdout, table.stdout + table.stderr

    listed = serve.wfgen("schedule", spec, "--list")
    assert listed.returncode == 0, listed.stderr
    row = listed.stdout.splitlines()[1].split()
    assert row[0] == "nightly" and "Europe/Paris" in row and "ENABLED" in row
    assert got["scheduleTime"].replace(".000000", "") in listed.stdout

    # gcloud scheduler jobs run: one execution, whose job sees the schedule's args and env
    assert executions(serve, "nightly") == []
    ran = serve.gcloud("scheduler", "jobs", "run", "nightly", f"--location={LOCATION}")
    assert ran.returncode == 0, ran.stderr
    started = serve.wait_for(lambda: executions(serve, "nightly"), "the run's execution")
    assert len(started) == 1
    ended = finished(serve, started[0]["name"])
    assert ended["state"] == "SUCCEEDED", ended
    assert json.loads(ended["argument"]) == data
    tail = json.loads(ended["result"])["output_tail"]
    assert "args:--epochs 3 4" in tail and "WHO=cron" in tail
    described = gcloud_json(serve, "describe", "nightly")
    assert described["lastAttemptTime"] and "status" not in described


@pytest.mark.skipif(not GCLOUD, reason="gcloud is not installed")
def test_update_and_delete(serve, tmp_path):
    spec = echo_job(tmp_path / "job.yaml", "updated")
    first = serve.wfgen("schedule", spec, "--cron", "0 3 * * *", "--service-account", SA)
    assert first.returncode == 0, first.stderr
    revision = serve.rest("GET", f"/v1/{WORKFLOWS}/updated")["revisionId"]
    again = serve.wfgen("schedule", spec, "--cron", "*/15 8-18 * * MON-FRI", "--time-zone",
                        "America/New_York", "--data", '{"env": {"WHO": "weekday"}}')
    assert again.returncode == 0, again.stderr
    assert "updated the schedule" in again.stderr and "deployed" not in again.stderr
    assert "gcloud scheduler jobs update http updated" in again.stderr
    assert serve.rest("GET", f"/v1/{WORKFLOWS}/updated")["revisionId"] == revision
    got = gcloud_json(serve, "describe", "updated")
    assert got["schedule"] == "*/15 8-18 * * MON-FRI"
    assert got["timeZone"] == "America/New_York"
    body = json.loads(base64.b64decode(got["httpTarget"]["body"]))
    assert json.loads(body["argument"]) == {"env": {"WHO": "weekday"}}
    # no --service-account the second time: the workflow's own account
    assert got["httpTarget"]["oauthToken"]["serviceAccountEmail"] == \
        f"{PROJECT}-compute@developer.gserviceaccount.com"
    names = [j["name"] for j in gcloud_json(serve, "list")]
    assert names.count(f"{JOBS}/updated") == 1
    local = stamp(got["scheduleTime"]).astimezone(zoneinfo.ZoneInfo("America/New_York"))
    assert local.weekday() < 5 and 8 <= local.hour <= 18 and local.minute % 15 == 0

    # another schedule of the same workflow, then --list shows both
    other = serve.wfgen("schedule", spec, "--cron", "0 0 1 * *", "--name", "monthly")
    assert other.returncode == 0, other.stderr
    listed = serve.wfgen("schedule", spec, "--list")
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["monthly",
                                                                             "updated"]

    deleted = serve.wfgen("schedule", spec, "--delete")
    assert deleted.returncode == 0, deleted.stderr
    assert f"deleted the schedule {JOBS}/updated" in deleted.stderr
    gone = serve.gcloud("scheduler", "jobs", "describe", "updated", f"--location={LOCATION}")
    assert gone.returncode == 1 and "NOT_FOUND" in gone.stderr
    twice = serve.wfgen("schedule", spec, "--delete")
    assert twice.returncode == 2 and "not found" in twice.stderr
    assert serve.wfgen("schedule", spec, "--delete", "--name", "monthly").returncode == 0
    assert "no schedule starts" in serve.wfgen("schedule", spec, "--list").stderr


def test_cron_fires_inside_serve_in_its_time_zone(serve, tmp_path):
    spec = echo_job(tmp_path / "job.yaml", "fired")
    done = serve.wfgen("schedule", spec, "--cron", "30 2 * * *", "--time-zone", "Asia/Kolkata",
                       "--data", '{"env": {"WHO": "the-clock"}}', "--service-account", SA)
    assert done.returncode == 0, done.stderr
    job_path = f"/v1/{JOBS}/fired"
    first = serve.rest("GET", job_path)
    due = stamp(first["scheduleTime"])
    assert due.astimezone(zoneinfo.ZoneInfo("Asia/Kolkata")).strftime("%H:%M") == "02:30"
    assert (due.hour, due.minute) == (21, 0)  # 02:30 in Kolkata (UTC+5:30) is 21:00 UTC
    assert executions(serve, "fired") == []

    moved = serve.rest("POST", "/wfgen/test/clock", {"advanceTo": first["scheduleTime"]})
    assert stamp(moved["now"]) >= due
    started = serve.wait_for(lambda: executions(serve, "fired"), "the cron's execution")
    assert len(started) == 1
    ended = finished(serve, started[0]["name"])
    assert ended["state"] == "SUCCEEDED", ended
    assert "WHO=the-clock" in json.loads(ended["result"])["output_tail"]
    after = serve.wait_for(lambda: (lambda j: j if j.get("lastAttemptTime") else None)(
        serve.rest("GET", job_path)), "the job's lastAttemptTime")
    assert stamp(after["scheduleTime"]) == due + dt.timedelta(days=1)
    assert stamp(after["lastAttemptTime"]) >= due
    assert "status" not in after
    assert any("scheduler: " in line and f"{JOBS}/fired fired: started" in line
               for line in serve.lines)
    assert len(executions(serve, "fired")) == 1  # fired once, not once per loop
    serve.wfgen("schedule", spec, "--delete")


@pytest.mark.parametrize(("flags", "says"), [
    (["--cron", "0 3 * *"], "--cron '0 3 * *' has 4 field(s); a schedule has 5"),
    (["--cron", "0 3 * * * *"], "has 6 field(s)"),
    (["--cron", "75 3 * * *"], "field 1 (minute) '75' is not valid: values are 0-59"),
    (["--cron", "0 3 * 0 *"], "field 4 (month) '0' is not valid"),
    (["--cron", "0 3 * * *", "--time-zone", "Europe/Pariss"],
     "--time-zone 'Europe/Pariss' is not an IANA time zone name"),
    (["--cron", "0 3 * * *", "--data", "{not json"], "--data: invalid JSON at line 1 column 2"),
    (["--cron", "0 3 * * *", "--data", '{"epochs": 3}'], "--data: unknown key 'epochs'"),
    (["--cron", "0 3 * * *", "--data", '{"args": "--lr 1"}'], "--data: args must be a list"),
    (["--cron", "0 3 * * *", "--data", '{"items": [1]}'], "--data: unknown key 'items'"),
    (["--time-zone", "Etc/UTC"], "--cron is required"),
    (["--list", "--cron", "0 3 * * *"], "--cron apply when creating a schedule"),
    (["--cron", "0 3 * * *", "--name", "no spaces"], "--name 'no spaces'"),
])
def test_bad_input_exits_2_before_any_call(serve, tmp_path, flags, says):
    spec = echo_job(tmp_path / "job.yaml", "never-deployed")
    done = serve.wfgen("schedule", spec, *flags)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    listed = serve.rest("GET", f"/v1/{WORKFLOWS}")
    assert "never-deployed" not in json.dumps(listed)  # nothing was deployed or created
    assert "never-deployed" not in json.dumps(serve.rest("GET", f"/v1/{JOBS}"))


def test_schedules_and_triggers_survive_a_restart(tmp_path):
    """Jobs and triggers are in serve's SQLite store; a restarted serve fires
    the job from its next run on."""
    data_dir = str(tmp_path / "state")
    first = Serve(tmp_path, "--data-dir", data_dir).start()
    try:
        spec = echo_job(tmp_path / "job.yaml", "kept")
        assert first.wfgen("schedule", spec, "--cron", "0 4 * * *").returncode == 0
        topic = f"projects/{PROJECT}/topics/kept"
        assert first.wfgen("trigger", spec, "--pubsub-topic", topic).returncode == 0
    finally:
        assert first.stop() == 0
    second = Serve(tmp_path, "--data-dir", data_dir).start()
    try:
        job_now = second.rest("GET", f"/v1/{JOBS}/kept")
        assert job_now["schedule"] == "0 4 * * *" and job_now["state"] == "ENABLED"
        assert stamp(job_now["scheduleTime"]) > dt.datetime.now(dt.UTC)
        listed = second.wfgen("trigger", spec, "--list")
        assert listed.returncode == 0 and "kept-kept" in listed.stdout, listed.stderr
    finally:
        assert second.stop() == 0


def test_a_fan_out_schedule_carries_items(serve, tmp_path):
    spec = job(tmp_path / "job.yaml", "sweep-nightly", 'echo "item=$WFGEN_TASK_ITEM"',
               tasks={"items": ["a", "b"], "parallelism": 2})
    bad = serve.wfgen("schedule", spec, "--cron", "0 1 * * *", "--data", '{"items": "x"}')
    assert bad.returncode == 2 and "items" in bad.stderr, bad.stderr
    done = serve.wfgen("schedule", spec, "--cron", "0 1 * * *", "--data",
                       '{"items": ["c", "d", "e"]}', "--service-account", SA)
    assert done.returncode == 0, done.stderr
    assert serve.rest("POST", f"/v1/{JOBS}/sweep-nightly:run", {})
    [started] = serve.wait_for(lambda: executions(serve, "sweep-nightly"), "the run")
    ended = finished(serve, started["name"])
    assert ended["state"] == "SUCCEEDED", ended
    result = json.loads(ended["result"])
    assert result["succeeded"] == 3
    assert len(result["tasks"]) == 3
    logs = serve.wfgen("logs", ended["name"])
    assert logs.returncode == 0, logs.stderr
    assert sorted(re.findall(r"item=(\w+)", logs.stdout)) == ["c", "d", "e"], logs.stdout
    serve.wfgen("schedule", spec, "--delete")
