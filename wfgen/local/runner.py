"""`wfgen run --local JOB.yaml`: the whole lifecycle of a job on this machine.

Generates the job's workflow, runs that very YAML on wfgen's engine with local
Compute Engine (wfgen.local.compute) and callbacks (wfgen.local.callbacks)
plugged in, streams the lifecycle and the job's output to stderr, prints the
result JSON on stdout and exits as DESIGN.md says: 0 on success, the
container's exit code when it ran and failed, 125 otherwise. Ctrl-C deletes
every local VM before exiting; so does any error."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, TextIO

from wfgen.engine.command import data_argument
from wfgen.errors import EXIT_NOT_RUN, Interrupted, UsageError
from wfgen.job.spec import ENV_NAME_RE, IMAGE_RE
from wfgen.local.faults import Faults

ENV_NAME = re.compile(ENV_NAME_RE)
JOB_ARGUMENT_KEYS = {"image": "a string", "command": "a list of strings",
                     "args": "a list of strings", "script": "a string",
                     "env": "a map of strings"}


def parse_job_argument(data: str | None) -> dict[str, Any] | None:
    """The --data JSON for a job: an object of known keys with the right types."""
    if data is None:
        return None
    try:
        value = data_argument(data)  # the engine's rules: 64-bit ints, no lone surrogates
    except ValueError as exc:
        raise UsageError(f"--data: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError('--data must be a JSON object, e.g. {"args": ["--lr", "0.1"]}')
    for key, item in value.items():
        if key not in JOB_ARGUMENT_KEYS:
            raise UsageError(f"--data: unknown key {key!r}; known: {', '.join(JOB_ARGUMENT_KEYS)}")
        kind = JOB_ARGUMENT_KEYS[key]
        ok = (isinstance(item, str) if kind == "a string" else
              isinstance(item, list) and all(isinstance(x, str) for x in item)
              if kind == "a list of strings" else
              isinstance(item, dict) and all(isinstance(x, str) for x in item.values()))
        if not ok:
            raise UsageError(f"--data: {key} must be {kind}")
        texts = [item] if isinstance(item, str) else [*item, *(
            item.values() if isinstance(item, dict) else [])]
        if any("\x00" in text for text in texts):
            raise UsageError(f"--data: {key} may not contain the NUL character")
        if key == "env":
            bad = [name for name in item if not ENV_NAME.fullmatch(name)]
            if bad:
                raise UsageError(f"--data: environment variable name {bad[0]!r} must be "
                                 "letters, digits and _")
    if "args" in value and "script" in value:
        raise UsageError("--data may give args or script, not both")
    if "command" in value and "script" in value:
        raise UsageError("--data: script runs with sh -c; it cannot be combined with command")
    if "image" in value and not re.fullmatch(IMAGE_RE, value["image"]):
        raise UsageError(f"--data: {value['image']!r} is not an image reference")
    return value


@dataclass
class Console:
    """Lifecycle lines and the VM's output, to stderr, one writer at a time."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    started: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False  # the reader went away (a closed pipe): go on without output

    def _write(self, text: str) -> None:
        with self.lock:
            if self.closed:
                return
            try:
                print(text, file=self.stream, flush=True)
            except (OSError, ValueError):  # never let a closed stderr stop the run
                self.closed = True

    def notify(self, message: str) -> None:
        self._write(f"wfgen [{time.monotonic() - self.started:7.2f}s] {message}")

    def output(self, vm: str, line: str) -> None:
        self._write(f"  {vm} | {line}")


def exit_status(state: str, result: Any, error: Any) -> int:
    """0 success; the container's exit code when it ran and failed; else 125."""
    if state == "SUCCEEDED":
        return 0
    job = error.get("result") if isinstance(error, dict) else None
    if isinstance(job, dict) and job.get("status") == "failed":
        code = job.get("exit_code")
        if isinstance(code, int) and not isinstance(code, bool) and 0 < code < 256:
            return code
    return EXIT_NOT_RUN


