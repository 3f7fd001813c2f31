"""`wfgen trigger` against one real `wfgen serve` for the module: the Eventarc
client creates the trigger, a Pub/Sub publish over REST starts one execution
per message, whose workflow reads the message's data as its argument; a
message that is not JSON fails its execution before any VM exists."""

from __future__ import annotations

import base64
import json

import pytest

from tests.cloud.serve_cli import GCLOUD, PROJECT, Serve, job

pytestmark = pytest.mark.xdist_group("trigger_serve")
LOCATION = "us-central1"
WORKFLOWS = f"projects/{PROJECT}/locations/{LOCATION}/workflows"
TRIGGERS = f"projects/{PROJECT}/locations/{LOCATION}/triggers"
TOPIC = f"projects/{PROJECT}/topics/jobs"
ECHO = 'echo "args:$*"; echo "WHO=${WHO:-nobody}"'
SA = f"trigger@{PROJECT}.iam.gserviceaccount.com"
PUBSUB_EVENT = "google.cloud.pubsub.topic.v1.messagePublished"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("trigger-serve")).start()
    yield server
    assert server.stop() == 0, "\n".join(server.lines[-40:])


def echo_job(path, name: str) -> str:
    return job(path, name, ECHO, container={"image": "alpine:3.20",
                                            "command": ["sh", "-c", ECHO, "sh"], "args": []})


def publish(serve: Serve, topic: str, *datas: bytes) -> list[str]:
    body = {"messages": [{"data": base64.b64encode(d).decode(),
                          "attributes": {"origin": "test"}} for d in datas]}
    return serve.rest("POST", f"/v1/{topic}:publish", body)["messageIds"]


def executions(serve: Serve, workflow: str) -> list[dict]:
    return serve.rest("GET", f"/v1/{WORKFLOWS}/{workflow}/executions?view=FULL")[
        "executions"]


def all_ended(serve: Serve, workflow: str, count: int) -> list[dict]:
    def check() -> list[dict] | None:
        found = executions(serve, workflow)
        return found if len(found) == count and all(
            e["state"] != "ACTIVE" for e in found) else None

    return serve.wait_for(check, f"{count} ended executions of {workflow}")


def test_each_message_starts_one_execution_with_its_args(serve, tmp_path):
    spec = echo_job(tmp_path / "job.yaml", "on-message")
    done = serve.wfgen("trigger", spec, "--pubsub-topic", TOPIC, "--service-account", SA)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{TRIGGERS}/on-message-jobs"
    assert "created the trigger" in done.stderr
    assert ("gcloud eventarc triggers create on-message-jobs --location=us-central1 "
            f"--project={PROJECT} --destination-workflow=on-message "
            "--destination-workflow-location=us-central1 "
            f"--event-filters=type={PUBSUB_EVENT} --transport-topic={TOPIC} "
            f"--service-account={SA}") in done.stderr
    trigger = serve.rest("GET", f"/v1/{TRIGGERS}/on-message-jobs")
    assert trigger["destination"] == {"workflow": f"{WORKFLOWS}/on-message"}
    assert trigger["eventFilters"] == [{"attribute": "type", "value": PUBSUB_EVENT}]
    assert trigger["transport"]["pubsub"]["topic"] == TOPIC
    assert trigger["serviceAccount"] == SA
    listed = serve.wfgen("trigger", spec, "--list")
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines()[1].split() == ["on-message-jobs", TOPIC, SA]

    ids = publish(serve, TOPIC, json.dumps({"args": ["one", "1 1"], "env": {"WHO": "first"}})
                  .encode(), b'{"env": {"WHO": "second"}}')
    assert len(ids) == 2 and len(set(ids)) == 2
    ended = all_ended(serve, "on-message", 2)
    tails = {json.loads(e["argument"])["id"]: json.loads(e["result"])["output_tail"]
             for e in ended if e["state"] == "SUCCEEDED"}
    assert len(tails) == 2, ended
    assert "args:one 1 1\n" in tails[ids[0]] and "WHO=first" in tails[ids[0]]
    assert "args:\n" in tails[ids[1]] and "WHO=second" in tails[ids[1]]
    events = [json.loads(e["argument"]) for e in ended]
    assert {e["type"] for e in events} == {PUBSUB_EVENT}
    assert {e["id"] for e in events} == set(ids)
    assert {e["source"] for e in events} == {f"//pubsub.googleapis.com/{TOPIC}"}
    assert all(e["data"]["message"]["attributes"] == {"origin": "test"} for e in events)


