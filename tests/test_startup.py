"""Start only what a run needs: a workflow that makes no VM and no callback
imports neither local Compute Engine nor the callback server (nor http.server,
nor google.*); the parser imports only the chosen command's module; a loopback
server's stop ends its thread at once. Module boundaries, not timings: each
probe runs in a fresh interpreter and prints sys.modules."""

from __future__ import annotations

import importlib
import json
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import ROOT
from wfgen.cli import COMMANDS, _module_name

# modules a run without VMs and callbacks must never load (the VM machinery,
# whatever modules local Compute Engine is split into, the loopback servers)
VM_MACHINERY = ("wfgen.local.compute", "wfgen.local.compute_connectors",
                "wfgen.local.compute_lifecycle", "wfgen.local.compute_records",
                "wfgen.local.vm", "wfgen.local.metadata", "wfgen.local.callbacks",
                "wfgen.local.loopback", "http.server")

NO_VM = """\
main:
  params: [args]
  steps:
    - init:
        assign:
          - total: 0
          - words: ${text.split(args.sentence, " ")}
    - loop:
        for:
          value: w
          in: ${words}
          steps:
            - add:
                assign:
                  - total: ${total + len(w)}
    - done:
        return: {"letters": "${total}", "n": "${len(words)}"}
"""

ONE_CALLBACK = """\
main:
  steps:
    - make:
        call: events.create_callback_endpoint
        args:
          http_callback_method: POST
        result: cb
    - done:
        return: ${text.match_regex(cb.url, "^http://127[.]0[.]0[.]1:[0-9]+/v1/projects/")}
"""

PROBE = """\
import json, sys
from wfgen.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _probe(*argv: str) -> tuple[int, str, set[str]]:
    """(exit status, stdout, modules loaded) of `wfgen ARGV` in a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr
    return report["code"], proc.stdout, set(report["modules"])


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(n for n in names if n in modules)


def _google(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m == "google" or m.startswith("google."))


def test_a_run_without_vms_or_callbacks_loads_no_vm_machinery(tmp_path: Path) -> None:
    wf = tmp_path / "words.workflows.yaml"
    wf.write_text(NO_VM)
    code, out, modules = _probe("run", "--local", str(wf),
                                "--data", json.dumps({"sentence": "to be or not"}))
    assert code == 0
    assert json.loads(out) == {"letters": 9, "n": 4}
    assert _loaded(modules, VM_MACHINERY) == []
    assert _google(modules) == []
    assert "wfgen.engine.runtime" in modules  # the probe did run the engine


def test_a_callback_starts_the_callback_server_and_still_no_vm_machinery(
        tmp_path: Path) -> None:
    wf = tmp_path / "cb.workflows.yaml"
    wf.write_text(ONE_CALLBACK)
    code, out, modules = _probe("run", "--local", str(wf))
    assert code == 0
    assert json.loads(out) is True  # a real loopback URL of the callback server
    assert _loaded(modules, ("wfgen.local.callbacks", "http.server")) == [
        "http.server", "wfgen.local.callbacks"]
    assert _loaded(modules, VM_MACHINERY[:6]) == []


def test_validate_parses_and_lints_without_the_runtime() -> None:
    code, out, modules = _probe("validate", "examples/hello.yaml")
    assert code == 0 and "ok" in out.lower()
    assert "wfgen.engine.lint" in modules  # the probe did lint the workflow
    assert _loaded(modules, ("wfgen.engine.runtime", "wfgen.engine.services",
                             "wfgen.engine.connectors")) == []
    assert _loaded(modules, VM_MACHINERY) == [] and _google(modules) == []


def test_help_imports_no_command_module() -> None:
    code, out, modules = _probe("--help")
    assert code == 0
    assert all(name in out for name in COMMANDS)
    assert sorted(m for m in modules if m.startswith("wfgen.cli.")) == []


def test_a_command_imports_only_its_own_module() -> None:
    code, out, modules = _probe("generate", "--help")
    assert code == 0 and "wfgen generate" in out
    assert sorted(m for m in modules if m.startswith("wfgen.cli.")) == ["wfgen.cli.generate"]


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_command_table_holds_each_modules_help(command: str) -> None:
    module = importlib.import_module(f"wfgen.cli.{_module_name(command)}")
    assert COMMANDS[command] == module.HELP


def test_a_loopback_server_stops_at_once_and_frees_its_port() -> None:
    from wfgen.local.loopback import LoopbackServer, Response

    class Hello:
        def handle(self, request):
            return Response.of_json({"path": request.path})

    before = set(threading.enumerate())
    server = LoopbackServer([Hello()]).start()
    serving = [t for t in threading.enumerate() if t not in before]
    port = server.port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert b'{"path": "/x"}' in conn.makefile("rb").read()
    server.stop()
    assert serving and not any(t.is_alive() for t in serving)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
