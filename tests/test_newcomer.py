"""What a new user hits in the first fifteen minutes (issue 28): each mistake
named in one run, one rule for env values, a short local heartbeat that works,
--on-host needing a command, and the small messages that point at the fix."""

from __future__ import annotations

import pytest

from wfgen.errors import SpecError, UsageError
from wfgen.job.arguments import parse_job_argument
from wfgen.job.spec import load_spec, load_spec_text
from wfgen.job.starter import starter_job

SEVEN_DAYS = "name: week\ncontainer:\n  image: alpine\n  script: echo hi\ntimeout: 7d\n"


def all_errors(text: str) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        load_spec_text(text, "job.yaml")
    return {e.location.field: str(e) for e in info.value.all()}


# -- validate reports every independent problem in one pass ---------------------

def test_two_bad_env_values_and_a_wrong_zone_are_reported_together(cli, tmp_path):
    spec = tmp_path / "job.yaml"
    spec.write_text("location: us-central1\nzone: europe-west1-b\ncontainer:\n  image: a\n"
                    "  env:\n    LR: 0.001\n    EPOCHS: 3\n    OK: fine\n")
    done = cli("validate", str(spec))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert [line.split(": ")[1] for line in lines[:-1]] == [
        "zone", "container.env.LR", "container.env.EPOCHS"], done.stdout
    assert lines[-1] == "3 problem(s) found" and done.stderr == ""  # one stream: stdout


def test_a_wrong_region_says_the_zone_waits_for_it():
    errors = all_errors("location: mars-central1\nzone: mars-central1-a\ncontainer: {image: a}\n")
    assert "zone is checked once location is right" in errors["location"]


def test_a_field_error_hides_only_the_cross_checks_it_explains():
    errors = all_errors("zone: us-east1-b\ntasks: {items: []}\ncontainer: {image: a}\n")
    assert set(errors) == {"zone", "tasks.items"}  # not "give items or count" on tasks


# -- one rule for env values: strings, in the spec and in --data ---------------

def test_env_numbers_are_refused_alike_in_the_spec_and_in_data_naming_the_key():
    errors = all_errors("container:\n  image: a\n  env: {EPOCHS: 3, LR: 0.001}\n")
    assert 'container.env.EPOCHS: expected a string, got the number 3 (quote it: "3")' in \
        errors["container.env.EPOCHS"]
    assert "container.env.LR" in errors
    spec = load_spec_text("container:\n  image: a\n")
    with pytest.raises(UsageError, match=r'env\.EPOCHS must be a string, got 3 \(quote it: "3"\)'):
        parse_job_argument('{"env": {"EPOCHS": 3}}', spec)
    with pytest.raises(UsageError, match=r"args\[1\] must be a string"):
        parse_job_argument('{"args": ["--epochs", 90]}', spec)
    assert parse_job_argument('{"env": {"EPOCHS": "3"}}', spec) == {"env": {"EPOCHS": "3"}}


def test_an_unknown_data_key_gets_a_did_you_mean():
    with pytest.raises(UsageError, match="unknown key 'arg'; did you mean 'args'"):
        parse_job_argument('{"arg": ["x"]}', load_spec_text("container:\n  image: a\n"))


# -- the README's `--heartbeat 2s` on a 7-day job -------------------------------

def test_a_short_heartbeat_alone_shortens_a_local_timeout_and_says_so(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(SEVEN_DAYS)
    notes: list[str] = []
    spec = load_spec(path, heartbeat="2s", notes=notes)
    assert spec.heartbeat_s == 2 and 3600 < spec.timeout_s < 7 * 86400
    assert "timeout shortened to" in notes[0] and "--timeout" in notes[0]


def test_the_step_budget_message_names_both_ways_out(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(SEVEN_DAYS)
    with pytest.raises(UsageError) as info:
        load_spec(path, heartbeat="2s", timeout="7d")
    message = str(info.value)
    assert "a timeout of at most" in message and "a heartbeat of at least 23s" in message
    assert "--heartbeat" in message and "--timeout" in message
    errors = all_errors(SEVEN_DAYS + "heartbeat: 2s\n")
    assert "a timeout of at most" in errors["heartbeat"]


def test_the_init_job_runs_with_the_readme_heartbeat_and_fault(cli, tmp_path):
    (tmp_path / "job.yaml").write_text(starter_job("my-job"))
    done = cli("run", "--local", "--on-host", str(tmp_path / "job.yaml"), "--heartbeat", "2s",
               "--fault", "preempt@3s", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "timeout shortened to" in done.stderr and '"status": "succeeded"' in done.stdout


# -- --on-host needs a command --------------------------------------------------

def test_on_host_without_command_is_noted_by_validate_and_refused_before_start(cli, tmp_path):
    spec = tmp_path / "job.yaml"
    spec.write_text("name: nocmd\ncontainer:\n  image: alpine:3.20\ntimeout: 1h\n")
    checked = cli("validate", str(spec))
    assert checked.returncode == 0 and "note: container has neither command nor script" in \
        checked.stdout
    run = cli("run", "--local", "--on-host", str(spec))
    assert run.returncode == 2 and "nothing was started" in run.stderr, run.stderr
    assert "VM " not in run.stderr and run.stdout == ""
    given = cli("run", "--local", "--on-host", str(spec), "--data",
                '{"command": ["echo", "from data"]}')
    assert given.returncode == 0 and "| from data" in given.stderr, given.stderr


# -- the small ones -------------------------------------------------------------

def test_a_tab_in_the_yaml_says_indent_with_spaces():
    errors = all_errors("container:\n\timage: a\n")
    assert "indent with spaces" in next(iter(errors.values()))


@pytest.mark.parametrize(("image", "lowered"), [
    ("Alpine:3.20", "alpine:3.20"),
    ("us-docker.pkg.dev/My-Proj/ml/Train:V1", "us-docker.pkg.dev/my-proj/ml/train:V1"),
])
def test_an_uppercase_image_says_lowercase(image, lowered):
    errors = all_errors(f"container:\n  image: {image}\n")
    assert f"must be lowercase (did you mean {lowered!r}?)" in errors["container.image"]
    with pytest.raises(UsageError, match="must be lowercase"):
        parse_job_argument(f'{{"image": "{image}"}}', load_spec_text("container: {image: a}\n"))


def test_gc_help_does_not_speak_of_a_job_spec(cli):
    done = cli("gc", "--help")
    assert done.returncode == 0 and "spec" not in done.stdout.replace("\n", " ")
