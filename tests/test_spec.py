"""The job spec: defaults, durations, and one clear located error per mistake."""

from __future__ import annotations

import pytest

from wfgen.errors import SpecError
from wfgen.job.rules import format_duration, parse_duration
from wfgen.job.schema import json_schema
from wfgen.job.spec import load_spec_text

MINIMAL = "container:\n  image: alpine\n"


def error_of(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "job.yaml")
    return info.value


def test_only_image_is_required_and_defaults_are_filled():
    spec = load_spec_text(MINIMAL, "train-job.yaml")
    assert spec.name == "train-job"
    assert spec.data["zone"] == "us-central1-a"
    assert spec.data["container"]["args"] == []
    assert spec.data["machine"]["image_family"] == "cos-stable"
    assert spec.data["retries"] == 2
    assert spec.timeout_s == 7 * 86400 and spec.heartbeat_s == 600


def test_zone_defaults_from_location():
    spec = load_spec_text("location: europe-west4\n" + MINIMAL)
    assert spec.data["zone"] == "europe-west4-a"


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("10m", 600), ("36h", 129600), ("7d", 604800), ("1h30m", 5400), (45, 45)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "5x", "10 m", "-3s", "0s", "m", 0, True, 1.5, "1m1h"])
def test_bad_durations_are_rejected(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_format_duration_round_trips():
    for seconds in (1, 59, 60, 3600, 5400, 86400, 604800, 90061):
        assert parse_duration(format_duration(seconds)) == seconds


def test_numbers_in_args_and_env_are_refused_each_by_its_key_as_data_refuses_them():
    """One rule for the spec, --data and the workflow's check: strings only."""
    err = error_of("container:\n  image: a\n  args: [--epochs, 90]\n  env: {SEED: 42, LR: 0.1}\n")
    found = {e.location.field: str(e) for e in err.all()}
    assert set(found) == {"container.args[1]", "container.env.SEED", "container.env.LR"}
    assert 'quote it: "90"' in found["container.args[1]"]
    assert 'quote it: "42"' in found["container.env.SEED"]
    spec = load_spec_text('container:\n  image: a\n  args: [--epochs, "90"]\n  env: {SEED: "42"}\n')
    assert spec.data["container"]["args"] == ["--epochs", "90"]
    assert spec.data["container"]["env"] == {"SEED": "42"}


@pytest.mark.parametrize(("text", "line", "field", "words"), [
    ("container:\n  image: a\n  argz: [x]\n", 3, "container.argz", "did you mean 'args'"),
    ("contaner:\n  image: a\n", 1, "contaner", "did you mean 'container'"),
    ("container:\n  image: a\ntimeout: 5x\n", 3, "timeout", "not a duration"),
    ("container:\n  args: [a]\n", 1, "container.image", "missing required key 'image'"),
    ("name: x\n", 1, "container", "missing required key 'container'"),
    ("container:\n  image: a\n  args: --epochs 90\n", 3, "container.args", "never split"),
    ("container:\n  image: a\nretries: two\n", 3, "retries", "expected an integer"),
    ("container:\n  image: a\nretries: -1\n", 3, "retries", "at least 0"),
    ("container:\n  image: a\nmachine: {spot: yes}\n", 3, "machine.spot", "true or false"),
    ("container:\n  image: a\n  env: {A: 1.5}\n", 3, "container.env.A", "quote it"),
    ("container:\n  image: a\n  env: {1BAD: x}\n", 3, "container.env", "environment variable"),
    ("container:\n  image: a\n  command: [x]\n  script: echo\n", 4, "container.script",
     "cannot be combined with command"),
    ("container:\n  image: a\nheartbeat: 8d\n", 3, "heartbeat", "shorter than timeout"),
    ("container:\n  image: a\nlabels: {Team: x}\n", 3, "labels", "lowercase"),
    ("container:\n  image: a\nzone: mars\n", 3, "zone", "not a zone"),
    ("container:\n  image: -rf\n", 2, "container.image", "not an image reference"),
    ("container:\n  image: 'alpine:'\n", 2, "container.image", "not an image reference"),
    ("container:\n  image: UPPER/Case\n", 2, "container.image", "not an image reference"),
    ("name: " + "n" * 80 + "\ncontainer: {image: a}\n", 1, "name", "longer than 63"),
    ("container:\n  image: a\ntimeout: 200d\n", 3, "timeout", "at most 100d"),
    ("container: [1, 2]\n", 1, "container", "expected a map"),
    ("container:\n  image: a\n  image: b\n", 3, "", "duplicate key"),
    ("container: {image: 'a\n", 2, "", "not valid YAML"),
    ("- just\n- a list\n", 1, "", "a YAML map"),
])
def test_each_mistake_gives_one_located_message(text, line, field, words):
    err = error_of(text)
    assert err.location is not None and err.location.file == "job.yaml"
    assert err.location.line == line, str(err)
    assert err.location.field == field, str(err)
    assert words in str(err)
    assert str(err).startswith(f"job.yaml:{line}")


def test_empty_file_and_comment_only_file():
    assert "empty" in str(error_of(""))
    assert "no YAML document" in str(error_of("# just a comment\n"))


def test_nul_in_text_is_rejected():
    err = error_of('container:\n  image: a\n  args: ["a\\0b"]\n')
    assert "NUL" in str(err) and err.location.field == "container.args[0]"


def test_json_schema_accepts_examples_and_rejects_unknown_keys():
    import jsonschema
    from ruamel.yaml import YAML

    from tests.conftest import EXAMPLES

    validator = jsonschema.Draft202012Validator(json_schema())
    for path in EXAMPLES:
        assert not list(validator.iter_errors(YAML(typ="safe").load(path.read_text())))
    assert list(validator.iter_errors({"container": {"image": "a", "argz": []}}))
    assert list(validator.iter_errors({"container": {"image": "a", "command": ["x"],
                                                     "script": "x"}}))
    assert not list(validator.iter_errors({"container": {"image": "a", "args": ["1"],
                                                         "script": "echo \"$@\""}}))
    assert list(validator.iter_errors({"name": "x"}))


def test_a_heartbeat_too_short_for_the_timeout_is_refused_with_a_better_one():
    err = error_of("container:\n  image: a\ntimeout: 30d\nheartbeat: 10s\n")
    assert err.location.field == "heartbeat" and err.location.line == 4
    assert "100,000" in str(err) and "at least" in str(err)
    suggested = str(err).rsplit("at least ", 1)[1]
    load_spec_text(f"container:\n  image: a\ntimeout: 30d\nheartbeat: {suggested}\n")


def test_the_vm_backstop_must_fit_compute_engines_limit():
    err = error_of("container:\n  image: a\ntimeout: 100d\nheartbeat: 25d\n")
    assert "120 days" in str(err)


@pytest.mark.parametrize("number", ["010", "0x1F", "0o17", "1_000"])
def test_numbers_that_would_change_must_be_quoted(number):
    err = error_of(f"container:\n  image: a\n  args: [--n, {number}]\n")
    assert "quote it" in str(err) and err.location.field == "container.args[1]"


def test_every_mistake_of_a_file_is_reported_in_file_order():
    err = error_of("container:\n  imgae: x\n  scirpt: y\nmachine:\n  tpye: z\nretries: x\n")
    found = [(e.location.line, e.location.field) for e in err.all()]
    assert found == [(1, "container.image"), (2, "container.imgae"), (3, "container.scirpt"),
                     (5, "machine.tpye"), (6, "retries")]


@pytest.mark.parametrize(("timeout", "beat"), [("5m", 75), ("7d", 600), ("20s", 10),
                                                ("8s", 4), ("1h", 600)])
def test_the_heartbeat_default_follows_the_timeout(timeout, beat):
    spec = load_spec_text(f"container: {{image: a}}\ntimeout: {timeout}\n")
    assert spec.heartbeat_s == beat


def test_a_heartbeat_conflict_names_the_default_and_what_to_write():
    err = error_of("container:\n  image: a\nheartbeat: 8d\n")
    assert err.location.field == "heartbeat"
    assert "timeout (7d, the default)" in str(err) and "leave heartbeat out" in str(err)
    err = error_of("container:\n  image: a\ntimeout: 5m\nheartbeat: 10m\n")
    assert "(1m15s," in str(err)


def test_load_spec_overrides_are_checked_once_in_the_job_model(tmp_path) -> None:
    """--heartbeat/--timeout go through load_spec: the default heartbeat follows a
    --timeout, a conflicting pair names where each value came from, and the step
    budget is checked with the overrides."""
    import pytest

    from wfgen.errors import UsageError
    from wfgen.job.spec import load_spec

    path = tmp_path / "job.yaml"
    path.write_text("container: {image: alpine}\ntimeout: 1h\n")
    assert load_spec(path, timeout="2m").heartbeat_s == 30  # a quarter of the new timeout
    assert load_spec(path, heartbeat="5s").heartbeat_s == 5
    with pytest.raises(UsageError, match=r"from --heartbeat.*from " + str(path)):
        load_spec(path, heartbeat="2h")
    with pytest.raises(UsageError, match="100,000"):
        load_spec(path, timeout="90d", heartbeat="1s")
    with pytest.raises(UsageError, match="--timeout"):
        load_spec(path, timeout="soon")


def test_a_timeout_override_too_short_for_the_default_heartbeat(tmp_path) -> None:
    """No heartbeat written anywhere: the message is about the timeout, not about a
    heartbeat the user never wrote."""
    import pytest

    from wfgen.errors import UsageError
    from wfgen.job.spec import load_spec

    path = tmp_path / "job.yaml"
    path.write_text("container: {image: alpine}\n")
    with pytest.raises(UsageError, match=r"--timeout 1s: too short") as caught:
        load_spec(path, timeout="1s")
    assert str(path) not in str(caught.value)


def test_every_bad_env_name_is_named_at_once() -> None:
    import pytest

    with pytest.raises(SpecError) as caught:
        load_spec_text("container:\n  image: alpine\n  env: {J-1: a, OK: b, K.2: c}\n",
                       "job.yaml")
    message = str(caught.value)
    assert "'J-1', 'K.2'" in message and "'OK'" not in message
