"""inputs and outputs in the job model: the spec's rules (names, URIs, no
collision with env or secret_env, sync_every), the argument's inputs/outputs
(known only to jobs that have them; the CLI, the JSON Schema and the workflow's
own checks agree on the samples), the merge the workflow does, and what the
YAML carries: the data metadata and the data step only for jobs with data,
nothing for the others."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest
from ruamel.yaml import YAML

from tests.test_secret_env import _insert_items, _run_prepare
from wfgen.errors import SpecError, UsageError
from wfgen.job.arguments import parse_job_argument
from wfgen.job.render import render_workflow
from wfgen.job.rules import argument_keys, check_argument
from wfgen.job.schema import argument_schema, json_schema
from wfgen.job.spec import load_spec_text

DATA_JOB = ("container: {image: a, env: {PLAIN: p}}\n"
            "inputs:\n  DATA: gs://my-bucket/train/\n  W: gs://my-bucket/w.bin\n"
            "outputs:\n  OUT: gs://my-bucket/out/\n"
            "  CK: {uri: gs://my-bucket/ck/, sync_every: 10m}\n")


def _error(text: str) -> str:
    with pytest.raises(SpecError) as info:
        load_spec_text(f"container: {{image: a, env: {{E: x}}}}\n{text}", "job.yaml")
    return str(info.value)


@pytest.mark.parametrize(("text", "field", "message"), [
    ("inputs: {D: 'gs:///x'}", "inputs.D", "names no bucket"),
    ("inputs: {D: 'gs://ab/x'}", "inputs.D", "bucket 'ab'"),
    ("inputs: {D: 'gs://my-bucket/a/../b'}", "inputs.D", "may not hold '.' or '..' parts"),
    ("inputs: {D: 'gs://my-bucket/a*/b'}", "inputs.D", "only in the last part"),
    ("inputs: {D: 's3://my-bucket/x'}", "inputs.D", "must start with gs://"),
    ("inputs: {D: gs://my-bucket}", "inputs.D", "names only a bucket"),
    ("inputs: {1D: gs://my-bucket/x}", "inputs", "name '1D' must be letters"),
    ("inputs: {E: gs://my-bucket/x}", "inputs.E", "E is in container.env"),
    ("outputs: {O: 'gs://my-bucket/o/*.pt'}", "outputs.O", "an output cannot be a wildcard"),
    ("outputs: {O: {uri: 'gs://my-bucket/*'}}", "outputs.O", "an output cannot be a wildcard"),
    ("outputs: {O: {sync_every: 10m}}", "outputs.O.uri", "missing required key 'uri'"),
    ("outputs: {O: {uri: gs://my-bucket/o/, sync_every: 5s}}", "outputs.O.sync_every",
     "at least 10s"),
    ("outputs: {O: {uri: gs://my-bucket/o/, sync_every: often}}", "outputs.O.sync_every",
     "is not a duration"),
    ("outputs: {O: {uri: gs://my-bucket/o/, every: 10m}}", "outputs.O.every", "unknown key"),
    ("outputs: [gs://my-bucket/o/]", "outputs", "expected a map of NAME"),
    ("inputs: {D: gs://my-bucket/d/}\noutputs: {D: gs://my-bucket/d.bin}", "outputs.D",
     "both must be folders"),
    ("inputs: {D: gs://my-bucket/d/}\ntasks: {count: 2}", "inputs", "not built yet"),
])
def test_spec_rules_name_file_line_and_field(text, field, message):
    error = _error(text)
    assert message in error and f" {field}: " in error, error
    assert error.startswith("job.yaml:") and error.split(":")[1].isdigit()


def test_validate_reports_every_bad_uri_in_one_run(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("container: {image: a}\ninputs:\n  A: gs://x/y\n  B: gs://ok-bucket/..\n"
                   "outputs:\n  C: gs://ok-bucket/*\n")
    done = subprocess.run([sys.executable, "-m", "wfgen", "validate", str(job)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert any(line.startswith(f"{job}:3:") and "inputs.A:" in line for line in lines), lines
    assert any(line.startswith(f"{job}:4:") and "inputs.B:" in line for line in lines), lines
    assert any(line.startswith(f"{job}:6:") and "outputs.C:" in line for line in lines), lines
    assert "3 problem(s) found" in done.stdout


def test_a_good_spec_loads_and_the_schema_knows_the_fields():
    spec = load_spec_text(DATA_JOB, "job.yaml")
    assert spec.data["inputs"] == {"DATA": "gs://my-bucket/train/", "W": "gs://my-bucket/w.bin"}
    assert spec.data["outputs"] == {
        "OUT": {"uri": "gs://my-bucket/out/", "sync_every": None},
        "CK": {"uri": "gs://my-bucket/ck/", "sync_every": "10m"}}
    assert spec.seconds["sync:CK"] == 600
    schema = json_schema()
    validator = jsonschema.Draft202012Validator(schema)
    good = {"container": {"image": "a"}, "inputs": {"D": "gs://b-1/x/"},
            "outputs": {"O": "gs://b-1/o", "P": {"uri": "gs://b-1/p/", "sync_every": "10m"}}}
    assert not list(validator.iter_errors(good))
    assert list(validator.iter_errors({**good, "outputs": {"O": {"sync_every": "1m"}}}))
    assert list(validator.iter_errors({**good, "inputs": {"1D": "gs://b-1/x"}}))
    assert "roles/storage.objectViewer" in schema["properties"]["inputs"]["description"]
    assert "roles/storage.objectCreator" in schema["properties"]["outputs"]["description"]


SAMPLES = [
    {"inputs": {}}, {"inputs": {"DATA": "gs://other-bucket/x/"}},
    {"inputs": {"W": "gs://other-bucket/shards/*.csv"}, "outputs": {"OUT": "gs://b-2/o/"}},
    {"outputs": {"NEW": "gs://b-2/file.bin"}},
    # refused
    {"inputs": {"DATA": "gs://other-bucket/../x"}}, {"inputs": {"DATA": "gs://b-2/a//b"}},
    {"inputs": {"DATA": "gs://b-2/a*/b"}}, {"inputs": {"DATA": "s3://b-2/x"}},
    {"inputs": {"DATA": "gs://b-2"}}, {"outputs": {"OUT": "gs://b-2/o/*.pt"}},
    {"inputs": {"1D": "gs://b-2/x"}}, {"inputs": {"D": 1}}, {"inputs": ["gs://b-2/x"]},
    {"outputs": {"OUT": {"uri": "gs://b-2/o/"}}}, {"inputs": {"D": "gs://b-2/\"x"}},
]


@pytest.mark.parametrize("argument", SAMPLES, ids=[json.dumps(s)[:60] for s in SAMPLES])
def test_cli_schema_and_workflow_agree_on_data_overrides(argument):
    keys = argument_keys(inputs=True, outputs=True)
    cli = check_argument(argument, keys)
    schema = jsonschema.Draft202012Validator(argument_schema(inputs=True, outputs=True))
    schema_errors = list(schema.iter_errors(argument))
    verdict, detail = _run_prepare(DATA_JOB, argument)
    assert (cli is None) == (verdict == "ok"), (cli, detail)
    if cli is None:
        assert not schema_errors, schema_errors[:1]
    else:
        key = "inputs" if "inputs" in argument else "outputs"
        assert key in cli and key in detail, (cli, detail)


def test_data_overrides_are_unknown_to_a_job_without_data():
    message = check_argument({"inputs": {"D": "gs://b-2/x"}})
    assert message and "(the job spec has no inputs)" in message
    verdict, detail = _run_prepare("container: {image: a}\n", {"outputs": {"D": "gs://b-2/x"}})
    assert verdict == "refused" and 'unknown key "outputs"' in detail
    with pytest.raises(UsageError, match=r"inputs\.D: .*may not hold"):
        parse_job_argument('{"inputs": {"D": "gs://b-2/../x"}}', load_spec_text(DATA_JOB))


def test_the_workflow_merges_the_argument_over_the_spec():
    verdict, container = _run_prepare(DATA_JOB, {"inputs": {"W": "gs://b-2/w2.bin"},
                                                 "outputs": {"OUT": "gs://b-2/o2/"}})
    assert verdict == "ok"
    assert container["inputs"] == {"DATA": "gs://my-bucket/train/", "W": "gs://b-2/w2.bin"}
    assert container["outputs"] == {"OUT": "gs://b-2/o2/", "CK": "gs://my-bucket/ck/"}
    assert container["sync"] == {"CK": "600"}


def test_only_jobs_with_data_carry_the_data_lines():
    plain = render_workflow(load_spec_text("container: {image: a, env: {A: b}}\n"))
    for word in ("wfgen-inputs", "wfgen-outputs", "wfgen-data-script", "data_script_b64",
                 "data: ${"):
        assert word not in plain
    text = render_workflow(load_spec_text(DATA_JOB, "job.yaml"))
    items = _insert_items(text)
    assert items["wfgen-inputs"] == "${json.encode_to_string(container.inputs)}"
    assert items["wfgen-outputs"] == "${json.encode_to_string(container.outputs)}"
    assert items["wfgen-sync"] == "${json.encode_to_string(container.sync)}"
    assert items["wfgen-data-script"] == "${text.decode(base64.decode(data_script_b64))}"
    result = YAML(typ="safe").load(text)["job_result"]["steps"][0]["result"]["return"]
    assert result["data"] == '${default(map.get(report, "data"), {})}'
