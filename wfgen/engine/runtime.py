"""Executions: running a compiled workflow with its services and connectors.

steps.py compiles every step once into a closure `op(ctx) -> signal` and
scope.py runs blocks of them; this module owns an execution: subworkflow calls
and argument binding, builtin and connector dispatch, function references
(retry predicates), parallel branches on threads, cancellation, memory checks
and the step/billing counters, and the public `execute`/`prepare`. Errors
travel as WorkflowError exceptions and get the innermost failing step's name on
the way out.

Scopes: a subworkflow call gets a fresh variable dict. Variables first created
inside a for loop or an except block are deleted when it ends (so they do not
exist after it, as documented). A parallel branch runs in its own thread with
a BranchVars dict: reads fall through to the parent scope, writes are local
except for the names listed in `shared`, which go to the parent under that
variable's lock.

Step accounting: each step run (including each retry attempt's steps and
steps run in predicates, subworkflows and branches) counts once; the limit of
100,000 is one pool per execution that parallel threads lease from (lease),
and raises ResourceLimitError. Billing classification is in docs/engine.md."""

from __future__ import annotations

import inspect
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from wfgen import limits
from wfgen.engine import values as V
from wfgen.engine.connectors import (
    ConnectorRegistry,
    ConnectorResult,
    as_registry,
    is_connector_name,
    missing_connector,
)
from wfgen.engine.errors import WorkflowError, make_error, step_of_bug
from wfgen.engine.expr.compile import call_python
from wfgen.engine.scope import (
    END,
    Block,
    BranchVars,
    Cancelled,
    Ctx,
    Goto,
    Ret,
)
from wfgen.engine.services import HttpRequest, HttpResponse, RealClock, Services
from wfgen.engine.steps import Program
from wfgen.engine.syntax import WorkflowSyntaxError
from wfgen.engine.tree import Workflow
from wfgen.engine.values import FunctionRef

STEP_LEASE = 1000  # steps a parallel thread takes from the execution's quota at a time
STEP_LOG = 200  # call steps an execution remembers (the latest), for serve's dashboard


def unhandled_branch_error(failed: list[tuple[str, WorkflowError]]) -> WorkflowError:
    """The error a parallel step raises after its branches/iterations ran, when
    some failed (syntax/error-types, UnhandledBranchError). Each entry of
    `branches` has the branch name or iteration index as `id`, and the error
    as `payload` (JSON text: json.decode(text.encode(payload)) gives the value
    back) with a readable `context`."""
    from wfgen.engine.stdlib.json_ import to_json_text

    branches = []
    for bid, exc in failed:
        try:
            payload = to_json_text(V.to_json_compatible(exc.value))
        except WorkflowError:
            payload = to_json_text(exc.message)
        branches.append({"id": bid, "error": {"context": str(exc), "payload": payload}})
    return make_error("UnhandledBranchError",
                      "UnhandledBranchError: One or more branches or iterations encountered "
                      "an unhandled runtime error", branches=branches)


# ---- results --------------------------------------------------------------------


@dataclass
class ErrorInfo:
    """Why an execution failed: the error value and the step that raised it."""

    value: Any
    step: str | None
    subworkflow: str | None = None

    @property
    def tags(self) -> list[str]:
        return WorkflowError(self.value).tags

    @property
    def message(self) -> str:
        return WorkflowError(self.value).message

    def to_json(self) -> dict[str, Any]:
        return {"error": _jsonable(self.value), "step": self.step,
                "subworkflow": self.subworkflow}

    def __str__(self) -> str:
        return f"{WorkflowError(self.value)} (step {self.step})"


def _jsonable(v: Any) -> Any:
    try:
        return V.to_json_compatible(v)
    except WorkflowError:
        return repr(v)


