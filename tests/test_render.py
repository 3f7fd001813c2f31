"""The generated workflow: valid by the independent schema, deterministic, the
VM body a real compute_v1.Instance, and user strings carried exactly as data."""

from __future__ import annotations

import base64
import json
import re

import jsonschema
import pytest
from ruamel.yaml import YAML

from tests.conftest import EXAMPLES, TEST_DATA
from wfgen.job.render import render_workflow, vm_prefix
from wfgen.job.spec import load_spec, load_spec_text
from wfgen.job.starter import starter_job

SCHEMA = json.loads((TEST_DATA / "workflows.schema.json").read_text())
_yaml = YAML(typ="safe", pure=True)


def steps_by_name(steps, found=None):
    """Every step of a workflow tree by name (nested steps, try bodies, switch branches)."""
    found = {} if found is None else found
    for item in steps:
        (name, body), = item.items()
        found[name] = body
        for block in (body.get("steps"), (body.get("try") or {}).get("steps") if isinstance(
                body.get("try"), dict) else None, (body.get("except") or {}).get("steps"),
                (body.get("for") or {}).get("steps")):
            if block:
                steps_by_name(block, found)
        if isinstance(body.get("try"), dict) and "call" in body["try"]:
            found[name + ".try"] = body["try"]
        for cond in body.get("switch") or []:
            if cond.get("steps"):
                steps_by_name(cond["steps"], found)
    return found


def insert_step(workflow: dict) -> dict:
    """The VM insert of a job's workflow (a multi-node job's: inside its parallel loop)."""
    if "run_gang" in workflow:
        create = steps_by_name(workflow["run_gang"]["steps"])["create_vms"]
        return create["parallel"]["for"]["steps"][0]["create_vm"]
    return steps_by_name(workflow["run_job"]["steps"])["create_vm"]


def generated(text: str, name: str = "job.yaml") -> dict:
    return _yaml.load(render_workflow(load_spec_text(text, name)))


def container_of(workflow: dict) -> dict:
    init = steps_by_name(workflow["main"]["steps"])["prepare"]["switch"][-1]["assign"]
    b64 = next(a["spec_b64"] for a in init if "spec_b64" in a)
    return json.loads(base64.b64decode(b64))


SPEC_TEXTS = [p.read_text() for p in EXAMPLES] + [starter_job("my-job")]


@pytest.mark.parametrize("text", SPEC_TEXTS, ids=[p.name for p in EXAMPLES] + ["init"])
def test_generated_workflow_matches_the_independent_schema(text):
    errors = list(jsonschema.Draft7Validator(SCHEMA).iter_errors(generated(text)))
    assert not errors, [e.message for e in errors[:3]]


def test_output_is_deterministic():
    spec = load_spec(EXAMPLES[0])
    assert render_workflow(spec) == render_workflow(load_spec(EXAMPLES[0]))


