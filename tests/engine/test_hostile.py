"""Hostile workflows and specs end quickly with a clear error (issue: runaways).

Each runaway runs as a real `wfgen` process under a 1.5 GB address-space cap
(resource.setrlimit) and a generous wall-clock timeout: before the fixes these
grew to gigabytes or ran for minutes; now each ends in about a second."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from wfgen.engine import Services, VirtualClock, execute, load_workflow
from wfgen.engine.errors import WorkflowError
from wfgen.engine.stdlib.json_ import from_json_text
from wfgen.engine.syntax import WorkflowSyntaxError
from wfgen.engine.values import DataError, from_data
from wfgen.errors import SpecError
from wfgen.job.spec import load_spec_text

MEMORY_CAP = 1536 << 20
TIMEOUT = 90  # far above the ~1 s each takes: only a runaway gets near it


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def wfgen(tmp_path: Path, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`wfgen ARGS FILE` on `text`, memory-capped; never a traceback."""
    path = tmp_path / "w.yaml"
    path.write_text(text)
    run = subprocess.run([sys.executable, "-m", "wfgen", *args, str(path)],
                         capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=_capped)
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr
    return run


def run_local(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    return wfgen(tmp_path, text, "run", "--local")


def _steps_limit(run: subprocess.CompletedProcess[str]) -> None:
    assert run.returncode == 125, run.stderr
    assert "ResourceLimitError" in run.stderr and "100000 steps" in run.stderr


def test_for_over_a_huge_double_range_ends_at_the_step_limit(tmp_path):
    _steps_limit(run_local(tmp_path, """
main:
  steps:
    - loop:
        for:
          value: x
          range: [0, 1.0e300]
          steps:
            - a:
                assign:
                  - y: ${x}
"""))


def test_parallel_for_over_a_huge_range_ends_at_the_step_limit(tmp_path):
    _steps_limit(run_local(tmp_path, """
main:
  steps:
    - loop:
        parallel:
          for:
            value: x
            range: [0, 9000000000000000000]
            steps:
              - a:
                  assign:
                    - y: ${x}
"""))


@pytest.mark.parametrize("retries", [150000, 1000000000])
def test_retry_attempts_are_billed_steps(tmp_path, retries):
    _steps_limit(run_local(tmp_path, f"""
main:
  steps:
    - t:
        try:
          raise: boom
        retry:
          predicate: ${{retry.always}}
          max_retries: {retries}
          backoff: {{initial_delay: 0, max_delay: 0, multiplier: 1}}
"""))


def _laughs(levels: int, width: int = 10, item: str = "x") -> str:
    lines = ["main:", "  steps:", "    - a:", "        assign:",
             f"          - l0: &a0 [{', '.join([item] * width)}]"]
    for i in range(1, levels):
        lines.append(f"          - l{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    lines.append(f"    - r:\n        return: *a{levels - 1}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("command", [("validate",), ("run", "--local")])
def test_alias_expansion_is_bounded_while_loading(tmp_path, command):
    run = wfgen(tmp_path, _laughs(7), *command)
    said = run.stdout + run.stderr  # validate lists its findings on stdout
    assert run.returncode in (1, 2)
    assert "w.yaml:9:" in said  # the line of the alias that crossed the bound (l4)
    assert "expand this document past 100000 nodes" in said


def test_the_memory_limit_holds_for_values_written_in_the_definition(tmp_path):
    # under the alias bound (11,110 nodes) but 1 MB of text once expanded
    run = run_local(tmp_path, _laughs(4, item='"' + "x" * 100 + '"'))
    assert run.returncode == 125
    assert "ResourceLimitError" in run.stderr and "written in the definition" in run.stderr


def test_merge_keys_in_a_job_spec_are_bounded():
    lines = ["a0: &a0 {k0: 1, k1: 2, k2: 3, k3: 4, k4: 5, k5: 6, k6: 7, k7: 8}"]
    for i in range(1, 8):
        keys = ", ".join(f"m{j}: *a{i - 1}" for j in range(8))
        lines.append(f"a{i}: &a{i} {{{keys}, <<: *a{i - 1}}}")
    lines.append("container:\n  image: busybox\n  <<: *a7")
    with pytest.raises(SpecError, match="expand this document past") as info:
        load_spec_text("\n".join(lines) + "\n", "job.yaml")
    assert info.value.location.line == 6  # a5: the level that crosses the bound


def test_merged_keys_count_against_the_bound():
    # 2,000 maps, each merging the one before and adding a key: 2 million copies
    lines = ["m0: &m0 {k0: 0}"] + [f"m{i}: &m{i} {{<<: *m{i - 1}, k{i}: {i}}}"
                                   for i in range(1, 2000)]
    with pytest.raises(SpecError, match="expand this document past"):
        load_spec_text("\n".join(lines) + "\ncontainer: {image: busybox}\n", "job.yaml")


def test_catastrophic_regex_is_linear(tmp_path):
    run = run_local(tmp_path, """
main:
  steps:
    - r:
        return: ${text.match_regex("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!", "(a+)+$")}
""")
    assert run.returncode == 0 and json.loads(run.stdout) is False


def test_a_list_concat_loop_reaches_the_memory_limit(tmp_path):
    run = run_local(tmp_path, """
main:
  steps:
    - init:
        assign:
          - l: []
    - loop:
        for:
          value: i
          range: [1, 100000]
          steps:
            - add:
                assign:
                  - l: ${list.concat(l, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")}
""")
    assert run.returncode == 125
    assert "ResourceLimitError" in run.stderr and "512 KB" in run.stderr


def test_recursion_that_catches_its_own_recursion_error_hits_the_step_limit(tmp_path):
    _steps_limit(run_local(tmp_path, """
main:
  steps:
    - c:
        call: f
        args: {n: 0}
        result: r
    - ret:
        return: ${r}
f:
  params: [n]
  steps:
    - t:
        try:
          call: f
          args:
            n: ${n + 1}
          result: r
        except:
          as: e
          steps:
            - again:
                call: f
                args:
                  n: ${n + 1}
                result: r
    - ret:
        return: ${r}
"""))


@pytest.mark.parametrize(("body", "what"), [
    ("".join(f"    - a{i}\n" for i in range(200_000)), "args"),
    ("".join(f"    K{i}: v\n" for i in range(50_000)), "env"),
], ids=["args", "env"])  # short ids: pytest puts the test's id in PYTEST_CURRENT_TEST, which
# the wfgen process inherits, and a 700 KB id passes the kernel's bound on one variable
def test_huge_specs_are_refused_unparsed(tmp_path, body, what):
    run = wfgen(tmp_path, f"container:\n  image: busybox\n  {what}:\n{body}", "validate")
    assert run.returncode == 1
    assert "a job spec may be at most 256 KB" in run.stdout


def test_a_large_spec_under_the_bound_is_parsed_once(tmp_path):
    body = "".join(f"    - a{i}\n" for i in range(20_000))
    run = wfgen(tmp_path, f"container:\n  image: busybox\n  args:\n{body}", "validate")
    assert run.returncode == 1 and "over the 128 KB" in run.stdout


# ---- internal errors that must be clear errors -----------------------------------


def test_dates_and_timestamps_stay_strings():
    wf = load_workflow("main:\n  steps:\n    - r:\n        return: [2026-01-01, "
                       "2001-12-14t21:59:43.10-05:00, !!timestamp 2002-12-14]\n")
    res = execute(wf, None, services=Services(clock=VirtualClock()))
    assert res.result == ["2026-01-01", "2001-12-14t21:59:43.10-05:00", "2002-12-14"]


@pytest.mark.parametrize(("text", "tag"), [
    ("return: !!set {a, b}", "!!set"),
    ("return: !!binary aGk=", "!!binary"),
    ("return: !!omap [a: 1]", "!!omap"),
    ("return: !custom x", "!custom"),
])
def test_unknown_tags_are_errors_with_a_line(text, tag):
    with pytest.raises(WorkflowSyntaxError, match=tag) as info:
        load_workflow(f"main:\n  steps:\n    - r:\n        {text}\n")
    assert info.value.issues[0].line == 4


def test_core_schema_tags_are_fine():
    wf = load_workflow("main:\n  steps:\n    - r:\n        return: [!!str 1, !!int '2', "
                       "!!float '1.5', !!bool 'true', !!null '']\n")
    res = execute(wf, None, services=Services(clock=VirtualClock()))
    assert res.result == ["1", 2, 1.5, True, None]


@pytest.mark.parametrize("literal", ["9223372036854775808", "-9223372036854775809",
                                     "0x1FFFFFFFFFFFFFFFF"])
def test_integer_literals_beyond_64_bits_are_refused(literal):
    with pytest.raises(WorkflowSyntaxError, match="does not fit in 64 bits") as info:
        load_workflow(f"main:\n  steps:\n    - r:\n        return: {literal}\n")
    assert info.value.issues[0].line == 4


def test_int64_bounds_themselves_are_fine():
    wf = load_workflow("main:\n  steps:\n    - r:\n        return: [9223372036854775807, "
                       "-9223372036854775808]\n")
    assert execute(wf, None).result == [2**63 - 1, -(2**63)]


def test_lone_surrogates_in_json_decode_are_a_value_error():
    with pytest.raises(WorkflowError) as info:
        from_json_text('"\\ud800"')
    assert info.value.value["tags"] == ["ValueError"]
    assert "surrogate" in info.value.value["message"]
    assert from_json_text('"\\ud83d\\ude00"') == "\U0001f600"  # a pair is one character


def test_lone_surrogate_in_yaml_is_an_error_with_a_line():
    with pytest.raises(WorkflowSyntaxError, match="surrogate") as info:
        load_workflow('main:\n  steps:\n    - r:\n        return: "\\ud800"\n')
    assert info.value.issues[0].line == 4


def test_from_data_bounds_depth_and_checks_values():
    assert from_data([[[1]]]) == [[[1]]]
    nested: list = []
    for _ in range(500):
        nested = [nested]
    with pytest.raises(DataError, match="nest more than 128"):
        from_data(nested)
    with pytest.raises(DataError, match="64 bits"):
        from_data({"a": 2**64})
    with pytest.raises(DataError, match="surrogate"):
        from_data({"\ud800": 1})


@pytest.mark.parametrize(("data", "message"), [
    ('"\\ud800"', "surrogate"),
    ("[" * 500 + "]" * 500, "nest more than 128"),
    ("[" * 100_000 + "]" * 100_000, "nest"),
    ("99999999999999999999", "does not fit in 64 bits"),
    ('{"a": -99999999999999999999}', "does not fit in 64 bits"),
])
def test_bad_data_is_a_usage_error(tmp_path, data, message):
    import contextlib
    import io

    from wfgen.cli import main

    path = tmp_path / "w.yaml"
    path.write_text("main:\n  params: [a]\n  steps:\n    - r:\n        return: ${a}\n")
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["run", "--local", str(path), "--data", data])
    assert code == 2
    assert err.getvalue().startswith("wfgen: --data: ") and message in err.getvalue()


def test_surrogate_pairs_in_yaml_are_one_character():
    wf = load_workflow('main:\n  steps:\n    - r:\n        return: "\\ud83d\\ude00"\n')
    assert execute(wf, None).result == "\U0001f600"
