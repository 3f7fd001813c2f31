"""The execution argument: one rule table (wfgen.job.arguments) drives the CLI
check, the JSON Schema and the checks the generated workflow itself makes; the
three must agree, and the workflow resolves the container the documented way."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import jsonschema
import pytest
from ruamel.yaml import YAML

from wfgen.engine import load_workflow, prepare
from wfgen.errors import UsageError
from wfgen.job.arguments import parse_job_argument
from wfgen.job.render import render_workflow
from wfgen.job.rules import check_argument
from wfgen.job.schema import argument_schema as json_schema
from wfgen.job.spec import load_spec_text

SAMPLES = [
    {}, {"args": ["--lr", "0.1"]}, {"image": "alpine:3.20"}, {"script": "echo \"$@\""},
    {"script": "x", "args": ["a b", ""]}, {"command": ["python", "-c", "1"]},
    {"env": {"A": "1", "_B2": "é"}}, {"image": "localhost:5000/x/y:1", "env": {}},
    {"args": ["\\u0000 is text, not NUL", "quote \" back\\slash"]},
    # refused
    [1], "text", {"arg": ["x"]}, {"args": "--lr 0.1"}, {"args": [1]}, {"args": ["a\x00b"]},
    {"env": {"A=B": "x"}}, {"env": {"1A": "x"}}, {"env": {"A": 1}}, {"env": ["A"]},
    {"command": []}, {"command": ["x"], "script": "y"}, {"image": "-rm"}, {"image": 3},
    {"script": ["echo"]}, {"script": "a\x00"}, {"image": "a b"},
    {"image": "a\x00"}, {"command": ["a", 2]}, {"args": ["a\x00", 1]}, {"args": None},
    {"env": {"A\x00": "x"}}, {"env": {"A": "x\x00"}}, {"env": {"A": None}}, {"env": "A=1"},
    {"image": "a b", "args": [1]}, {"args": [], "env": {"1A": "x"}},
]


def _workflow_check(argument: object) -> str | None:
    """Run the generated workflow's own first step on `argument`: its ValueError
    message, or None when the argument passed (the next step is not run)."""
    tree = YAML(typ="safe").load(render_workflow(load_spec_text("container: {image: a}\n")))
    tree["main"]["steps"] = [*_through_prepare(tree), {"done": {"return": "${container}"}}]
    text = json.dumps(tree)
    outcome = prepare(load_workflow(text, "t.yaml")).run(argument)
    if outcome.state == "SUCCEEDED":
        return None
    value = getattr(outcome.error, "value", outcome.error)
    assert value["tags"] == ["ValueError"], value
    return value["message"]


@pytest.mark.parametrize("argument", SAMPLES, ids=[json.dumps(s)[:40] for s in SAMPLES])
def test_cli_schema_and_workflow_agree(argument):
    cli = check_argument(argument)
    schema_errors = list(jsonschema.Draft202012Validator(json_schema()).iter_errors(argument))
    in_workflow = _workflow_check(argument)
    assert (cli is None) == (not schema_errors) == (in_workflow is None), (
        cli, schema_errors[:1], in_workflow)
    if cli is not None:  # both name the same key first (the CLI also the item: env.A)
        key = re.split(r"[\[.]", cli.split()[0].strip(":'\""))[0]
        assert key in in_workflow or cli[:20] == in_workflow[:20], (cli, in_workflow)


def test_the_workflow_names_the_unknown_key_and_the_cli_suggests():
    assert '"arg"' in _workflow_check({"arg": ["x"]})
    with pytest.raises(UsageError, match="unknown key 'arg'"):
        parse_job_argument('{"arg": ["x"]}')


def _resolved(spec: str, argument: object) -> dict:
    tree = YAML(typ="safe").load(render_workflow(load_spec_text(spec, "job.yaml")))
    tree["main"]["steps"] = [*_through_prepare(tree), {"done": {"return": "${container}"}}]
    outcome = prepare(load_workflow(json.dumps(tree), "t.yaml")).run(argument)
    assert outcome.state == "SUCCEEDED", outcome.error
    return outcome.result


SCRIPT_JOB = 'container: {image: a, script: "echo $1", args: ["x"], env: {A: "1"}}\n'
EXEC_JOB = 'container: {image: a, command: [python], args: ["--epochs", "9"]}\n'


def test_the_workflow_resolves_overrides_as_documented():
    # a script job's args are its positional parameters: replacing args keeps the script
    got = _resolved(SCRIPT_JOB, {"args": ["--lr", "0.1"], "env": {"B": "2"}})
    assert (got["script"], got["args"], got["env"]) == ("echo $1", ["--lr", "0.1"],
                                                        {"A": "1", "B": "2"})
    # command drops the spec's script; script drops the spec's command
    assert _resolved(SCRIPT_JOB, {"command": ["true"]})["script"] is None
    got = _resolved(EXEC_JOB, {"script": "echo hi"})
    assert (got["command"], got["script"], got["args"]) == (None, "echo hi", ["--epochs", "9"])
    assert _resolved(EXEC_JOB, None) == {"image": "a", "command": ["python"],
                                         "args": ["--epochs", "9"], "script": None, "env": {}}


def test_a_script_job_runs_as_sh_c_script_name_args():
    tree = YAML(typ="safe").load(render_workflow(load_spec_text(SCRIPT_JOB, "job.yaml")))
    insert = tree["run_job"]["steps"][0]["run_attempt"]["try"]["steps"][1]["create_vm"]
    items = {i["key"]: i["value"] for i in insert["args"]["body"]["metadata"]["items"]}
    assert '["sh", "-c", container.script, "job"]' in items["wfgen-command"]
    assert items["wfgen-args"] == "${json.encode_to_string(container.args)}"


def _through_prepare(tree: dict) -> list:
    """main's steps up to its argument check (`prepare`), the CloudEvent reading included."""
    steps = tree["main"]["steps"]
    return steps[:[next(iter(s)) for s in steps].index("prepare") + 1]


# Both sides end to end: `wfgen run --local JOB --data` refuses a bad argument before
# anything runs (exit 2); the generated workflow, run with the same argument as
# gcloud would start it, fails its first step with the same message.
REFUSED = [{"args": ["a", 1]}, {"env": {"1A": "x"}}, {"command": []}, {"image": "a\x00"},
           {"x": 1}]


@pytest.mark.parametrize("argument", REFUSED, ids=[json.dumps(a) for a in REFUSED])
def test_run_local_refuses_like_the_workflow(tmp_path, argument):
    job = tmp_path / "job.yaml"
    job.write_text("container: {image: alpine, args: [x]}\n", encoding="utf-8")
    workflow = tmp_path / "workflow.yaml"
    data = json.dumps(argument)
    wfgen = [sys.executable, "-m", "wfgen"]
    subprocess.run([*wfgen, "generate", str(job), "-o", str(workflow)], check=True,
                   capture_output=True, timeout=60)
    cli = subprocess.run([*wfgen, "run", "--local", str(job), "--data", data],
                         capture_output=True, text=True, timeout=60)
    inside = subprocess.run([*wfgen, "run", "--local", str(workflow), "--data", data],
                            capture_output=True, text=True, timeout=60)
    assert cli.returncode == 2, cli.stderr
    assert inside.returncode != 0 and "at step 'prepare'" in inside.stderr, inside.stderr
    message = check_argument(argument)
    assert f"--data: {message}" in cli.stderr
    first = re.split(r"[\[.]", message.split()[0].strip(":'\""))[0]
    assert '"tags": ["ValueError"]' in inside.stderr and first in inside.stderr, inside.stderr
