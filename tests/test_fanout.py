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
from wfgen.job import budget as fanout
from wfgen.job.schema import json_schema
from wfgen.job.spec import load_spec_text
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
    assert spec_of("tasks: {count: 3, parallelism: 50}\n").data["tasks"] == {
        "items": None, "count": 3, "parallelism": 3}  # fits one execution: not split
    assert spec_of("").data["tasks"] is None


def test_item_text_is_the_string_or_compact_sorted_json():
    assert fanout.item_text(" a  'b' $(x) ü\n") == " a  'b' $(x) ü\n"
    assert fanout.item_text({"lr": 0.1, "a": [1, None, True]}) == '{"a":[1,null,true],"lr":0.1}'
    assert fanout.item_text(7) == "7"


@pytest.mark.parametrize(("text", "field", "words"), [
    ("tasks: {count: 3, parallelism: 21, split: false}\n", "tasks.parallelism",
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
    for bad in ({"count": 2, "parallelism": 21, "split": False}, {"count": 2, "parallelism": 1001},
                {"count": 2, "items": ["a"]}, {"items": []}, {"parallelism": 2}, {"count": 0}):
        assert list(validator.iter_errors({"container": {"image": "a"}, "tasks": bad})), bad


# -- limits ---------------------------------------------------------------------

def _largest(message: str) -> int:
    return int(re.search(r"at most (\d+) tasks", message).group(1))


def test_a_count_over_the_step_limit_is_refused_with_the_numbers_and_the_largest_that_fits():
    text = ("timeout: 10d\nheartbeat: 5m\nretries: 3\n"
            "tasks: {count: %d, parallelism: 4, split: false}\n")
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
    assert spec_of((text % 1500).replace(", split: false", "")).data["tasks"]["split"]


def test_items_over_the_memory_limit_are_refused_with_the_numbers_and_the_largest_that_fits():
    item, many = "x" * 100, 2400  # the spec stays under its 256 KB size limit
    text = "tasks:\n  parallelism: 2\n  split: false\n  items: %s\n"
    err = error_of(text % json.dumps([item] * many))
    message = str(err)
    assert err.location.field == "tasks.items"
    assert "512 KB" in message and "KB of workflow variables" in message
    assert "bytes of items as JSON" in message
    largest = _largest(message)
    assert 100 < largest < many
    spec = spec_of(text % json.dumps([item] * largest))
    assert fanout.plan(spec).memory <= fanout.MEMORY_BUDGET
    # the count named is a safe estimate: a little more no longer fits
    assert "512 KB" in str(error_of(text % json.dumps([item] * (largest * 21 // 20 + 1))))


def test_generate_refuses_limits_with_exit_2(tmp_path, cli):
    path = tmp_path / "job.yaml"
    path.write_text(BASE + "tasks: {count: 9000, parallelism: 20, split: false}\n")
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


# -- end to end: wfgen run --local ---------------------------------------------------

ITEMS = ["line one\nline two", "  two  spaces  ", "quotes ' \" `back` \\ end",
         "$(touch pwned) ${HOME} $HOME; rm -rf nothing", "ünï©ødé 日本 🎉",
         {"lr": 0.1, "n": [1, "x"], "b": None}]
# Each task writes its start and end times, its item and its count into $OUT.
RECORDING = ('d="$OUT/$WFGEN_TASK_INDEX"; date +%s.%N > "$d.start"; '
             'printf %s "$WFGEN_TASK_ITEM" > "$d.item"; '
             'printf %s "$WFGEN_TASK_COUNT" > "$d.count"; sleep "${NAP:-2}"; '
             'date +%s.%N > "$d.end"; ')


def fanout_job(tmp_path, items=None, *, script: str = "", parallelism: int = 2, retries: int = 0,
               count: int | None = None, heartbeat: str = "1s"):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    tasks = {"count": count} if count else {"items": items if items is not None else ITEMS}
    spec = {"name": "fan", "container": {"image": "alpine:3.20", "script": RECORDING + script,
                                         "env": {"OUT": str(out)}},
            "timeout": "5m", "heartbeat": heartbeat, "retries": retries,
            "tasks": {**tasks, "parallelism": parallelism}}
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec))
    return path, out


def most_at_once(out, count: int) -> int:
    """The most tasks running at the same moment, from the tasks' own times."""
    events = []
    for index in range(count):
        events.append((float((out / f"{index}.start").read_text()), 1))
        events.append((float((out / f"{index}.end").read_text()), -1))
    running = peak = 0
    for _when, step in sorted(events, key=lambda e: (e[0], e[1])):  # ends before starts
        running += step
        peak = max(peak, running)
    return peak


def test_every_task_gets_its_index_and_item_byte_for_byte_two_at_a_time(tmp_path):
    from tests.local.test_run_local import result_of, run_local

    job, out = fanout_job(tmp_path)
    run = run_local(tmp_path, job, "--stats")
    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert (result["status"], result["succeeded"], result["failed"]) == ("succeeded", 6, 0)
    assert [t["index"] for t in result["tasks"]] == list(range(6))
    for index, (task, item) in enumerate(zip(result["tasks"], ITEMS, strict=True)):
        assert set(task) == {"index", "status", "exit_code", "attempts", "instance"}
        assert (task["status"], task["exit_code"], task["attempts"]) == ("succeeded", 0, 1)
        assert re.fullmatch(rf"fan-[0-9a-f]{{12}}-{index}-1", task["instance"]), task
        assert (out / f"{index}.item").read_bytes() == fanout.item_text(item).encode("utf-8")
        assert (out / f"{index}.count").read_text() == "6"
    assert (out / "5.item").read_text() == '{"b":null,"lr":0.1,"n":[1,"x"]}'
    assert not list(tmp_path.rglob("pwned"))
    assert most_at_once(out, 6) == 2  # never more than parallelism, and it did run 2 at once
    assert "6 tasks:" in run.stderr and "steps per task" in run.stderr


def test_a_failing_task_does_not_stop_the_others_and_sets_the_exit_code(tmp_path):
    from tests.local.test_run_local import result_of, run_local

    job, out = fanout_job(tmp_path, count=6, script='[ "$WFGEN_TASK_INDEX" != 2 ] || exit 5')
    run = run_local(tmp_path, job)
    assert run.returncode == 5, run.stderr
    result = result_of(run)
    assert (result["status"], result["succeeded"], result["failed"]) == ("failed", 5, 1)
    statuses = [(t["status"], t["exit_code"]) for t in result["tasks"]]
    assert statuses == [("succeeded", 0)] * 2 + [("failed", 5)] + [("succeeded", 0)] * 3
    assert all((out / f"{i}.end").exists() for i in range(6))  # every task ran to its end
    assert (out / "2.item").read_text() == "2"  # with count, the item is the index


def test_a_preempted_task_is_retried_alone(tmp_path):
    from tests.local.test_run_local import result_of, run_local

    job, _out = fanout_job(tmp_path, count=3, parallelism=3, retries=1)
    run = run_local(tmp_path, job, "--fault", "preempt@1s,task=1")
    assert run.returncode == 0, run.stderr
    tasks = result_of(run)["tasks"]
    assert [t["attempts"] for t in tasks] == [1, 2, 1]
    assert tasks[1]["instance"].endswith("-1-2") and tasks[0]["instance"].endswith("-0-1")
    assert "-1-1 preempted" in run.stderr


def test_the_execution_argument_replaces_the_items(tmp_path):
    from tests.local.test_run_local import result_of, run_local

    job, out = fanout_job(tmp_path)
    items = ["from --data", {"k": "v"}]
    run = run_local(tmp_path, job, "--data", json.dumps({"items": items, "env": {"NAP": "0"}}))
    assert run.returncode == 0, run.stderr
    result = result_of(run)
    assert result["succeeded"] == 2 and len(result["tasks"]) == 2
    assert (out / "0.item").read_text() == "from --data"
    assert (out / "1.item").read_text() == '{"k":"v"}'
    assert (out / "1.count").read_text() == "2"
    assert not (out / "2.start").exists()


@pytest.mark.parametrize(("data", "words"), [
    ({"items": []}, "non-empty list"), ({"items": "abc"}, "non-empty list"),
    ({"items": list(range(9000))}, "at most"), ({"items": ["x" * 24_000] * 5}, "KB"),
    ({"itemz": [1]}, "unknown key"),
])
def test_bad_items_are_refused_by_the_cli_and_by_the_workflow_itself(tmp_path, cli, data, words):
    job, _out = fanout_job(tmp_path)
    run = cli("run", "--local", "--on-host", str(job), "--data", json.dumps(data))
    assert run.returncode == 2 and words in run.stderr and "Traceback" not in run.stderr
    # the deployed workflow checks the same, before any VM exists
    workflow = tmp_path / "workflow.yaml"
    assert cli("generate", str(job), "-o", str(workflow)).returncode == 0
    run = cli("run", "--local", str(workflow), "--data", json.dumps(data))
    assert run.returncode != 0 and "ValueError" in run.stderr and "Traceback" not in run.stderr
    assert words.split()[0] in run.stderr and "created" not in run.stderr


def test_the_step_figures_of_the_limits_hold(tmp_path):
    """Without heartbeats, a run bills no more than the step limit's figures assume."""
    from tests.local.test_run_local import run_local

    job, _out = fanout_job(tmp_path, count=3, parallelism=3, heartbeat="4m")
    run = run_local(tmp_path, job, "--stats", "--data", json.dumps({"env": {"NAP": "0"}}))
    assert run.returncode == 0, run.stderr
    total = int(re.search(r"billed steps: \d+ internal \+ \d+ external = (\d+)",
                          run.stderr).group(1))
    assert total <= fanout.STEPS_FIXED + 3 * fanout.STEPS_PER_TASK, run.stderr


def test_vm_names_and_labels_of_tasks(tmp_path):
    from ruamel.yaml import YAML

    from wfgen.job.render import render_workflow

    spec = spec_of("name: " + "n" * 63 + "\ntasks: {count: 2000, parallelism: 1}\n"
                   "heartbeat: 1h\ntimeout: 2h\nretries: 0\n")
    tree = YAML(typ="safe").load(render_workflow(spec))
    body = tree["run_job"]["steps"][0]["run_attempt"]["try"]["steps"][1]["create_vm"]["args"][
        "body"]
    assert body["labels"]["wfgen-task"] == "${string(task)}"
    init = next(s for s in tree["main"]["steps"] if "tasks_init" in s)["tasks_init"]
    assigns = {k: v for a in init["assign"] for k, v in a.items()}
    prefix = re.match(r'\$\{"([a-z0-9-]+)-" \+ text.substring', assigns["vm_base"]).group(1)
    assert prefix.startswith("nnnn")
    # PREFIX-TAG12-TASK-ATTEMPT with task 9999 and attempt 101 fits 63 characters
    assert len(f"{prefix}-{'a' * 12}-9999-101") <= 63


def test_a_fault_task_outside_the_run_is_a_usage_error(tmp_path, cli):
    """task=N must name a task of this run; a job without tasks takes none."""
    fan = tmp_path / "fan.yaml"
    fan.write_text(BASE + "tasks: {items: [a, b], parallelism: 2}\n")
    run = cli("run", "--local", "--on-host", str(fan), "--fault", "preempt@1s,task=2")
    assert run.returncode == 2 and "2 task(s), numbered 0 to 1" in run.stderr
    plain = tmp_path / "plain.yaml"
    plain.write_text(BASE)
    run = cli("run", "--local", "--on-host", str(plain), "--fault", "vanish@1s,task=0")
    assert run.returncode == 2 and "not a fan-out job" in run.stderr
    assert "Traceback" not in run.stderr
