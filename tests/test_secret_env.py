"""container.secret_env in the job model: the spec's rules (names, references,
not also in env), the argument's secret_env (known only to jobs that use
secrets; the CLI, the JSON Schema and the workflow's own checks agree),
the merge the workflow does, and what the YAML carries: references in the
gated metadata item, nothing at all for jobs without secrets."""

from __future__ import annotations

import json

import jsonschema
import pytest
from ruamel.yaml import YAML

from tests.test_arguments import _through_prepare
from wfgen.engine import load_workflow, prepare
from wfgen.errors import SpecError, UsageError
from wfgen.job.arguments import parse_job_argument
from wfgen.job.render import render_workflow
from wfgen.job.rules import argument_keys, check_argument
from wfgen.job.schema import argument_schema, json_schema
from wfgen.job.spec import load_spec_text

SECRET_JOB = ("container:\n  image: a\n  env: {PLAIN: p}\n  secret_env:\n"
              "    WANDB_API_KEY: wandb-key\n"
              "    HF_TOKEN: projects/my-project/secrets/hf/versions/3\n")


def _run_prepare(spec: str, argument: object) -> tuple[str, object]:
    tree = YAML(typ="safe").load(render_workflow(load_spec_text(spec, "job.yaml")))
    tree["main"]["steps"] = [*_through_prepare(tree), {"done": {"return": "${container}"}}]
    outcome = prepare(load_workflow(json.dumps(tree), "t.yaml")).run(argument)
    if outcome.state == "SUCCEEDED":
        return "ok", outcome.result
    value = getattr(outcome.error, "value", outcome.error)
    assert value["tags"] == ["ValueError"], value
    return "refused", value["message"]


@pytest.mark.parametrize(("text", "message"), [
    ("secret_env: {1A: x}", "environment variable name '1A' must be letters"),
    ("secret_env: {K: 'sk-live-abc=='}", "value 'sk-live-abc==' must be a secret reference"),
    ("secret_env: {K: projects/p/secrets/s}", "must be a secret reference"),
    ("secret_env: {K: 'projects/p/secrets/s/versions/1/x'}", "must be a secret reference"),
    ("secret_env: {K: 'https://x/y'}", "must be a secret reference"),
    ("secret_env: [K]", "expected a map"),
    ("env: {K: v}\n  secret_env: {K: s}", "K is in env too: a variable comes from env or "
                                          "from secret_env, not both"),
])
def test_spec_rules_name_the_field(text, message):
    with pytest.raises(SpecError) as info:
        load_spec_text(f"container:\n  image: a\n  {text}\n", "job.yaml")
    assert message in str(info.value) and "container.secret_env" in str(info.value)
    assert str(info.value).startswith("job.yaml:")


def test_spec_accepts_names_and_full_references():
    spec = load_spec_text(SECRET_JOB, "job.yaml")
    assert spec.data["container"]["secret_env"] == {
        "WANDB_API_KEY": "wandb-key", "HF_TOKEN": "projects/my-project/secrets/hf/versions/3"}
    assert load_spec_text("container: {image: a}\n").data["container"]["secret_env"] is None
    schema = json_schema()["properties"]["container"]["properties"]["secret_env"]
    assert "roles/secretmanager.secretAccessor" in schema["description"]


SAMPLES = [
    {"secret_env": {}}, {"secret_env": {"K": "name"}},
    {"secret_env": {"K": "projects/p-1/secrets/s_2/versions/latest", "B": "x-y"}},
    {"secret_env": {"K": "projects/123456/secrets/s/versions/7"}, "env": {"A": "1"}},
    # refused
    {"secret_env": {"K": "the value itself"}}, {"secret_env": {"K": "a/b"}},
    {"secret_env": {"1K": "name"}}, {"secret_env": {"K": 1}}, {"secret_env": ["K"]},
    {"secret_env": "K=name"}, {"secret_env": {"K": "projects/p/secrets/s"}},
    {"secret_env": {"K": "n\x00"}},
]


@pytest.mark.parametrize("argument", SAMPLES, ids=[json.dumps(s)[:50] for s in SAMPLES])
def test_cli_schema_and_workflow_agree_on_secret_env(argument):
    cli = check_argument(argument, argument_keys(secrets=True))
    schema = jsonschema.Draft202012Validator(argument_schema(secrets=True))
    schema_errors = list(schema.iter_errors(argument))
    verdict, detail = _run_prepare(SECRET_JOB, argument)
    assert (cli is None) == (not schema_errors) == (verdict == "ok"), (cli, schema_errors[:1],
                                                                       detail)
    if cli is not None:
        assert "secret_env" in cli and "secret_env" in detail, (cli, detail)


def test_secret_env_is_unknown_to_a_job_without_secrets():
    message = check_argument({"secret_env": {"K": "n"}})
    assert message and "(the job spec has no container.secret_env)" in message
    verdict, detail = _run_prepare("container: {image: a}\n", {"secret_env": {"K": "n"}})
    assert verdict == "refused" and 'unknown key "secret_env"' in detail
    with pytest.raises(UsageError, match=r"no container\.secret_env"):
        parse_job_argument('{"secret_env": {"K": "n"}}', load_spec_text(
            "container: {image: a}\n"))
    assert parse_job_argument('{"secret_env": {"K": "n"}}', load_spec_text(SECRET_JOB)) == {
        "secret_env": {"K": "n"}}


def test_the_workflow_merges_the_argument_over_the_spec():
    verdict, container = _run_prepare(SECRET_JOB, {"secret_env": {"HF_TOKEN": "hf-staging",
                                                                   "NEW": "other"}})
    assert verdict == "ok"
    assert container["secret_env"] == {"WANDB_API_KEY": "wandb-key", "HF_TOKEN": "hf-staging",
                                       "NEW": "other"}
    assert container["env"] == {"PLAIN": "p"}
    assert _run_prepare(SECRET_JOB, None)[1]["secret_env"]["HF_TOKEN"] == (
        "projects/my-project/secrets/hf/versions/3")


def _insert_items(text: str) -> dict[str, str]:
    tree = YAML(typ="safe").load(text)
    insert = tree["run_job"]["steps"][0]["run_attempt"]["try"]["steps"][1]["create_vm"]
    return {i["key"]: i["value"] for i in insert["args"]["body"]["metadata"]["items"]}


def test_only_jobs_with_secrets_carry_the_secret_lines():
    plain = render_workflow(load_spec_text("container: {image: a, env: {A: b}}\n"))
    assert "secret" not in plain.lower()
    assert "wfgen-secret-env" not in _insert_items(plain)
    text = render_workflow(load_spec_text(SECRET_JOB, "job.yaml"))
    assert _insert_items(text)["wfgen-secret-env"] == (
        "${json.encode_to_string(container.secret_env)}")
    assert "#   secret_env HF_TOKEN: projects/my-project/secrets/hf/versions/3" in text