def run_job_command(path: str, data: str | None, *, stats: bool = False,
                    faults: list[str] | None = None, heartbeat: str | None = None,
                    timeout: str | None = None, console: Console | None = None) -> int:
    from wfgen.job.render import render_workflow
    from wfgen.job.spec import budget_problem, format_duration, load_spec, parse_duration

    spec = load_spec(path)
    for key, value in (("heartbeat", heartbeat), ("timeout", timeout)):
        if value is not None:
            try:
                spec.seconds[key] = parse_duration(value)
            except ValueError as exc:
                raise UsageError(f"--{key}: {exc}") from None
            spec.data[key] = value
    if spec.heartbeat_s >= spec.timeout_s:
        raise UsageError(f"the heartbeat ({format_duration(spec.heartbeat_s)}) must be shorter "
                         f"than the timeout ({format_duration(spec.timeout_s)}); give "
                         "--heartbeat too")
    problem = budget_problem(spec)
    if problem:
        raise UsageError(problem)
    argument = parse_job_argument(data)
    parsed_faults = Faults.parse(faults or [])
    text = render_workflow(spec)
    try:
        outcome = run_generated(text, spec, argument, parsed_faults, console or Console())
    except Interrupted as exc:
        print_result({"status": "cancelled", "exit_code": None, "message": str(exc)})
        raise
    state, result, error, steps = outcome
    print_result(result_map(state, result, error))
    if stats:
        from wfgen.engine.billing import describe_billing

        print(describe_billing(*steps), file=sys.stderr)
    return exit_status(state, result, error)


# After a stop signal the VMs' shutdown scripts get this long (their reports may be
# retrying against an unreachable callback), so that one Ctrl-C exits within 2 s.
STOP_GRACE_S = 1.0


def hurry_after(seconds: float, hurry: Any) -> threading.Timer:
    """Call hurry() (cut shutdown scripts short) after `seconds`, on a daemon timer."""
    timer = threading.Timer(seconds, hurry)
    timer.daemon = True
    timer.start()
    return timer


def result_map(state: str, result: Any, error: Any) -> dict[str, Any]:
    """The job's result map; an execution that failed before the job could give one
    (an insert refused for quota, say) gets one here, so every ending prints one."""
    job = result if state == "SUCCEEDED" else (
        error.get("result") if isinstance(error, dict) else None)
    if isinstance(job, dict):
        return job
    message = error.get("message") if isinstance(error, dict) else error
    return {"status": "cancelled" if state == "CANCELLED" else "error", "exit_code": None,
            "message": str(message), "error": error}


