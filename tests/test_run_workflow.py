"""`wfgen run --local` on any workflow file: stdout JSON, exit statuses, and
the failing step's file:line:column (through the CLI's one error policy)."""

from __future__ import annotations

import json
from pathlib import Path

from wfgen.cli import main


def _run(path: Path, data: str | None, *, stats: bool = False) -> tuple[int, str, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    argv = ["run", "--local", str(path)] + (["--data", data] if data is not None else [])
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, *(["--stats"] if stats else [])])
    return code, out.getvalue(), err.getvalue()


def test_success_prints_result_json(tmp_path: Path) -> None:
    p = tmp_path / "w.yaml"
    p.write_text("main:\n  params: [a]\n  steps:\n    - r:\n        return: ${a.x * 2}\n")
    code, out, err = _run(p, '{"x": 21}', stats=True)
    assert code == 0
    assert json.loads(out) == 42
    assert err == ("wfgen: billed steps: 1 internal + 0 external = 1; $0.000010 at Cloud "
                   "Workflows list prices (beyond the free tier)\n")


def test_failure_names_the_step(tmp_path: Path) -> None:
    p = tmp_path / "w.yaml"
    p.write_text("- ok:\n    assign:\n      - x: 1\n- bad:\n    raise: {message: m, code: 7}\n")
    code, out, err = _run(p, None)
    assert code == 125 and out == ""
    assert "step 'bad'" in err and '"code": 7' in err


def test_bad_file_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "w.yaml"
    p.write_text("- a:\n    assign:\n      - x: ${1 +}\n")
    code, out, err = _run(p, None)
    assert code == 2 and out == ""
    assert f"{p}:3:" in err


def test_bad_data_json(tmp_path: Path) -> None:
    p = tmp_path / "w.yaml"
    p.write_text("- r:\n    return: 1\n")
    code, _, err = _run(p, "{nope")
    assert code == 2 and "--data" in err and "line 1" in err


def test_missing_file(tmp_path: Path) -> None:
    code, _, err = _run(tmp_path / "nope.yaml", None)
    assert code == 2 and "nope.yaml" in err


def test_execution_result_to_json() -> None:
    import json as _json

    from wfgen.engine import execute, load_workflow

    ok = execute(load_workflow("- r:\n    return: [1]\n", "w.yaml")).to_json()
    assert ok["state"] == "SUCCEEDED" and ok["result"] == [1]
    assert ok["steps"] == {"internal": 1, "external": 0}
    bad = execute(load_workflow("- r:\n    raise: oops\n", "w.yaml")).to_json()
    assert bad["state"] == "FAILED" and bad["error"] == "oops" and bad["step"] == "r"
    _json.dumps(bad)


def test_result_json_is_indented_like_the_job_runner(tmp_path: Path) -> None:
    p = tmp_path / "w.yaml"
    p.write_text('- r:\n    return: {"name": "Grüße", "n": [1]}\n')
    code, out, _ = _run(p, None)
    assert code == 0
    assert out == json.dumps({"n": [1], "name": "Grüße"}, indent=2, ensure_ascii=False) + "\n"


def test_failure_names_file_line_and_column_of_the_step(tmp_path: Path) -> None:
    p = tmp_path / "flow.yaml"
    p.write_text("main:\n  steps:\n    - a:\n        call: sub\nsub:\n  steps:\n"
                 "    - x:\n        assign:\n          - y: 1\n"
                 "    - call_api:\n        raise: {code: 7}\n")
    code, _, err = _run(p, None)
    assert code == 125
    assert err.startswith(f"wfgen: {p}:10:7: execution FAILED at step 'call_api' in subworkflow "
                          "'sub': ")
    assert '"code": 7' in err


def test_failure_in_a_nested_step_names_its_line(tmp_path: Path) -> None:
    p = tmp_path / "flow.yaml"
    p.write_text("- loop:\n    for:\n      value: v\n      in: [1]\n      steps:\n"
                 "        - divide:\n            return: ${1 // 0}\n")
    code, _, err = _run(p, None)
    assert code == 125
    assert err.startswith(f"wfgen: {p}:6:11: execution FAILED at step 'divide': ")


def test_step_limit_names_the_step_about_to_run(tmp_path: Path) -> None:
    p = tmp_path / "flow.yaml"
    p.write_text("- init:\n    assign:\n      - i: 0\n- spin:\n    assign:\n"
                 "      - i: ${i + 1}\n    next: spin\n")
    code, _, err = _run(p, None)
    assert code == 125
    assert err.startswith(f"wfgen: {p}:4:3: execution FAILED at step 'spin': ")
    assert "ResourceLimitError" in err and "'?'" not in err


def test_describe_billing() -> None:
    from wfgen.engine.billing import describe_billing

    assert describe_billing(1000, 1000) == (
        "wfgen: billed steps: 1000 internal + 1000 external = 2000; $0.035000 at Cloud "
        "Workflows list prices (beyond the free tier)")
    assert describe_billing(0, 0).endswith("= 0; $0.000000 at Cloud Workflows list prices "
                                           "(beyond the free tier)")
