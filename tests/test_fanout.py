"""Fan-out (`tasks:`): the spec block and its limits, refused at generate time with
the numbers; and end to end through `wfgen run --local`: every task on its own
VM with its index and item byte for byte, at most `parallelism` VMs at once, a
failing task not stopping the others, per-task retries, items from the
execution argument, and nothing left running."""

from __future__ import annotations

import json
import re

import pytest

from wfgen.cli.follow import exit_status
from wfgen.errors import SpecError, UsageError
from wfgen.job import tasks as fanout
from wfgen.job.spec import json_schema, load_spec_text
from wfgen.local.faults import Faults

BASE = "container: {image: alpine, script: 'true'}\n"


def spec_of(text: str):
    return load_spec_text(BASE + text, "job.yaml")


def error_of(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        spec_of(text)
    return info.value


# -- the spec block ------------------------------------------------------------

def test_items_and_count_and_the_default_parallelism():
    spec = spec_of('tasks:\n  items: ["a b", {lr: 0.1}, 3, null, [1, "x"]]\n')
    assert spec.data["tasks"] == {"items": ["a b", {"lr": 0.1}, 3, None, [1, "x"]],
                                  "count": None, "parallelism": 5}
    assert fanout.items_of(spec) == ["a b", {"lr": 0.1}, 3, None, [1, "x"]]
    spec = spec_of("tasks: {count: 40}\n")
    assert spec.data["tasks"]["parallelism"] == 20  # every task, up to 20
    assert fanout.items_of(spec) == list(range(40))
    assert spec_of("tasks: {count: 3, parallelism: 2}\n").data["tasks"]["parallelism"] == 2
    assert spec_of("").data["tasks"] is None


def test_item_text_is_the_string_or_compact_sorted_json():
    assert fanout.item_text(" a  'b' $(x) ü\n") == " a  'b' $(x) ü\n"
    assert fanout.item_text({"lr": 0.1, "a": [1, None, True]}) == '{"a":[1,null,true],"lr":0.1}'
    assert fanout.item_text(7) == "7"


@pytest.mark.parametrize(("text", "field", "words"), [
    ("tasks: {count: 3, parallelism: 21}\n", "tasks.parallelism",
     "at most 20 concurrent iterations"),
    ("tasks: {count: 3, items: [a]}\n", "tasks", "not both"),
    ("tasks: {parallelism: 2}\n", "tasks", "give items"),
    ("tasks: {items: []}\n", "tasks.items", "at least one item"),
    ("tasks: {items: a}\n", "tasks.items", "expected a list"),
    ("tasks: {count: 0}\n", "tasks.count", "at least 1"),
    ("tasks: {items: [0x1F]}\n", "tasks.items[0]", "quote it"),
    ("tasks: {items: [.nan]}\n", "tasks.items[0]", "not a JSON number"),
    ('tasks: {items: ["a\\0b"]}\n', "tasks.items[0]", "NUL"),
    ("tasks: {items: [{1: x}]}\n", "tasks.items[0].1", "must be a string"),
    ("tasks: {itms: [a]}\n", "tasks.itms", "did you mean 'items'"),
])
def test_bad_tasks_blocks_are_located(text, field, words):
    err = error_of(text)
    assert err.location.field == field, str(err)
    assert words in str(err)
    assert str(err).startswith("job.yaml:2")


def test_schema_knows_the_tasks_block():
    import jsonschema

    validator = jsonschema.Draft202012Validator(json_schema())
    ok = {"container": {"image": "a"}, "tasks": {"items": ["x", {"lr": 0.1}], "parallelism": 3}}
    assert not list(validator.iter_errors(ok))
    for bad in ({"count": 2, "parallelism": 21}, {"count": 2, "items": ["a"]}, {"items": []},
                {"parallelism": 2}, {"count": 0}):
        assert list(validator.iter_errors({"container": {"image": "a"}, "tasks": bad})), bad


# -- limits ---------------------------------------------------------------------

def _largest(message: str) -> int:
    return int(re.search(r"at most (\d+) tasks", message).group(1))


def test_a_count_over_the_step_limit_is_refused_with_the_numbers_and_the_largest_that_fits():
    text = "timeout: 10d\nheartbeat: 5m\nretries: 3\ntasks: {count: %d, parallelism: 4}\n"
    err = error_of(text % 1500)
    message = str(err)
    assert err.location.field == "tasks.count" and err.location.line == 5
    assert "100,000" in message and "2880 heartbeats" in message and "4 tasks at once" in message
    assert "steps in the worst case" in message
    largest = _largest(message)
    assert 100 < largest < 1500
    spec = spec_of(text % largest)  # the largest count it names fits ...
    assert fanout.plan(spec).steps <= fanout.STEP_BUDGET
    assert "steps" in str(error_of(text % (largest + 1)))  # ... and one more does not


def test_items_over_the_memory_limit_are_refused_with_the_numbers_and_the_largest_that_fits():
    item = "x" * 300
    text = "tasks:\n  parallelism: 2\n  items: %s\n"
    err = error_of(text % json.dumps([item] * 1500))
    message = str(err)
    assert err.location.field == "tasks.items"
    assert "512 KB" in message and "KB of workflow variables" in message
    assert "bytes of items as JSON" in message
    largest = _largest(message)
    assert 100 < largest < 1500
    spec = spec_of(text % json.dumps([item] * largest))
    assert fanout.plan(spec).memory <= fanout.MEMORY_BUDGET
    assert "512 KB" in str(error_of(text % json.dumps([item] * (largest + 1))))


def test_generate_refuses_limits_with_exit_2(tmp_path, cli):
    path = tmp_path / "job.yaml"
    path.write_text(BASE + "tasks: {count: 9000, parallelism: 20}\n")
    run = cli("generate", str(path))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "tasks.count" in run.stderr and "at most" in run.stderr and "KB" in run.stderr


# -- faults and exit status --------------------------------------------------------

def test_faults_take_a_task():
    faults = Faults.parse(["preempt@1s,task=3", "vanish@2s", "insert-fail,task=1"])
    assert (faults.task_of("preempt"), faults.task_of("vanish"), faults.task_of("insert-fail")) \
        == (3, 0, 1)
    for bad in ("preempt@1s,tusk=3", "preempt@1s,task=x", "refuse-callbacks=2,task=1"):
        with pytest.raises(UsageError):
            Faults.parse([bad])


def test_exit_status_of_a_fan_out_is_that_of_its_first_failed_task():
    def job(*tasks):
        return {"status": "failed", "tasks": [dict(t, index=i) for i, t in enumerate(tasks)]}

    ok = {"status": "succeeded", "exit_code": 0}
    assert exit_status("FAILED", job(ok, {"status": "failed", "exit_code": 5},
                                     {"status": "failed", "exit_code": 3})) == 5
    assert exit_status("FAILED", job(ok, {"status": "error", "exit_code": None},
                                     {"status": "failed", "exit_code": 3})) == 125
    assert exit_status("FAILED", job(ok, ok)) == 125
    assert exit_status("SUCCEEDED", job(ok, ok)) == 0
