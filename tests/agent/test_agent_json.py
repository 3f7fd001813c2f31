"""Properties of the pure-bash JSON code in startup.sh and of the whole path
metadata -> startup.sh -> docker (stand-in) -> the container's argv and env.

JSON is written here by a deliberately varied encoder (raw UTF-8 or \\uXXXX in
either case, surrogate pairs, \\/ , any whitespace), since the workflow may
produce any valid JSON.
"""

from __future__ import annotations

import json
import random
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.agent.agentbed import RECORDER, Bed
from wfgen.job.resources import startup_dir

SCRIPT = str(startup_dir() / "startup.sh")
# Any text without NUL (argv and env cannot hold it) and without lone surrogates.
TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)))
KEYS = st.text(st.characters(exclude_characters="\x00=", exclude_categories=("Cs",)),
               min_size=1).filter(lambda k: not k.startswith(("PYTHON", "LD_")))
SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b",
         "\f": "\\f", "/": "\\/"}
NASTY = ["", "\n", "x\n\n", "$(touch /tmp/pwned)", "`id`", "'\"", "\\", "\\n", "-e",
         "--entrypoint=evil", "a b\tc", "é€😀", "\u2028", "=", "k=v", " ", "\x01\x1d\x1e\x1f",
         "\\u0041", "%s%n", "*", "~"]


def encode_str(s: str, rnd: random.Random) -> str:
    out = ['"']
    for ch in s:
        c = ord(ch)
        way = rnd.randrange(4)
        if ch in '"\\' or c < 0x20:
            if ch in SHORT and way < 2:
                out.append(SHORT[ch])
            else:
                out.append(f"\\u{c:04x}" if way % 2 else f"\\u{c:04X}")
        elif way == 0 and ch == "/":
            out.append("\\/")
        elif way == 1:
            if c > 0xFFFF:
                c -= 0x10000
                out.append(f"\\u{0xD800 + (c >> 10):04x}\\u{0xDC00 + (c & 0x3FF):04X}")
            else:
                out.append(f"\\u{c:04x}")
        else:
            out.append(ch)
    return "".join(out) + '"'


def encode(value: list[str] | dict[str, str], rnd: random.Random) -> str:
    def ws() -> str:
        return "".join(rnd.choice(" \t\n\r") for _ in range(rnd.choice([0, 0, 1, 3])))

    if isinstance(value, list):
        items = [ws() + encode_str(v, rnd) + ws() for v in value]
        return ws() + "[" + ",".join(items) + (ws() if not items else "") + "]" + ws()
    pairs = [ws() + encode_str(k, rnd) + ws() + ":" + ws() + encode_str(v, rnd) + ws()
             for k, v in value.items()]
    return ws() + "{" + ",".join(pairs) + (ws() if not pairs else "") + "}" + ws()


def bash_decode(js: str, kind: str) -> list[bytes] | None:
    """Run json_strings from the real script; None when it rejects the input."""
    prog = ('source "$1"; IFS= read -r -d "" js || true; json_strings "$js" "$2" || exit 3;'
            ' printf "%s\\0" "${#J[@]}" "${J[@]}"')
    r = subprocess.run(["bash", "-c", prog, "-", SCRIPT, kind], input=js.encode(),
                       capture_output=True)
    if r.returncode == 3:
        return None
    assert r.returncode == 0, r.stderr
    parts = r.stdout.split(b"\0")
    n = int(parts[0])
    return parts[1 : 1 + n]