@dataclass
class ExecutionResult:
    state: str  # SUCCEEDED, FAILED or CANCELLED
    result: Any = None
    error: ErrorInfo | None = None
    steps_internal: int = 0
    steps_external: int = 0
    duration: float = 0.0
    logs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return self.steps_internal + self.steps_external

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (for the local REST emulator and reports)."""
        out: dict[str, Any] = {
            "state": self.state,
            "steps": {"internal": self.steps_internal, "external": self.steps_external},
            "duration": self.duration,
        }
        if self.state == "SUCCEEDED":
            out["result"] = self.result
        if self.error is not None:
            out.update(self.error.to_json())
        return out


# ---- execution --------------------------------------------------------------------

_GOOGLE_HOSTS = ("googleapis.com", "cloud.goog", "appspot.com", "run.app",
                 "cloudfunctions.net")


def is_internal_host(host: str) -> bool:
    """Requests to these hosts are internal steps (pricing page); others external."""
    host = host.lower().rstrip(".")
    return any(host == h or host.endswith("." + h) for h in _GOOGLE_HOSTS)


class _CountingTransport:
    """Counts HTTP requests that bill as external steps, then delegates."""

    def __init__(self, inner: Any, exe: Execution) -> None:
        self.inner = inner
        self.exe = exe

    def send(self, request: HttpRequest) -> HttpResponse:
        host = urllib.parse.urlsplit(request.url).hostname or ""
        if not is_internal_host(host):
            with self.exe.lock:
                self.exe.external += 1
        return self.inner.send(request)


_SIGNATURES: dict[Any, tuple[set[str], set[str], bool]] = {}


def _signature(fn: Callable[..., Any]) -> tuple[set[str], set[str], bool]:
    """(accepted names, required names, takes **kwargs) of a builtin, after `rt`."""
    sig = _SIGNATURES.get(fn)
    if sig is None:
        params = list(inspect.signature(fn).parameters.values())[1:]
        accepted = {p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        required = {p.name for p in params if p.default is p.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
        var_kw = any(p.kind == p.VAR_KEYWORD for p in params)
        sig = (accepted, required, var_kw)
        _SIGNATURES[fn] = sig
    return sig


class Execution:
    """One run of a Program with its services, connectors and counters."""

    def __init__(self, program: Program, services: Services | None,
                 connectors: ConnectorRegistry | dict | None) -> None:
        self.program = program
        base = services or Services()
        self.cancel_event = threading.Event()
        self._ctxs: list[Ctx] = []
        self.rt = base.bind(self._call_ref_anywhere)
        self.rt.http_transport = _CountingTransport(base.http_transport, self)
        self.rt.clock = _CancellableClock(base.clock, self.cancel_event)
        self.rt.cancel_event = self.cancel_event
        self.connectors = as_registry(connectors)
        self.lock = threading.RLock()
        self.external = 0
        self.polling = 0
        self.extra_steps = 0
        # (subworkflow, step) of the latest call step: where the execution waits
        self.position: tuple[str, str] | None = None
        # (wall time, subworkflow, step) of the latest call steps, for serve's dashboard
        self.step_log: deque[tuple[float, str, str]] = deque(maxlen=STEP_LOG)
        self.calls = 0  # call steps entered, the step log's dropped ones included
        self.mem_since = 0
        self.pool = 0  # steps of the quota leased to no thread (see lease)
        self._fn_cache: dict[str, Callable[..., Any]] = {}
        self._var_locks: dict[tuple[int, str], threading.RLock] = {}

    def enter(self, here: tuple[str, str]) -> None:
        """A call step starts: the execution's position, and a step log entry
        (wall time, as serve's timestamps: the services' clock costs 4 us a call)."""
        self.position = here
        self.calls += 1
        self.step_log.append((time.time(), *here))

    def cancel(self) -> None:
        """Stop the execution: every thread stops at its next step or sleep."""
        self.cancel_event.set()
        with self.lock:
            for c in self._ctxs:
                c.cancelled = True
                c.limit = -1

    def _track(self, ctx: Ctx) -> Ctx:
        with self.lock:
            self._ctxs.append(ctx)
            if self.cancel_event.is_set():
                ctx.cancelled = True
                ctx.limit = -1
        return ctx

    def var_lock(self, vs: dict, name: str) -> Any:
        """The lock of shared variable `name` as seen from branch scope `vs`."""
        owner: Any = vs
        while type(owner) is BranchVars and name in owner.shared:
            owner = owner.parent
        key = (id(owner), name)
        lk = self._var_locks.get(key)
        if lk is None:
            with self.lock:
                lk = self._var_locks.setdefault(key, threading.RLock())
        return lk

    # -- function resolution

    def resolve_function(self, name: str) -> Callable[..., Any]:
        fn = self._fn_cache.get(name)
        if fn is not None:
            return fn
        from wfgen.engine.stdlib import BUILTINS

        conn = self.connectors.get(name)
        if conn is not None:
            fn = self._connector_positional(name)
        elif name in BUILTINS:
            fn = BUILTINS[name]
        elif is_connector_name(name):
            raise missing_connector(name)
        else:
            raise make_error("KeyError",
                             f"function not found: {name}")
        self._fn_cache[name] = fn
        return fn

    def _connector_positional(self, name: str) -> Callable[..., Any]:
        def call(rt: Any, *args: Any) -> Any:
            raise make_error("TypeError", f"{name} must be called from a call step with args")

        return call

    def call_named(self, name: str, args: Any, ctx: Ctx) -> Any:
        """A `call:` step: subworkflow, connector or builtin with named args, or
        positional ones (`args: [...]`, reference/stdlib/sys/log)."""
        if type(args) is list:
            return self._call_positional(name, args, ctx)
        if type(args) is not dict:
            raise make_error("TypeError", "args must be a map")
        prog = self.program
        if name in prog.subs:
            return self.call_subworkflow(name, None, args, ctx)
        conn = self.connectors.get(name)
        if conn is not None:
            return self._call_connector(name, conn, args)
        from wfgen.engine.stdlib import BUILTINS

        fn = BUILTINS.get(name)
        if fn is None:
            if is_connector_name(name):
                raise missing_connector(name)
            raise make_error("KeyError", f"function not found: {name}")
        accepted, required, var_kw = _signature(fn)
        for k in args:
            if k not in accepted and not var_kw:
                raise make_error("TypeError", f"{name}: unexpected argument '{k}'")
        for k in required:
            if k not in args:
                raise make_error("TypeError", f"{name}: missing argument '{k}'")
        return call_python(fn, name, ctx.rt, [], args)

    def _call_positional(self, name: str, args: list[Any], ctx: Ctx) -> Any:
        if name in self.program.subs:
            return self.call_subworkflow(name, args, None, ctx)
        if self.connectors.get(name) is not None or is_connector_name(name):
            raise make_error("TypeError", f"{name} takes named args (a map), not a list")
        fn = self.resolve_function(name)
        return call_python(fn, name, ctx.rt, args, None)

    def _call_connector(self, name: str, fn: Callable[..., Any], args: dict) -> Any:
        args = dict(args)
        cparams = args.pop("connector_params", None) or {}
        if getattr(fn, "bills_external", False):  # e.g. events.await_callback, even on timeout
            with self.lock:
                self.external += 1
        try:
            out = fn(self.rt, connector_params=cparams, **args)
        except WorkflowError:
            raise
        except TypeError as exc:
            raise make_error("TypeError", f"{name}: {exc}") from exc
        if isinstance(out, ConnectorResult):
            with self.lock:
                self.polling += out.polling_steps
                if out.external:
                    self.external += 1
            return out.value
        return out

    def call_subworkflow(self, name: str, pos: list[Any] | None, named: dict | None,
                         ctx: Ctx) -> Any:
        _sub, block, params = self.program.subs[name]
        if ctx.depth + 1 >= limits.MAX_CALL_DEPTH:
            raise make_error("RecursionError",
                             f"maximum call depth {limits.MAX_CALL_DEPTH} exceeded calling {name}")
        frame: dict[str, Any] = {}
        if pos is not None:
            if len(pos) > len(params):
                raise make_error("TypeError", f"{name} takes {len(params)} arguments, "
                                              f"{len(pos)} given")
            for i, (p, has_default, default) in enumerate(params):
                if i < len(pos):
                    frame[p] = V.deep_copy(pos[i])
                elif has_default and default is not None:
                    frame[p] = default(ctx)
                else:
                    raise make_error("TypeError", f"{name}: missing argument '{p}'")
        else:
            named = named or {}
            known = {p for p, _, _ in params}
            for k in named:
                if k not in known:
                    raise make_error("TypeError", f"{name}: unexpected argument '{k}'")
            for p, has_default, default in params:
                if p in named:
                    frame[p] = V.deep_copy(named[p])
                elif has_default and default is not None:
                    frame[p] = default(ctx)
                else:
                    raise make_error("TypeError", f"{name}: missing argument '{p}'")
        saved = ctx.vars
        ctx.frames.append(saved)
        ctx.vars = frame
        ctx.depth += 1
        try:
            sig = block.run(ctx)
        except WorkflowError as exc:
            if exc.subworkflow is None:
                exc.subworkflow = name
            raise
        finally:
            ctx.vars = saved
            ctx.frames.pop()
            ctx.depth -= 1
        return self._finish(sig, name)

    def _finish(self, sig: Any, name: str) -> Any:
        if sig is None or sig is END:
            return None
        if type(sig) is Ret:
            return sig.value
        if type(sig) is Goto:
            raise make_error("KeyError", f"step not found: {sig.name} (in {name})")
        raise make_error("TypeError", f"{sig!r} outside a loop in {name}")

    # -- function references (retry predicates, rt.call_function)

    def call_ref(self, ref: Any, args: list[Any], ctx: Ctx) -> Any:
        if isinstance(ref, str):
            ref = FunctionRef(ref)
        if not isinstance(ref, FunctionRef):
            raise make_error("TypeError", f"not a function: {V.type_name(ref)}")
        if ref.name in self.program.subs:
            return self.call_subworkflow(ref.name, args, None, ctx)
        fn = self.resolve_function(ref.name)
        return call_python(fn, ref.name, ctx.rt, args, None)

    def _call_ref_anywhere(self, ref: FunctionRef, args: list[Any]) -> Any:
        """rt.call_function from a builtin: runs in a fresh context of this execution."""
        ctx = Ctx(self, {}, limits.MAX_STEPS, depth=1)
        try:
            return self.call_ref(ref, args, ctx)
        finally:
            with self.lock:
                self.extra_steps += ctx.steps

    def predicate(self, pred: Any, error: Any, ctx: Ctx) -> bool:
        r = self.call_ref(pred, [error], ctx)
        if type(r) is not bool:
            raise make_error("TypeError", f"retry predicate returned {V.type_name(r)}, "
                                          "not a boolean")
        return r

    # -- parallel

    def run_branches(self, ctx: Ctx, units: list[tuple[Block, dict[str, Any], str]],
                     shared: frozenset[str], cap: int) -> None:
        """Run every branch/iteration to its end (continueAll, the only policy);
        then, if any failed, raise one UnhandledBranchError describing them all
        (syntax/parallel-steps, syntax/error-types)."""
        if not units:
            return
        parent_vars = ctx.vars
        with self.lock:  # the parent's unused steps go back to the execution's pool
            if not ctx.cancelled:
                self.pool += max(0, ctx.limit - ctx.steps)
                ctx.limit = ctx.steps
        ctxs: list[Ctx] = []
        for _block, local, _id in units:
            bv = BranchVars(parent_vars, shared)
            for k, v in local.items():
                dict.__setitem__(bv, k, v)
            c = Ctx(self, bv, 0, depth=ctx.depth, pdepth=ctx.pdepth + 1)  # leases on step 1
            c.frames = [*ctx.frames, parent_vars]
            ctxs.append(self._track(c))
        errors: list[tuple[int, WorkflowError]] = []

        def run_one(i: int) -> None:
            c = ctxs[i]
            try:
                sig = units[i][0].run(c)
                if type(sig) is Ret:
                    raise make_error("TypeError", "return is not allowed in a parallel branch")
                if type(sig) is Goto:
                    raise make_error("KeyError", f"cannot jump out of a parallel branch to "
                                                 f"{sig.name}")
            except WorkflowError as exc:
                with self.lock:
                    errors.append((i, exc))
            except Cancelled:
                return
            finally:  # a finished thread's unused steps go back at once
                with self.lock:
                    if not c.cancelled and c.limit > c.steps:
                        self.pool += c.limit - c.steps
                        c.limit = c.steps

        workers = min(cap, len(units))
        if workers == 1:
            for i in range(len(units)):
                run_one(i)
        else:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="wf-branch") as pool:
                list(pool.map(run_one, range(len(units))))
        with self.lock:
            for c in ctxs:
                self._ctxs.remove(c)
                if not c.cancelled:
                    self.pool += max(0, c.limit - c.steps)
            ctx.steps += sum(c.steps for c in ctxs)
            if not ctx.cancelled:  # the parent leases again (main: all that is left)
                take = self.pool if ctx.pdepth == 0 else min(STEP_LEASE, self.pool)
                self.pool -= take
                ctx.limit = ctx.steps + take
        if self.cancel_event.is_set():
            raise Cancelled()
        if errors:
            errors.sort(key=lambda e: e[0])
            raise unhandled_branch_error([(units[i][2], exc) for i, exc in errors])

    def lease(self, ctx: Ctx) -> bool:
        """More steps for a thread that used its lease, from the execution's quota."""
        with self.lock:
            if ctx.cancelled or self.pool <= 0:
                return False
            # Smaller leases as the quota runs out, so that little of it sits
            # unused in other threads when one thread finds the pool empty.
            take = min(STEP_LEASE, self.pool // 32 + 1, self.pool)
            self.pool -= take
            ctx.limit += take
            return True

    # -- memory

    def check_memory(self, ctx: Ctx, pending: Any) -> None:
        total = V.size_of(pending)
        seen: set[int] = set()
        scopes: list[dict] = [*ctx.frames, ctx.vars]
        for vs in scopes:
            d: Any = vs
            while d is not None:
                if id(d) not in seen:
                    seen.add(id(d))
                    total += sum(V.size_of(x) for x in dict.values(d))
                d = d.parent if type(d) is BranchVars else None
        if total > limits.MAX_VARIABLE_BYTES:
            raise make_error("ResourceLimitError",
                             f"variables use about {total} bytes; the limit is "
                             f"{limits.MAX_VARIABLE_BYTES} (512 KB)")

    # -- entry

    def run(self, argument: Any) -> ExecutionResult:
        start = time.monotonic()
        _sub, block, params = self.program.subs["main"]
        frame: dict[str, Any] = {}
        ctx = self._track(Ctx(self, frame, limits.MAX_STEPS))
        if params:
            name, has_default, default = params[0]
            if argument is None and has_default and default is not None:
                frame[name] = default(ctx)
            else:
                frame[name] = V.from_data(argument)
        logs_from = len(self.rt.log_entries)
        state, result, error = "SUCCEEDED", None, None
        try:
            sig = block.run(ctx)
            result = V.to_json_compatible(self._finish(sig, "main"))
            if V.size_of(result) > limits.MAX_VARIABLE_BYTES:
                raise make_error("ResourceLimitError", "the result is larger than "
                                 f"{limits.MAX_VARIABLE_BYTES} bytes (512 KB)")
        except WorkflowError as exc:
            state = "FAILED"
            error = ErrorInfo(exc.value, exc.step, exc.subworkflow or "main")
        except Cancelled:
            state = "CANCELLED"
            error = ErrorInfo({"message": "the execution was cancelled",
                               "tags": ["CancelledError"]}, None)
        except RecursionError:
            state = "FAILED"
            error = ErrorInfo({"message": "Python recursion limit reached",
                               "tags": ["RecursionError"]}, None)
        except Exception as exc:  # not a Workflows error: a bug in Python code
            state = "FAILED"
            error = ErrorInfo({"message": f"internal error: {type(exc).__name__}: {exc}",
                               "tags": ["InternalError"]}, step_of_bug(exc))
        if self.cancel_event.is_set() and state == "FAILED":
            state = "CANCELLED"  # whatever failed did so because it was cancelled
        total = ctx.steps + self.extra_steps
        external = min(self.external, total)
        return ExecutionResult(
            state=state,
            result=result,
            error=error,
            steps_internal=total - external + self.polling,
            steps_external=external,
            duration=time.monotonic() - start,
            logs=list(self.rt.log_entries[logs_from:]),
        )


class _CancellableClock:
    """The services' clock, but a cancelled execution's sleeps end at once."""

    def __init__(self, base: Any, event: threading.Event) -> None:
        self.base = base
        self.event = event

    def now(self) -> float:
        return float(self.base.now())

    def sleep(self, seconds: float) -> None:
        if self.event.is_set():
            raise Cancelled()
        if isinstance(self.base, RealClock):
            if seconds > 0 and self.event.wait(seconds):
                raise Cancelled()
            return
        self.base.sleep(seconds)
        if self.event.is_set():
            raise Cancelled()


_COMPILE_LOCK = threading.Lock()


def compile_workflow(wf: Workflow) -> Program:
    """Compile once per Workflow object (cached on it)."""
    prog = wf.compiled
    if prog is None:
        with _COMPILE_LOCK:
            prog = wf.compiled
            if prog is None:
                try:
                    prog = Program(wf)
                except WorkflowSyntaxError as exc:
                    exc.filename = wf.filename
                    raise
                wf.compiled = prog
    return prog


def execute(
    workflow: Workflow,
    argument: Any = None,
    *,
    services: Services | None = None,
    connectors: ConnectorRegistry | dict[str, Callable[..., Any]] | None = None,
) -> ExecutionResult:
    """Run `workflow` once with `argument`; never raises for workflow errors."""
    return prepare(workflow, services=services, connectors=connectors).run(argument)


def prepare(
    workflow: Workflow,
    *,
    services: Services | None = None,
    connectors: ConnectorRegistry | dict[str, Callable[..., Any]] | None = None,
) -> Execution:
    """An Execution to `run(argument)` later, e.g. on a thread, so it can be cancel()ed.
    The standard library is imported when the workflow first calls into it."""
    return Execution(compile_workflow(workflow), services, connectors)