def test_a_message_that_is_not_json_fails_before_any_vm(serve, tmp_path):
    spec = echo_job(tmp_path / "job.yaml", "strict")
    topic = f"projects/{PROJECT}/topics/strict-in"
    assert serve.wfgen("trigger", spec, "--pubsub-topic", topic).returncode == 0
    publish(serve, topic, b"train please")
    [ended] = all_ended(serve, "strict", 1)
    assert ended["state"] == "FAILED", ended
    payload = json.loads(ended["error"]["payload"])
    assert "ValueError" in payload["tags"]
    assert "Pub/Sub message" in payload["message"] and "not JSON" in payload["message"]
    status = serve.wfgen("status", ended["name"])
    assert "not JSON" in status.stdout + status.stderr
    # no VM was ever made for it: none exists, and none ever wrote a console line
    execution_id = ended["name"].rsplit("/", 1)[-1]
    assert serve.vms(execution_id) == []
    logs = serve.wfgen("logs", ended["name"])
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.strip() == ""

    # JSON, but not an execution argument: the same checks as --data, in the workflow
    publish(serve, topic, b'{"epochs": 3}')
    ended = all_ended(serve, "strict", 2)
    bad = next(e for e in ended if e["name"] != f"{WORKFLOWS}/strict/executions/{execution_id}")
    assert bad["state"] == "FAILED"
    assert "unknown key" in json.loads(bad["error"]["payload"])["message"]
    assert serve.vms(bad["name"].rsplit("/", 1)[-1]) == []


def test_update_delete_and_bad_topic(serve, tmp_path):
    spec = echo_job(tmp_path / "job.yaml", "short-lived")
    topic = f"projects/{PROJECT}/topics/short"
    assert serve.wfgen("trigger", spec, "--pubsub-topic", topic).returncode == 0
    again = serve.wfgen("trigger", spec, "--pubsub-topic", topic, "--service-account", SA)
    assert again.returncode == 0, again.stderr
    assert "updated the trigger" in again.stderr
    assert serve.rest("GET", f"/v1/{TRIGGERS}/short-lived-short")["serviceAccount"] == SA
    other = serve.wfgen("trigger", spec, "--pubsub-topic", f"projects/{PROJECT}/topics/other",
                        "--name", "short-lived-short")
    assert other.returncode == 2 and "cannot change" in other.stderr

    gone = serve.wfgen("trigger", spec, "--pubsub-topic", topic, "--delete")
    assert gone.returncode == 0, gone.stderr
    assert f"deleted the trigger {TRIGGERS}/short-lived-short" in gone.stderr
    publish(serve, topic, b'{"args": []}')
    assert executions(serve, "short-lived") == []
    assert "no trigger starts" in serve.wfgen("trigger", spec, "--list").stderr

    for topic_arg, says in (("jobs", "must be projects/PROJECT/topics/TOPIC"),
                            (f"projects/{PROJECT}/topics/goog-x", "not with goog"),
                            (f"projects/{PROJECT}/subscriptions/s", "projects/PROJECT/topics")):
        bad = serve.wfgen("trigger", spec, "--pubsub-topic", topic_arg)
        assert bad.returncode == 2, bad.stderr
        assert says in bad.stderr
    missing = serve.wfgen("trigger", spec)
    assert missing.returncode == 2 and "--pubsub-topic" in missing.stderr


def test_publish_errors(serve):
    with pytest.raises(Exception) as caught:
        serve.rest("POST", f"/v1/projects/{PROJECT}/topics/nowhere:publish",
                   {"messages": [{"data": "e30="}]})
    assert "404" in str(caught.value)
    serve.rest("PUT", f"/v1/projects/{PROJECT}/topics/quiet")
    with pytest.raises(Exception) as caught:
        serve.rest("POST", f"/v1/projects/{PROJECT}/topics/quiet:publish", {"messages": [{}]})
    assert "400" in str(caught.value)
    # a topic nobody listens to takes messages and starts nothing
    assert len(publish(serve, f"projects/{PROJECT}/topics/quiet", b"{}")) == 1


@pytest.mark.skipif(not GCLOUD, reason="gcloud is not installed")
def test_gcloud_sees_the_trigger_and_publishes(serve, tmp_path):
    spec = echo_job(tmp_path / "job.yaml", "by-gcloud")
    topic = f"projects/{PROJECT}/topics/from-gcloud"
    assert serve.wfgen("trigger", spec, "--pubsub-topic", topic).returncode == 0
    listed = serve.gcloud("eventarc", "triggers", "list", f"--location={LOCATION}",
                          "--format=json")
    assert listed.returncode == 0, listed.stderr
    mine = [t for t in json.loads(listed.stdout) if t["name"].endswith("/by-gcloud-from-gcloud")]
    assert mine and mine[0]["destination"]["workflow"] == f"{WORKFLOWS}/by-gcloud"
    sent = serve.gcloud("pubsub", "topics", "publish", "from-gcloud",
                        '--message={"env": {"WHO": "gcloud"}}')
    assert sent.returncode == 0, sent.stderr
    [ended] = all_ended(serve, "by-gcloud", 1)
    assert ended["state"] == "SUCCEEDED", ended
    assert "WHO=gcloud" in json.loads(ended["result"])["output_tail"]
