"""The generated workflow recognises the CloudEvent Eventarc passes for a Pub/Sub
message and reads the message's data as its execution argument, checked like
any; run on wfgen's engine up to the argument check (no VM is involved)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from ruamel.yaml import YAML

from wfgen.engine import load_workflow, prepare
from wfgen.job import schedule as rules
from wfgen.job.render import render_workflow
from wfgen.job.spec import load_spec_text

SPEC = 'container: {image: a, command: ["sh", "-c", "echo"], env: {A: "1"}}\n'


def _event(data: bytes | None, **message: Any) -> dict[str, Any]:
    if data is not None:
        message["data"] = base64.b64encode(data).decode()
    message.setdefault("messageId", "1234")
    message.setdefault("publishTime", "2026-11-30T12:00:00.000000Z")
    return rules.pubsub_cloudevent("projects/p/topics/t", message, "projects/p/subscriptions/s",
                                   message["publishTime"])


@pytest.fixture(scope="module")
def through_prepare() -> Any:
    """The workflow's main, cut after its argument check, returning the container."""
    tree = YAML(typ="safe").load(render_workflow(load_spec_text(SPEC)))
    steps = tree["main"]["steps"]
    cut = [next(iter(s)) for s in steps].index("prepare") + 1
    tree["main"]["steps"] = [*steps[:cut], {"done": {"return": "${container}"}}]
    return prepare(load_workflow(json.dumps(tree), "t.yaml"))


def _run(workflow: Any, argument: Any) -> tuple[str, Any]:
    outcome = workflow.run(argument)
    if outcome.state == "SUCCEEDED":
        return "ok", outcome.result
    value = getattr(outcome.error, "value", outcome.error)
    assert value["tags"] == ["ValueError"], value
    return "error", value["message"]


def test_the_template_names_the_pubsub_event_type():
    text = render_workflow(load_spec_text(SPEC))
    assert f'map.get(default(input, {{}}), "type") == "{rules.PUBSUB_EVENT}"' in text


def test_the_message_data_is_the_argument(through_prepare):
    data = {"args": ["--lr", "0.1"], "env": {"B": "2"}}
    kind, container = _run(through_prepare, _event(json.dumps(data).encode()))
    assert kind == "ok", container
    assert container["args"] == ["--lr", "0.1"]
    assert container["env"] == {"A": "1", "B": "2"}


def test_an_empty_object_message_runs_the_spec_as_written(through_prepare):
    kind, container = _run(through_prepare, _event(b"{}"))
    assert kind == "ok" and container["command"] == ["sh", "-c", "echo"]


@pytest.mark.parametrize(("data", "says"), [
    (b"train please", "is not JSON"),
    (b"{'args': []}", "is not JSON"),
    (b'{"args": ["x"]', "is not JSON"),
    (None, "is not JSON"),  # attributes only: no data at all
])
def test_a_message_that_is_not_json_is_a_value_error(through_prepare, data, says):
    event = _event(data, attributes={"k": "v"}, messageId="777")
    kind, message = _run(through_prepare, event)
    assert kind == "error"
    assert says in message and "Pub/Sub message 777" in message
    assert 'e.g. {"args": ["--lr", "0.1"]}' in message


@pytest.mark.parametrize(("data", "says"), [
    (b'{"epochs": 3}', "unknown key"),
    (b'{"args": "--lr 0.1"}', "args must be a list of strings"),
    (b"[1, 2]", "must be a JSON object"),
    (b'"text"', "must be a JSON object"),
])
def test_json_that_is_not_an_argument_fails_the_same_checks(through_prepare, data, says):
    kind, message = _run(through_prepare, _event(data))
    assert kind == "error" and says in message, message


def test_a_plain_argument_with_a_type_key_is_not_an_event(through_prepare):
    kind, message = _run(through_prepare, {"type": rules.PUBSUB_EVENT + ".not"})
    assert kind == "error" and "unknown key" in message and "type" in message
    kind, container = _run(through_prepare, {"args": ["plain"]})
    assert kind == "ok" and container["args"] == ["plain"]
    assert _run(through_prepare, None)[0] == "ok"


def test_a_message_can_carry_a_fan_out_jobs_items():
    """Fan-out composes: the message's `items` replace the spec's task list."""
    spec = ('container: {image: a, script: "echo"}\n'
            'tasks: {items: [{lr: 0.1}, {lr: 0.2}], parallelism: 2}\n')
    tree = YAML(typ="safe").load(render_workflow(load_spec_text(spec)))
    steps = tree["main"]["steps"]
    cut = [next(iter(s)) for s in steps].index("tasks_init") + 1
    tree["main"]["steps"] = [*steps[:cut], {"done": {"return": "${items}"}}]
    workflow = prepare(load_workflow(json.dumps(tree), "t.yaml"))
    items = [{"lr": 0.5}, "plain"]
    kind, got = _run(workflow, _event(json.dumps({"items": items}).encode()))
    assert (kind, got) == ("ok", items)
    kind, got = _run(workflow, _event(b"{}"))
    assert (kind, got) == ("ok", [{"lr": 0.1}, {"lr": 0.2}])