def _sample(value, key=""):
    if isinstance(value, dict):
        return {k: _sample(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_sample(v, key) for v in value]
    if isinstance(value, str) and value.startswith("${"):
        return 3600 if key == "seconds" else "sample-value"
    return value


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_vm_body_is_a_compute_instance(path):
    from google.cloud import compute_v1

    wf = _yaml.load(render_workflow(load_spec(path)))
    insert = insert_step(wf)
    assert insert["call"] == "googleapis.compute.v1.instances.insert"
    raw = dict(insert["args"]["body"])
    state = next((p["failover"] for p in wf.get("run_job", {}).get("params", [])
                  if isinstance(p, dict) and "failover" in p), None)
    if state:  # a job that fails over: its first try, as the workflow fills it in
        raw.update(machineType=state["at"]["machineType"],
                   guestAccelerators=state["at"]["guestAccelerators"],
                   scheduling={**state["choice"]["scheduling"],
                               "maxRunDuration": {"seconds": 3600}},
                   reservationAffinity=state["choice"]["reservationAffinity"],
                   params=state["choice"]["params"])
    body = _sample(raw)
    instance = compute_v1.Instance.from_json(json.dumps(body), ignore_unknown_fields=False)
    assert instance.scheduling.instance_termination_action == "DELETE"
    assert instance.scheduling.max_run_duration.seconds == 3600
    keys = {item.key for item in instance.metadata.items}
    assert {"startup-script", "shutdown-script", "wfgen-callback-url", "wfgen-args",
            "wfgen-env", "wfgen-image", "wfgen-command"} <= keys
    assert instance.labels["wfgen-job"]


def test_gpu_spot_and_network_settings_reach_the_body():
    wf = _yaml.load(render_workflow(load_spec(next(p for p in EXAMPLES if "gpu" in p.name))))
    body = steps_by_name(wf["run_job"]["steps"])["create_vm"]["args"]["body"]
    assert body["scheduling"]["provisioningModel"] == "SPOT"
    assert body["guestAccelerators"] == [{
        "acceleratorType": "zones/us-central1-a/acceleratorTypes/nvidia-tesla-t4",
        "acceleratorCount": 1}]
    assert body["tags"] == {"items": ["ml-training"]}
    assert body["serviceAccounts"][0]["email"] == "runner@my-project.iam.gserviceaccount.com"
    assert body["labels"]["team"] == "ml"


ADVERSARIAL = [
    'quote " and \' and `back`', "colon: space", "# not a comment", "{}", "[1, 2]",
    "line1\nline2\n\n", "${HOME}", "${1+1}", "$(rm -rf /)", "--leading-dash",
    "unicode é 中文 😀 \u2028 \x85", "x" * 10240, "   ", "",
    "\\backslash\\n", "tab\there", "'${\"a: \" + b}'",
]


def test_adversarial_strings_come_out_exactly():
    spec_text = json.dumps({
        "name": "adv",
        "container": {"image": "alpine", "args": ADVERSARIAL,
                      "env": {f"V{i}": v for i, v in enumerate(ADVERSARIAL)}},
    })
    wf = generated(spec_text)
    container = container_of(wf)
    assert container["args"] == ADVERSARIAL
    assert container["env"] == {f"V{i}": v for i, v in enumerate(ADVERSARIAL)}
    script = "echo \"${HOME}\" '$(x)'\n# comment: yes\n${1+1}\n\n"
    wf = generated(json.dumps({"container": {"image": "alpine", "script": script}}))
    assert container_of(wf)["script"] == script


def test_no_user_string_reaches_the_yaml_outside_comments():
    marker = "MARKER-${HOME}-x"
    wf_text = render_workflow(load_spec_text(json.dumps(
        {"container": {"image": "alpine", "args": [marker], "env": {"A": marker}}})))
    code_lines = [line for line in wf_text.splitlines() if not line.lstrip().startswith("#")]
    assert not any(marker in line for line in code_lines)


def test_every_expression_is_short_and_names_are_valid():
    for path in EXAMPLES:
        text = render_workflow(load_spec(path))
        for expr in re.findall(r"\$\{.*\}", text):
            assert len(expr) <= 403, expr
    assert vm_prefix("My_Job.v2") == "my-job-v2"
    assert vm_prefix("123") == "wf-123"
    assert len(vm_prefix("a" * 100)) <= 46


def test_the_workflow_is_made_of_subworkflows():
    """main checks the argument and calls run_job, which a fan-out calls per task;
    the VM delete and the result map are written once (delete_vm, job_result)."""
    wf = generated("container: {image: a}\n")
    assert set(wf) == {"main", "run_job", "delete_vm", "job_result", "retry_unless_gone"}
    assert [next(iter(s)) for s in wf["main"]["steps"]] == [
        "prepare", "run", "finish"]
    assert wf["run_job"]["params"][:4] == ["container", "vm_base", "start_time", "deadline"]
    assert [next(iter(s)) for s in wf["run_job"]["steps"]] == [
        "run_attempt", "delete", "decide", "note_retry", "wait_for_capacity", "next_attempt"]
    steps = steps_by_name(wf["run_job"]["steps"])
    assert steps["delete"]["call"] == steps["delete_vm_after_error"]["try"]["call"] == "delete_vm"
    text = render_workflow(load_spec_text("container: {image: a}\n"))
    assert text.count("googleapis.compute.v1.instances.delete") == 1
    assert text.count("duration_s:") == 1  # the result map, written once (job_result)
