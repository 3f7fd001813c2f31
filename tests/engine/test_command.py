"""`wfgen run --local` on any workflow file: stdout JSON, exit statuses."""

from __future__ import annotations

import io
import json
from pathlib import Path

from wfgen.engine import Services, VirtualClock
from wfgen.engine.command import run_workflow_command


def _run(path: Path, data: str | None, **kw: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_workflow_command(str(path), data, stdout=out, stderr=err,
                                services=Services(clock=VirtualClock()), **kw)
    return code, out.getvalue(), err.getvalue()


def test_success_prints_result_json(tmp_path: Path) -> None:
    p = tmp_path / "w.yaml"
    p.write_text("main:\n  params: [a]\n  steps:\n    - r:\n        return: ${a.x * 2}\n")
    code, out, err = _run(p, '{"x": 21}', stats=True)
    assert code == 0
    assert json.loads(out) == 42
    assert "steps: 1 internal, 0 external" in err


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
