"""A job's `notify` against one real `wfgen serve`: the workflow publishes
through the Pub/Sub connector, and `gcloud pubsub subscriptions pull` reads one
end message per execution whose data is the result map (and, asked for, one
per retried attempt); a refused publish changes neither the outcome nor the
VM's deletion."""

from __future__ import annotations

import base64
import json

import pytest

from tests.cloud.serve_cli import GCLOUD, PROJECT, Serve, job

pytestmark = [pytest.mark.xdist_group("notify_serve"),
              pytest.mark.skipif(GCLOUD is None, reason="needs the gcloud CLI")]
TOPIC = f"projects/{PROJECT}/topics/job-events"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("notify-serve")).start()
    assert server.gcloud("pubsub", "topics", "create", "job-events").returncode == 0
    yield server
    assert server.stop() == 0, "\n".join(server.lines[-40:])


def subscribe(serve: Serve, name: str) -> None:
    made = serve.gcloud("pubsub", "subscriptions", "create", name, "--topic", "job-events")
    assert made.returncode == 0, made.stderr


def pull(serve: Serve, name: str) -> list[dict]:
    """Every message waiting, acknowledged, as {"attributes", "data"} (data decoded)."""
    pulled = serve.gcloud("pubsub", "subscriptions", "pull", name, "--auto-ack",
                          "--limit", "20", "--format=json")
    assert pulled.returncode == 0, pulled.stderr
    return [{"attributes": m["message"].get("attributes", {}),
             "data": json.loads(decode(m["message"]["data"]))}
            for m in json.loads(pulled.stdout or "[]")]


def decode(data: str) -> bytes:
    """gcloud prints bytes fields (apitools) as URL-safe base64 without padding."""
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def test_one_end_message_per_execution_with_the_result_map(serve, tmp_path):
    subscribe(serve, "ends")
    spec = job(tmp_path / "job.yaml", "noisy", 'echo "run $N"; exit "$N"',
               notify={"pubsub_topic": TOPIC})
    results = {}
    for n in ("0", "3"):
        done = serve.wfgen("run", spec, "--data", json.dumps({"env": {"N": n}}))
        assert done.returncode == int(n), done.stderr
        result = json.loads(done.stdout)
        results[result["instance"]] = result
    messages = pull(serve, "ends")
    assert len(messages) == 2, messages
    for message in messages:
        data, attributes = message["data"], message["attributes"]
        assert data == results[data["instance"]]  # the result map, as the execution's
        execution_id = attributes["wfgen_execution"]
        assert data["instance"].startswith("noisy-" + execution_id.replace("-", "")[:12])
        assert attributes == {"wfgen_job": "noisy", "wfgen_execution": execution_id,
                              "wfgen_event": "end", "status": data["status"]}
    assert sorted(m["data"]["status"] for m in messages) == ["failed", "succeeded"]
    assert pull(serve, "ends") == []  # exactly one each


def test_retry_messages_when_asked_from_the_local_runtime(serve, tmp_path):
    """`wfgen run --local` with WORKFLOWS_EMULATOR_HOST publishes to that serve:
    a preempted attempt's retry message, then the end."""
    subscribe(serve, "retries")
    spec = job(tmp_path / "job.yaml", "spotty",
               'echo "attempt $WFGEN_ATTEMPT"; [ "$WFGEN_ATTEMPT" != 1 ] || sleep 30',
               retries=1, heartbeat="2s", stop_grace="5s",
               notify={"pubsub_topic": TOPIC, "events": ["retry", "end"]})
    done = serve.wfgen("run", "--local", "--on-host", spec, "--fault", "preempt@2s")
    assert done.returncode == 0, done.stderr
    retry, end = pull(serve, "retries")
    assert retry["attributes"]["wfgen_event"] == "retry"
    assert retry["attributes"]["wfgen_attempt"] == "1"
    assert retry["attributes"]["status"] == retry["data"]["status"] == "preempted"
    assert retry["data"]["attempts"] == 1
    assert end["attributes"]["wfgen_event"] == "end"
    assert (end["data"]["status"], end["data"]["attempts"]) == ("succeeded", 2)
    assert end["data"] == json.loads(done.stdout)
    assert end["data"]["output_tail"] == "attempt 2\n"
    assert retry["attributes"]["wfgen_execution"] == end["attributes"]["wfgen_execution"]


def test_a_refused_publish_changes_nothing(serve, tmp_path):
    for script, code in (("echo fine", 0), ("exit 4", 4)):
        spec = job(tmp_path / "job.yaml", "unheard", script, notify={
            "pubsub_topic": f"projects/{PROJECT}/topics/no-such-topic"})
        done = serve.wfgen("run", spec)
        assert done.returncode == code, done.stderr
        result = json.loads(done.stdout)
        assert result["status"] == ("succeeded" if code == 0 else "failed")
        assert serve.vms() == []  # the VM was deleted all the same
        # the local runtime shows the workflow's log line about it
        local = serve.wfgen("run", "--local", "--on-host", spec)
        assert local.returncode == code, local.stderr
        assert json.loads(local.stdout)["status"] == result["status"]
        assert "could not publish the end message" in local.stderr
        assert "no-such-topic" in local.stderr


def test_a_fan_out_publishes_its_summary(serve, tmp_path):
    subscribe(serve, "sweeps")
    spec = job(tmp_path / "job.yaml", "sweep", 'echo "$WFGEN_TASK_ITEM"',
               tasks={"items": ["a", "b"]}, notify={"pubsub_topic": TOPIC})
    done = serve.wfgen("run", spec)
    assert done.returncode == 0, done.stderr
    [message] = pull(serve, "sweeps")
    assert message["data"] == json.loads(done.stdout)
    assert message["data"]["succeeded"] == 2
    assert message["attributes"]["status"] == "succeeded"
