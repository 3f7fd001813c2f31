"""Pub/Sub pull subscriptions in `wfgen serve`, driven by the real gcloud
(`gcloud pubsub subscriptions create/pull/ack/update/list/delete`) and by
plain REST for the edges gcloud does not reach: redelivery after the ack
deadline, nacks, bad requests answered 4xx and never 500."""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.cloud.serve_cli import GCLOUD, PROJECT, Serve, clean_env

pytestmark = [pytest.mark.xdist_group("pubsub_subscriptions"),
              pytest.mark.skipif(GCLOUD is None, reason="needs the gcloud CLI")]
TOPIC = f"projects/{PROJECT}/topics/results"
SUBS = f"projects/{PROJECT}/subscriptions"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("pubsub-serve")).start()
    yield server
    assert server.stop() == 0, "\n".join(server.lines[-40:])


def publish(serve: Serve, topic: str, data: bytes, **attributes: str) -> str:
    body = {"messages": [{"data": base64.b64encode(data).decode(), "attributes": attributes}]}
    return serve.rest("POST", f"/v1/{topic}:publish", body)["messageIds"][0]


def call(serve: Serve, method: str, path: str, body=None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://{serve.host}{path}", method=method, data=data,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_gcloud_creates_pulls_and_acks(serve: Serve) -> None:
    made = serve.gcloud("pubsub", "topics", "create", "results")
    assert made.returncode == 0, made.stderr
    before = publish(serve, TOPIC, b"before the subscription")
    made = serve.gcloud("pubsub", "subscriptions", "create", "watch", "--topic", "results")
    assert made.returncode == 0, made.stderr
    described = serve.gcloud("pubsub", "subscriptions", "describe", "watch", "--format=json")
    assert json.loads(described.stdout) == {
        "ackDeadlineSeconds": 10, "expirationPolicy": {"ttl": "2678400s"},
        "messageRetentionDuration": "604800s", "name": f"{SUBS}/watch", "pushConfig": {},
        "state": "ACTIVE", "topic": TOPIC}

    data = {"status": "succeeded", "exit_code": 0, "text": "Grüße \"x\""}
    first = publish(serve, TOPIC, json.dumps(data).encode(), wfgen_job="train", status="ok")
    second = publish(serve, TOPIC, b"plain text")
    pulled = serve.gcloud("pubsub", "subscriptions", "pull", "watch", "--auto-ack",
                          "--limit", "10", "--format=json")
    assert pulled.returncode == 0, pulled.stderr
    messages = json.loads(pulled.stdout)
    assert [m["message"]["messageId"] for m in messages] == [first, second]  # not `before`
    assert before not in pulled.stdout
    assert json.loads(base64.b64decode(messages[0]["message"]["data"])) == data
    assert messages[0]["message"]["attributes"] == {"wfgen_job": "train", "status": "ok"}
    assert "attributes" not in messages[1]["message"]
    assert {m["ackStatus"] for m in messages} == {"SUCCESS"}
    # acknowledged: nothing is left, and a pull that may not wait says so at once
    status, empty = call(serve, "POST", f"/v1/{SUBS}/watch:pull",
                         {"maxMessages": 5, "returnImmediately": True})
    assert (status, empty) == (200, {})

    updated = serve.gcloud("pubsub", "subscriptions", "update", "watch", "--ack-deadline",
                           "30", "--update-labels", "team=ml", "--format=json")
    assert updated.returncode == 0, updated.stderr
    got = serve.rest("GET", f"/v1/{SUBS}/watch")
    assert (got["ackDeadlineSeconds"], got["labels"]) == (30, {"team": "ml"})
    listed = serve.gcloud("pubsub", "topics", "list-subscriptions", "results")
    assert listed.stdout.split() == ["---", f"{SUBS}/watch"]
    assert f"{SUBS}/watch" in serve.gcloud("pubsub", "subscriptions", "list").stdout

    deleted = serve.gcloud("pubsub", "subscriptions", "delete", "watch")
    assert deleted.returncode == 0, deleted.stderr
    assert call(serve, "GET", f"/v1/{SUBS}/watch")[0] == 404


def test_a_pull_waits_for_the_next_message(serve: Serve) -> None:
    """Without returnImmediately (gcloud's pull) the call waits for a message, up
    to the X-Server-Timeout gcloud sends (20 s), and answers when one comes."""
    topic = f"projects/{PROJECT}/topics/later"
    serve.rest("PUT", f"/v1/{topic}", {})
    serve.rest("PUT", f"/v1/{SUBS}/waiting", {"topic": topic})
    threading.Timer(0.5, publish, (serve, topic, b"late")).start()
    request = urllib.request.Request(
        f"http://{serve.host}/v1/{SUBS}/waiting:pull", method="POST",
        data=json.dumps({"maxMessages": 1, "returnImmediately": False}).encode(),
        headers={"Content-Type": "application/json", "X-Server-Timeout": "20"})
    t0 = time.monotonic()
    with urllib.request.urlopen(request, timeout=30) as response:
        [message] = json.loads(response.read())["receivedMessages"]
    waited = time.monotonic() - t0
    assert base64.b64decode(message["message"]["data"]) == b"late"
    assert 0.4 < waited < 10  # it waited, and answered when the message came, not at 20 s


def test_unacked_messages_come_back_and_nacks_at_once(serve: Serve) -> None:
    topic = f"projects/{PROJECT}/topics/redeliver"
    serve.rest("PUT", f"/v1/{topic}", {})
    serve.rest("PUT", f"/v1/{SUBS}/again", {"topic": topic})
    sent = publish(serve, topic, b"one")
    pull = {"maxMessages": 10, "returnImmediately": True}
    [first] = serve.rest("POST", f"/v1/{SUBS}/again:pull", pull)["receivedMessages"]
    assert first["message"]["messageId"] == sent
    assert serve.rest("POST", f"/v1/{SUBS}/again:pull", pull) == {}  # leased for 10 s
    # a nack (deadline 0) gives it back at once, with a new ack id
    serve.rest("POST", f"/v1/{SUBS}/again:modifyAckDeadline",
               {"ackIds": [first["ackId"]], "ackDeadlineSeconds": 0})
    [second] = serve.rest("POST", f"/v1/{SUBS}/again:pull", pull)["receivedMessages"]
    assert second["message"]["messageId"] == sent and second["ackId"] != first["ackId"]
    serve.rest("POST", f"/v1/{SUBS}/again:modifyAckDeadline",
               {"ackIds": [second["ackId"]], "ackDeadlineSeconds": 1})
    time.sleep(1.2)  # the lease ends without an ack: delivered again
    [third] = serve.rest("POST", f"/v1/{SUBS}/again:pull", pull)["receivedMessages"]
    assert third["message"]["messageId"] == sent
    serve.rest("POST", f"/v1/{SUBS}/again:acknowledge", {"ackIds": [third["ackId"]]})
    assert serve.rest("POST", f"/v1/{SUBS}/again:pull", pull) == {}


@pytest.mark.parametrize(("method", "path", "body", "status", "says"), [
    ("PUT", f"/v1/{SUBS}/no-topic", {"topic": f"projects/{PROJECT}/topics/absent"}, 404,
     "resource=absent"),
    ("PUT", f"/v1/{SUBS}/x", {"topic": TOPIC}, 400, "Invalid resource name"),
    ("PUT", f"/v1/{SUBS}/bad-topic", {"topic": "not a topic"}, 400, "topic must be"),
    ("PUT", f"/v1/{SUBS}/goog-x", {"topic": TOPIC}, 400, "Invalid resource name"),
    ("PUT", f"/v1/{SUBS}/bad-deadline", {"topic": TOPIC, "ackDeadlineSeconds": 5}, 400,
     "ack deadline"),
    ("PUT", f"/v1/{SUBS}/bad-field", {"topic": TOPIC, "colour": "red"}, 400,
     'Unknown name "colour"'),
    ("PUT", f"/v1/{SUBS}/pushy", {"topic": TOPIC, "pushConfig": {"pushEndpoint": "https://x"}},
     501, "pushConfig"),
    ("PUT", f"/v1/{SUBS}/short-retention", {"topic": TOPIC,
                                            "messageRetentionDuration": "60s"}, 400,
     "message_retention_duration"),
    ("PUT", f"/v1/{SUBS}/list-body", [1, 2], 400, "Expected an object, got [1, 2]"),
    ("POST", f"/v1/{SUBS}/missing:pull", {"maxMessages": 1}, 404, "resource=missing"),
    ("POST", f"/v1/{SUBS}/fixed:pull", {"maxMessages": 0}, 400, "max_messages"),
    ("POST", f"/v1/{SUBS}/fixed:pull", {"maxMessages": "lots"}, 400, "max_messages"),
    ("POST", f"/v1/{SUBS}/fixed:acknowledge", {"ackIds": []}, 400, "No ack ids"),
    ("POST", f"/v1/{SUBS}/fixed:acknowledge", {"ackIds": ["%%%"]}, 400, "invalid ack ID"),
    ("POST", f"/v1/{SUBS}/fixed:modifyAckDeadline", {"ackIds": ["x"],
                                                     "ackDeadlineSeconds": 601}, 400,
     "ack deadline"),
    ("POST", f"/v1/{SUBS}/fixed:seek", {}, 501, ":seek"),
    ("PATCH", f"/v1/{SUBS}/fixed", {"subscription": {"topic": TOPIC}}, 400, "update_mask"),
    ("PATCH", f"/v1/{SUBS}/fixed", {"subscription": {"topic": TOPIC}, "updateMask": "topic"},
     400, "cannot be updated"),
])
def test_bad_requests_are_refused_with_4xx(serve: Serve, method: str, path: str, body,
                                           status: int, says: str) -> None:
    if call(serve, "GET", f"/v1/{TOPIC}")[0] == 404:
        serve.rest("PUT", f"/v1/{TOPIC}", {})
    if call(serve, "GET", f"/v1/{SUBS}/fixed")[0] == 404:
        serve.rest("PUT", f"/v1/{SUBS}/fixed", {"topic": TOPIC})
    got, answer = call(serve, method, path, body)
    assert got == status, answer
    assert says in answer["error"]["message"]


def test_an_ack_id_of_another_subscription_is_refused(serve: Serve) -> None:
    topic = f"projects/{PROJECT}/topics/pair"
    serve.rest("PUT", f"/v1/{topic}", {})
    for name in ("left", "right"):
        serve.rest("PUT", f"/v1/{SUBS}/{name}", {"topic": topic})
    publish(serve, topic, b"both get it")
    pull = {"maxMessages": 1, "returnImmediately": True}
    [left] = serve.rest("POST", f"/v1/{SUBS}/left:pull", pull)["receivedMessages"]
    status, answer = call(serve, "POST", f"/v1/{SUBS}/right:acknowledge",
                          {"ackIds": [left["ackId"]]})
    assert status == 400 and "invalid ack ID" in answer["error"]["message"]
    [right] = serve.rest("POST", f"/v1/{SUBS}/right:pull", pull)["receivedMessages"]
    assert right["message"]["messageId"] == left["message"]["messageId"]


PUBLISHER = """
main:
  params: [input]
  steps:
    - publish:
        call: googleapis.pubsub.v1.projects.topics.publish
        args:
          topic: ${input.topic}
          body:
            messages:
              - data: ${base64.encode(json.encode(input.payload))}
                attributes: {origin: "workflow"}
        result: published
    - done:
        return: ${published}
"""


def test_a_workflow_publishes_through_the_connector(serve: Serve, tmp_path) -> None:
    """The connector in a workflow that serve runs reaches serve's own Pub/Sub;
    `wfgen run --local` reaches the serve of WORKFLOWS_EMULATOR_HOST, and
    without one prints what it would publish."""
    topic = f"projects/{PROJECT}/topics/from-workflows"
    serve.rest("PUT", f"/v1/{topic}", {})
    serve.rest("PUT", f"/v1/{SUBS}/from-workflows", {"topic": topic})
    flow = tmp_path / "publisher.yaml"
    flow.write_text(PUBLISHER, encoding="utf-8")
    deployed = serve.gcloud("workflows", "deploy", "publisher", f"--source={flow}")
    assert deployed.returncode == 0, deployed.stderr
    ran = serve.gcloud("workflows", "run", "publisher", "--format=json", "--data", json.dumps(
        {"topic": topic, "payload": {"by": "serve", "n": 1}}))
    execution = json.loads(ran.stdout)
    assert execution["state"] == "SUCCEEDED", execution
    [message_id] = json.loads(execution["result"])["messageIds"]

    local = serve.wfgen("run", "--local", str(flow), "--data", json.dumps(
        {"topic": topic, "payload": {"by": "run --local"}}))
    assert local.returncode == 0, local.stderr
    pull = {"maxMessages": 10, "returnImmediately": True}
    got = serve.rest("POST", f"/v1/{SUBS}/from-workflows:pull", pull)["receivedMessages"]
    assert [json.loads(base64.b64decode(m["message"]["data"])) for m in got] == [
        {"by": "serve", "n": 1}, {"by": "run --local"}]
    assert got[0]["message"]["messageId"] == message_id
    assert {m["message"]["attributes"]["origin"] for m in got} == {"workflow"}

    offline = serve.wfgen("run", "--local", str(flow), "--data", json.dumps(
        {"topic": topic, "payload": {"by": "nobody"}}), env=clean_env())
    assert offline.returncode == 0, offline.stderr
    assert (f"Pub/Sub {topic} (not published: set WORKFLOWS_EMULATOR_HOST" in offline.stderr
            and 'attributes {"origin": "workflow"} data {"by":"nobody"}' in offline.stderr)
    # nothing more arrived
    serve.rest("POST", f"/v1/{SUBS}/from-workflows:acknowledge",
               {"ackIds": [m["ackId"] for m in got]})
    assert serve.rest("POST", f"/v1/{SUBS}/from-workflows:pull", pull) == {}

    missing = serve.wfgen("run", "--local", str(flow), "--data", json.dumps(
        {"topic": f"projects/{PROJECT}/topics/no-such-topic", "payload": 1}))
    assert missing.returncode != 0
    assert "HttpError" in missing.stderr and "no-such-topic" in missing.stderr
