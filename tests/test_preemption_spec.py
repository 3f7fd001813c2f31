"""The job spec's long-job fields: stop_grace (within what the VM's shutdown
window allows), checkpoint_dir, notify {pubsub_topic, events}; each mistake
one located message; what the workflow carries for them; and that the
execution argument cannot remove notify."""

from __future__ import annotations

import pytest

from wfgen.errors import SpecError
from wfgen.job.render import render_workflow
from wfgen.job.rules import check_argument
from wfgen.job.schema import json_schema
from wfgen.job.spec import load_spec_text

BASE = "container:\n  image: alpine\n"
TOPIC = "projects/my-project/topics/training"


def error_of(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "job.yaml")
    return info.value


def test_defaults_cost_nothing_and_give_a_25s_grace():
    spec = load_spec_text(BASE, "job.yaml")
    assert spec.seconds["stop_grace"] == 25
    assert spec.data["checkpoint_dir"] is None and spec.data["notify"] is None
    text = render_workflow(spec)
    assert "topics.publish" not in text and "wfgen-checkpoint-dir" not in text
    assert 'key: "wfgen-stop-grace"\n                          value: "25"' in text


@pytest.mark.parametrize(("extra", "line", "field", "words"), [
    ("machine: {spot: true}\nstop_grace: 26s\n", 4, "stop_grace", "at most 25s"),
    ("stop_grace: 2m\n", 3, "stop_grace", "at most 110s"),
    ("stop_grace: soon\n", 3, "stop_grace", "not a duration"),
    ("checkpoint_dir: s3://bucket/x\n", 3, "checkpoint_dir", "Cloud Storage path"),
    ("checkpoint_dir: gs://B/x\n", 3, "checkpoint_dir", "Cloud Storage path"),
    (f"checkpoint_dir: gs://bucket/{'x' * 200}\n", 3, "checkpoint_dir", "at most 200"),
    ("notify: {events: [end]}\n", 3, "notify.pubsub_topic", "required"),
    ("notify: {pubsub_topic: training}\n", 3, "notify.pubsub_topic", "is not a topic"),
    (f"notify: {{pubsub_topic: {TOPIC}, events: [end, later]}}\n", 3, "notify.events",
     "unknown event 'later'"),
    (f"notify: {{pubsub_topic: {TOPIC}, events: []}}\n", 3, "notify.events",
     "at least one"),
    (f"notify: {{pubsub_topic: {TOPIC}, events: [end, end]}}\n", 3, "notify.events",
     "each event once"),
    (f"notify: {{pubsub_topic: {TOPIC}, channel: slack}}\n", 3, "notify.channel", "unknown"),
])
def test_each_mistake_gives_one_located_message(extra, line, field, words):
    err = error_of(BASE + extra)
    assert err.location is not None
    assert (err.location.line, err.location.field) == (line, field), str(err)
    assert words in str(err)


def test_the_limits_themselves_are_fine():
    spot = load_spec_text(BASE + "machine: {spot: true}\nstop_grace: 25s\n", "job.yaml")
    standard = load_spec_text(BASE + "stop_grace: 110s\n", "job.yaml")
    assert (spot.seconds["stop_grace"], standard.seconds["stop_grace"]) == (25, 110)


def test_what_the_workflow_carries():
    spec = load_spec_text(BASE + "name: train\nstop_grace: 40s\n"
                          "checkpoint_dir: gs://my-bucket/ckpt/\n"
                          f"notify: {{pubsub_topic: {TOPIC}, events: [retry, end]}}\n",
                          "job.yaml")
    assert spec.data["checkpoint_dir"] == "gs://my-bucket/ckpt"
    text = render_workflow(spec)
    assert 'value: "40"' in text
    assert ('${"gs://my-bucket/ckpt/train/" + '
            'sys.get_env("GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID")}') in text
    # three publish steps: the end, an error that ends the execution, a retry
    assert text.count("call: googleapis.pubsub.v1.projects.topics.publish") == 3
    assert text.count(f'topic: "{TOPIC}"') == 3
    assert "timeout: 50" in text  # a STOPPING VM: the grace, then its report


def test_the_execution_argument_cannot_remove_notify():
    assert "notify" in (check_argument({"notify": None}) or "")
    assert "unknown key" in (check_argument({"notify": None}) or "")


def test_the_json_schema_documents_the_fields():
    props = json_schema()["properties"]
    assert props["stop_grace"]["default"] == "25s"
    assert props["notify"]["properties"]["events"]["default"] == ["end"]
    assert props["notify"]["required"] == ["pubsub_topic"]
    assert props["checkpoint_dir"]["pattern"].startswith("^gs://")