def bash_quote(data: bytes) -> bytes:
    r = subprocess.run(["bash", "-c", 'source "$1"; IFS= read -r -d "" s || true; '
                        'json_quote "$s"; printf "%s" "$REPLY"', "-", SCRIPT],
                       input=data, capture_output=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


@settings(max_examples=150, deadline=None)
@given(st.lists(TEXT, max_size=6), st.integers(0, 2**32))
@example(NASTY, 0)
@example(NASTY, 1)
def test_decode_array(items: list[str], seed: int) -> None:
    js = encode(items, random.Random(seed))
    assert json.loads(js) == items  # the encoder itself is right
    assert bash_decode(js, "[") == [s.encode() for s in items]


@settings(max_examples=75, deadline=None)
@given(st.dictionaries(KEYS, TEXT, max_size=5), st.integers(0, 2**32))
@example({k or "K": v for k, v in zip(NASTY, reversed(NASTY), strict=True)}, 3)
def test_decode_object(env: dict[str, str], seed: int) -> None:
    js = encode(env, random.Random(seed))
    flat = [x.encode() for kv in env.items() for x in kv]
    assert bash_decode(js, "{") == flat


@pytest.mark.parametrize(("js", "kind"), [
    ("", "["), ("[", "["), ("]", "["), ("[1]", "["), ('["a",]', "["), ('["a" "b"]', "["),
    ('["a":"b"]', "["), ('["a"]x', "["), ('{"a"}', "{"), ('{"a","b"}', "{"),
    ('{"a":"b",}', "{"), ('["a"]', "{"), ('{"a":"b"}', "["), ('["\\x"]', "["),
    ('["\\u12"]', "["), ('["\\u00"]', "["), ('["\\u0000"]', "["), ('["a\\"]', "["),
    ('[null]', "["), ('["a", ["b"]]', "["), ('["a\x1eb"]', "["), ('["\x1f"]', "["),
])
def test_decode_rejects(js: str, kind: str) -> None:
    assert bash_decode(js, kind) is None


def test_decode_lone_surrogate_becomes_replacement_char() -> None:
    assert bash_decode('["\\ud800x", "\\udc00"]', "[") == ["\ufffdx".encode(), "\ufffd".encode()]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_decode_large_value_is_fast() -> None:
    value = "".join(chr(0x4E00 + i % 5000) + "\n\"\\😀" for i in range(2500))  # ~30 KB
    for ensure_ascii in (True, False):
        js = json.dumps([value, "x"], ensure_ascii=ensure_ascii)
        cpu0 = _children_cpu()
        assert bash_decode(js, "[") == [value.encode(), b"x"]
        assert _children_cpu() - cpu0 < 1.0  # CPU seconds: steady under a loaded machine


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300).filter(lambda b: b"\0" not in b) | TEXT.map(str.encode))
@example(b"\xed\xa0\x80 \xc0\xaf \xf4\x90\x80\x80 \xe2\x82 ok \xef\xbf\xbd")
def test_quote_gives_valid_json_for_any_bytes(data: bytes) -> None:
    out = bash_quote(data)
    value = json.loads(out.decode("utf-8"))  # valid UTF-8 and valid JSON
    try:
        assert value == data.decode("utf-8")
    except UnicodeDecodeError:
        kept = data.decode("utf-8", "ignore").replace("\ufffd", "")
        assert value.replace("\ufffd", "") == kept


# -- the whole path ---------------------------------------------------------------


@pytest.fixture
def path_bed(tmp_path: Path):
    b = Bed(tmp_path)
    b.receiver.start()
    yield b
    b.close()


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cmd=st.lists(TEXT, max_size=3), args=st.lists(TEXT, max_size=5),
       env=st.dictionaries(KEYS, TEXT, max_size=4), seed=st.integers(0, 2**32))
@example(cmd=NASTY[:8], args=NASTY[8:], env={"A": "x\n", "B": "$(x)", "-e": " "}, seed=5)
def test_argv_and_env_reach_the_container_exactly(path_bed: Bed, cmd: list[str],
                                                  args: list[str], env: dict[str, str],
                                                  seed: int) -> None:
    bed = path_bed
    env = {k.replace("=", "_"): v for k, v in env.items()}
    rnd = random.Random(seed)
    out = bed.tmp / "seen.json"
    out.unlink(missing_ok=True)
    bed.record.unlink(missing_ok=True)
    subprocess.run(["rm", "-rf", str(bed.state)], check=True)
    bed.receiver.posts.clear()
    command = [sys.executable, str(RECORDER), str(out), *cmd]
    bed.md.set_attribute("wfgen-command", encode(command, rnd))
    bed.md.set_attribute("wfgen-args", encode(args, rnd))
    bed.md.set_attribute("wfgen-env", encode(env, rnd))
    proc = bed.run()
    assert bed.receiver.accepted[0]["status"] == "succeeded", proc.log
    seen = json.loads(out.read_text())
    assert [bytes.fromhex(a) for a in seen["argv"]] == [a.encode() for a in cmd + args]
    got = {bytes.fromhex(k): bytes.fromhex(v) for k, v in seen["env"].items()}
    for k, v in env.items():
        assert got[k.encode()] == v.encode()
    # beside the job's env: PATH and HOME (the stand-in's), and the run's identity
    assert set(got) - {k.encode() for k in env} <= {b"PATH", b"HOME", b"WFGEN_RESTARTS"}
    assert got[b"WFGEN_RESTARTS"] == b"0"
