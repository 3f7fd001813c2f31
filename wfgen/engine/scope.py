"""Runtime state shared by compiled steps: signals, scopes, contexts, blocks.

A compiled step is `op(ctx) -> signal`: None falls through, an int jumps inside
the same block, `Goto` carries a step name outward to the enclosing block that
has it, END/BREAK/CONTINUE/Ret end a subworkflow, a loop iteration or a loop.
`Ctx` is one thread of execution (the main flow or a parallel branch); its
step counter and limit make the one comparison per step that also serves
cancellation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from wfgen import limits
from wfgen.engine.errors import STEP_NOTE, WorkflowError, make_error, step_of_bug

Op = Callable[["Ctx"], Any]


class Execution(Protocol):
    """What a context and the compiled steps use of the running execution
    (wfgen.engine.runtime.Execution), named here so that this module, which
    runtime and steps both import, imports neither."""

    rt: Any
    position: Any
    mem_since: int

    def lease(self, ctx: Ctx) -> bool: ...
    def call_named(self, name: str, args: Any, ctx: Ctx) -> Any: ...
    def run_branches(self, ctx: Ctx, units: Any, shared: Any, cap: Any) -> Any: ...
    def predicate(self, *args: Any) -> Any: ...
    def var_lock(self, vs: Any, name: str) -> Any: ...
    def check_memory(self, ctx: Ctx, value: Any) -> None: ...


# ---- signals ----------------------------------------------------------------


class _Signal:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


END = _Signal("END")
BREAK = _Signal("BREAK")
CONTINUE = _Signal("CONTINUE")


class Goto:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class Ret:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Cancelled(BaseException):
    """Stops a parallel branch after a sibling failed (not catchable by except)."""




# ---- contexts and scopes ----------------------------------------------------


class BranchVars(dict):
    """Variables of a parallel branch: local writes, parent reads, shared writes."""

    __slots__ = ("parent", "shared")

    def __init__(self, parent: dict, shared: frozenset[str]) -> None:
        super().__init__()
        self.parent = parent
        self.shared = shared

    def __missing__(self, key: str) -> Any:
        return self.parent[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key in self.shared:
            self.parent[key] = value
        else:
            dict.__setitem__(self, key, value)


class Ctx:
    """One thread of execution: the main flow or one parallel branch."""

    __slots__ = ("cancelled", "depth", "exe", "frames", "limit", "pdepth", "rt", "steps", "vars")

    def __init__(self, exe: Execution, vars_: dict, limit: int, depth: int = 0,
                 pdepth: int = 0) -> None:
        self.exe = exe
        self.rt = exe.rt
        self.vars = vars_
        self.steps = 0
        self.limit = limit
        self.depth = depth
        self.pdepth = pdepth
        self.cancelled = False
        self.frames: list[dict] = []


def slow_check(ctx: Ctx) -> None:
    """Called when ctx.steps passes ctx.limit: cancellation, the end of a
    parallel thread's lease of steps, or the execution's step quota (counted
    across all threads)."""
    if ctx.cancelled:
        raise Cancelled()
    if ctx.exe.lease(ctx):  # a parallel thread's lease ran out; the quota has more
        return
    raise make_error("ResourceLimitError",
                     f"the execution ran more than {limits.MAX_STEPS} steps")


# ---- blocks -------------------------------------------------------------------


class Block:
    """A compiled list of steps."""

    __slots__ = ("index", "names", "ops")

    def __init__(self, names: list[str], ops: list[Op]) -> None:
        self.names = tuple(names)
        self.ops = tuple(ops)
        self.index: dict[str, int] = {}
        for i, n in enumerate(names):
            self.index.setdefault(n, i)

    def run(self, ctx: Ctx) -> Any:
        ops = self.ops
        n = len(ops)
        pc = 0
        while pc < n:
            ctx.steps += 1
            if ctx.steps > ctx.limit:
                try:
                    slow_check(ctx)
                except WorkflowError as exc:  # the quota: name the step about to run
                    exc.step = self.names[pc]
                    raise
            try:
                sig = ops[pc](ctx)
            except WorkflowError as exc:
                if exc.step is None:
                    exc.step = self.names[pc]
                raise
            except Exception as exc:  # a bug in a builtin or connector: name the step
                if step_of_bug(exc) is None:
                    exc.add_note(STEP_NOTE + self.names[pc])
                raise
            if sig is None:
                pc += 1
            elif type(sig) is int:
                pc = sig
            elif type(sig) is Goto:
                i = self.index.get(sig.name)
                if i is None:
                    return sig
                pc = i
            else:
                return sig
        return None