def print_result(job: dict[str, Any]) -> None:
    """The result map on stdout (a reader that went away costs nothing)."""
    try:
        print(json.dumps(job, indent=2, ensure_ascii=False, default=str), flush=True)
    except BrokenPipeError:  # nobody reads the result; the exit status still tells
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def run_generated(text: str, spec: Any, argument: Any, faults: Faults, console: Console
                  ) -> tuple[str, Any, Any, tuple[int, int]]:
    """Run a generated workflow with the local services; always deletes every VM."""
    from wfgen.engine import load_workflow, prepare
    from wfgen.engine.connectors import ConnectorRegistry
    from wfgen.engine.services import RealClock, Services, default_env
    from wfgen.local.callbacks import CallbackServer
    from wfgen.local.compute import LocalCompute
    from wfgen.local.vm import container_engine_works

    workflow = load_workflow(text, f"{spec.path} (generated)")
    use_engine = container_engine_works()
    if not use_engine:
        root = " AS ROOT: it can change this machine" if hasattr(os, "geteuid") and (
            os.geteuid() == 0) else ""
        console.notify(f"no container engine here: the image {spec.data['container']['image']} "
                       "is not used; the command runs as a host process in a scratch directory"
                       f"{root}")
    compute = LocalCompute(notify=console.notify, output=console.output, faults=faults,
                           use_container_engine=use_engine)

    def token_ok(token: str) -> bool:
        return any(vm.metadata.check_token(token) for vm in list(compute.all_vms))

    def on_report(url: str, event: dict[str, Any]) -> None:
        body = event["http_request"]["body"]
        if isinstance(body, dict):
            console.notify(f"report received: status {body.get('status')}, "
                           f"exit code {body.get('exit_code')}")

    callbacks = CallbackServer(token_ok, refuse_first=faults.refuse_callbacks,
                               on_request=on_report).start()
    env = default_env(project_id=spec.data["project"] or "local-project",
                      location=spec.data["location"], workflow_id=spec.name,
                      execution_id=str(uuid.uuid4()))
    services = Services(clock=RealClock(), env=env,
                        log_sink=lambda entry: console.notify(_log_line(entry)))
    registry = ConnectorRegistry()
    compute.register(registry)
    registry.register("events.create_callback_endpoint",
                      lambda rt, connector_params=None, http_callback_method="POST", **_:
                      callbacks.create_endpoint(rt.env, http_callback_method))

    def await_callback(rt: Any, connector_params: Any = None, callback: Any = None,
                       timeout: float = 43200, **_: Any) -> Any:
        return callbacks.await_request(callback, timeout, getattr(rt, "cancel_event", None))

    await_callback.bills_external = True  # type: ignore[attr-defined]
    registry.register("events.await_callback", await_callback)

    box: dict[str, Any] = {}
    execution = prepare(workflow, services=services, connectors=registry)

    def work() -> None:
        try:
            box["execution"] = execution.run(argument)
        except BaseException as exc:  # reported by the main thread
            box["exception"] = exc

    execution_id = env["GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID"]
    console.notify(f"running {spec.name} locally (execution {execution_id})")
    worker = threading.Thread(target=work, name="wfgen-execution", daemon=True)
    with _stop_signals(on_repeat=compute.hurry_up) as stopped:
        worker.start()
        try:
            while worker.is_alive() and not stopped:
                worker.join(timeout=0.1)
        finally:
            if stopped:
                signum = stopped[0]
                console.notify(f"{signal.Signals(signum).name}: stopping the workflow, "
                               "then deleting every local VM")
                execution.cancel()
                hurry_after(STOP_GRACE_S, compute.hurry_up)
            left = compute.shutdown_all()  # also refuses new VMs from here on
            callbacks.stop()
            if left:
                console.notify(f"deleted {', '.join(left)}")
        if stopped:
            raise Interrupted(stopped[0], "interrupted: the workflow was stopped and every "
                              "local VM deleted")
    if "exception" in box:
        raise box["exception"]
    outcome = box["execution"]
    error = outcome.error
    if outcome.state != "SUCCEEDED":
        console.notify(f"execution failed: {_describe_error(error)}")
    else:
        console.notify("execution succeeded")
    return (outcome.state, outcome.result, _error_value(error),
            (outcome.steps_internal, outcome.steps_external))


def _error_value(error: Any) -> Any:
    """The raised value, whether the engine hands it over bare or wrapped."""
    if error is None:
        return None
    if isinstance(error, dict) and "value" in error and ("step" in error or "step_name" in error):
        return error["value"]
    return getattr(error, "value", error)


def _describe_error(error: Any) -> str:
    value = _error_value(error)
    message = value.get("message") if isinstance(value, dict) else value
    step = (error.get("step") if isinstance(error, dict) else getattr(error, "step", None))
    return f"{message}" + (f" (step {step})" if step else "")


def _log_line(entry: dict[str, Any]) -> str:
    """A sys.log entry as one readable line: its message first, then the rest."""
    severity = entry.get("severity", "DEFAULT")
    payload = next((entry[k] for k in ("json", "data", "text") if k in entry), entry)
    if isinstance(payload, dict) and "message" in payload:
        rest = {k: v for k, v in payload.items() if k != "message"}
        extra = f" {json.dumps(rest, ensure_ascii=False, default=str)}" if rest else ""
        return f"{severity}: {payload['message']}{extra}"
    if isinstance(payload, str):
        return f"{severity}: {payload}"
    return f"{severity}: {json.dumps(payload, ensure_ascii=False, default=str)}"


@contextlib.contextmanager
def _stop_signals(on_repeat: Any = None) -> Any:
    """Turn SIGINT, SIGTERM and SIGHUP into a stop request (the list gets the
    signal number). The cleanup that follows always finishes; a second signal
    only hurries it (`on_repeat`: shutdown scripts are cut short)."""
    stopped: list[int] = []
    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def handler(signum: int, _frame: Any) -> None:
        if not stopped:
            stopped.append(signum)
        elif on_repeat is not None:
            on_repeat()

    try:
        previous = {sig: signal.signal(sig, handler) for sig in watched}
    except ValueError:  # not the main thread: no signal handling
        yield stopped
        return
    try:
        yield stopped
    finally:
        for sig in watched:
            signal.signal(sig, previous[sig])
