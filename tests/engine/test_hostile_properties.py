"""Property: any YAML document — aliases, tags, deep nesting, huge numbers — gives
`validate` and `run --local` a clear error or a result, within a time bound, and
never an internal error."""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wfgen.cli import main
from wfgen.job.validate import validate_text

TIME_BOUND_S = 20.0  # each takes milliseconds; only a runaway gets near this

_scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["1e300", "-1.0e309", ".nan", ".inf", "0x7FFFFFFFFFFFFFFF",
                     "0o777777777777777777777777", "2026-01-01", "2001-12-14t21:59:43.10-05:00",
                     "null", "~", "yes", "true", '"\\ud800"', '"\\ud83d\\ude00"', "'${1 + 1}'",
                     "'${x}'", "'${list.concat([], 1)}'", '""', "abc", "'a: b'"]),
)
_tags = st.sampled_from(["", "", "", "!!str ", "!!int ", "!!set ", "!!binary ", "!!omap ",
                         "!local ", "!!timestamp ", "!!float ", "!!map ", "!!seq "])


def _node(depth: int) -> st.SearchStrategy[str]:
    """A flow-style YAML node; may be tagged."""
    leaf = st.tuples(_tags, _scalars).map("".join)
    if depth <= 0:
        return leaf
    child = _node(depth - 1)
    seq = st.lists(child, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]")
    mapping = st.lists(st.tuples(st.from_regex(r"[a-z]{1,3}", fullmatch=True), child),
                       max_size=4).map(lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv)
                                       + "}")
    return st.one_of(leaf, st.tuples(_tags, st.one_of(seq, mapping)).map("".join))


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A workflow-shaped document with anchors, aliases (and merges), nesting, odd values."""
    levels = draw(st.integers(0, 8))
    width = draw(st.integers(1, 12))
    lines = ["main:", "  params: [args]", "  steps:", "    - a:", "        assign:",
             f"          - v0: &a0 {draw(_node(2))}"]
    for i in range(1, levels):
        kind = draw(st.sampled_from(["seq", "map", "merge"]))
        if kind == "seq":
            body = "[" + ", ".join([f"*a{i - 1}"] * width) + "]"
        elif kind == "map":
            body = "{" + ", ".join(f"k{j}: *a{i - 1}" for j in range(width)) + "}"
        else:
            body = "{" + ", ".join(f"k{j}: *a{i - 1}" for j in range(width)) + \
                   f", <<: {{m{i}: *a{i - 1}}}" + "}"
        lines.append(f"          - v{i}: &a{i} {body}")
    deep = draw(st.integers(0, 300))
    if deep:
        lines.append(f"          - deep: {'[' * deep}1{']' * deep}")
    last = f"*a{max(levels - 1, 0)}"
    returned = draw(st.sampled_from(["*a0", last, "${args}", "${v0}"]))
    lines.append(f"    - r:\n        return: {returned}")
    return "\n".join(lines) + "\n"


_DATA = [None, "1", '"\\ud800"', "1e999", "[" * 300 + "]" * 300,
         "123456789012345678901234567890", '{"a": [1]}']


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(doc=documents(), data=st.sampled_from(_DATA))
def test_any_yaml_gives_a_clear_error_or_a_result_in_time(tmp_path: Path, doc: str,
                                                          data: str | None) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(doc, encoding="utf-8")
    t0 = time.monotonic()
    findings = validate_text(doc, str(path))
    assert all(isinstance(f, str) and f for f in findings)
    assert not any("internal error" in f or "Traceback" in f for f in findings), findings
    out, err = io.StringIO(), io.StringIO()
    argv = ["run", "--local", str(path)] + (["--data", data] if data is not None else [])
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    took = time.monotonic() - t0
    assert took < TIME_BOUND_S, f"{took:.1f} s"
    said = err.getvalue()
    assert code in (0, 2, 125), said
    assert "internal error" not in said and "InternalError" not in said, said
    if code == 2:
        assert said.strip(), "a refusal must say why"
        assert said.startswith((f"wfgen: {path}:", "wfgen: --data:")), said  # file and line
    elif code == 125:
        assert "execution FAILED at step" in said
    else:
        assert out.getvalue().strip()
