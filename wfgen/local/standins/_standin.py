"""Stand-ins for the COS tools the VM agent calls: docker, toolbox,
cos-extensions, docker-credential-gcr, and wfgen-poweroff (the agent's
WFGEN_POWEROFF: it leaves the file powered-off in WFGEN_STATE_DIR).

The agent's tests and the local runtime put this directory first on PATH, so
the real startup script runs unchanged. Every call is appended as one JSON line
to $WFGEN_STANDIN_RECORD (when set): {"tool", "argv", "time", "pid"}.

Knobs (environment):
  WFGEN_STANDIN_RECORD   JSON-lines file of calls.
  WFGEN_STANDIN_FAIL     words "TOOL" or "TOOL:SUBCOMMAND", optionally "=CODE":
                         those calls fail (e.g. "docker:pull toolbox:apt-get=100").
  WFGEN_STANDIN_SLOW     words "TOOL[:SUBCOMMAND]=SECONDS": those calls sleep first.
  WFGEN_STANDIN_INHERIT_ENV=1  the "container" sees the caller's whole
                         environment (default: PATH and HOME only, plus --env).

`docker run` runs the container's argv as a host process (output streamed,
SIGTERM/INT/HUP forwarded to it as docker forwards them to PID 1), with exactly
the --env values given, --entrypoint honoured, and docker's exit status: the
process's own, or 128+N when killed by signal N; 125 for a bad invocation,
126/127 when the command cannot be executed. The stand-in makes itself a child
subreaper, so processes the job leaves behind become its children, and kills
them when the job's main process exits, as a container's processes end with its
PID 1 (no orphan keeps the output pipe open). Everything stays in the caller's
process group: killing a local VM's group kills its "containers" too.

A process cannot see a mount, so `--volume=HOST:PATH` is honoured by naming:
an --env value or the --workdir at or below PATH is given as the same place
below HOST (a job reads $WFGEN_SCRATCH_DIR, not a fixed /scratch).

`docker run --cidfile=F` writes a container id (64 hex digits that name the
stand-in's own pid and its job's), which `docker kill [--signal=S] ID`
(the signal goes to the job's main process, as docker sends it to PID 1) and
`docker wait ID` (until the container is gone; prints its exit status, kept
in $TMPDIR/wfgen-standin-containers) take, as the real commands do.
"""

from __future__ import annotations

# Only what every call needs is imported here: a local VM runs this a few times,
# and a fan-out runs thousands of VMs. The rest is imported where it is used
# (json and contextlib alone cost more than the interpreter's own start).
import os
import sys
import time

OK_SUBCOMMANDS = {"version", "info", "rm", "ps", "images", "inspect", "login", "logs", "stop"}


def record(tool: str, argv: list[str]) -> None:
    path = os.environ.get("WFGEN_STANDIN_RECORD")
    if not path:
        return
    import json

    line = json.dumps({"tool": tool, "argv": argv, "time": time.time(), "pid": os.getpid()})
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def _matches(spec: str, tool: str, sub: str) -> tuple[bool, str]:
    """Whether a knob word names this call; returns (match, value after '=')."""
    name, _, value = spec.partition("=")
    return name in (tool, f"{tool}:{sub}"), value


def knob_fail(tool: str, sub: str) -> int | None:
    """The exit status this call must fail with, or None."""
    for spec in os.environ.get("WFGEN_STANDIN_FAIL", "").split():
        hit, value = _matches(spec, tool, sub)
        if hit:
            return int(value) if value else (125 if (tool, sub) == ("docker", "run") else 1)
    return None


def knob_slow(tool: str, sub: str) -> float:
    for spec in os.environ.get("WFGEN_STANDIN_SLOW", "").split():
        hit, value = _matches(spec, tool, sub)
        if hit and value:
            return float(value)
    return 0.0


class RunOptions:
    """The `docker run` options the stand-in acts on."""

    def __init__(self) -> None:
        self.env: list[bytes] = []
        self.entrypoint: bytes | None = None
        self.workdir: bytes | None = None
        self.cidfile: bytes | None = None
        self.volumes: list[tuple[bytes, bytes]] = []  # (host, container)


def parse_run(args: list[bytes]) -> tuple[RunOptions, list[bytes]] | str:
    """Split `docker run` arguments into options and [IMAGE, ARG...].

    Returns an error text for flags the stand-in does not know, so a change in
    the startup script cannot silently pass the tests.
    """
    with_value = {b"--env", b"-e", b"--entrypoint", b"--volume", b"-v", b"--device",
                  b"--name", b"--network", b"--ipc", b"--shm-size", b"--workdir", b"-w",
                  b"--gpus", b"--user", b"-u", b"--cidfile"}
    flags = {b"--rm", b"-i", b"-t", b"-it", b"--init", b"--privileged", b"--interactive"}
    opts = RunOptions()
    i = 0
    while i < len(args):
        a = args[i]
        if not a.startswith(b"-") or a == b"--":
            return opts, args[i + (a == b"--") :]
        name, eq, value = a.partition(b"=")
        if name in with_value:
            if not eq:
                i += 1
                if i >= len(args):
                    return f"flag needs a value: {os.fsdecode(name)}"
                value = args[i]
            if name in (b"--env", b"-e"):
                opts.env.append(value)
            elif name == b"--entrypoint":
                opts.entrypoint = value
            elif name in (b"--workdir", b"-w"):
                opts.workdir = value
            elif name == b"--cidfile":
                opts.cidfile = value
            elif name in (b"--volume", b"-v"):
                host, _, target = value.partition(b":")
                opts.volumes.append((host, target.partition(b":")[0]))
        elif a not in flags:
            return f"unknown flag: {os.fsdecode(a)}"
        i += 1
    return "no image given"


def on_host(value: bytes, volumes: list[tuple[bytes, bytes]]) -> bytes:
    """A container path as the host path a --volume puts there (else unchanged)."""
    for host, target in volumes:
        if target and (value == target or value.startswith(target.rstrip(b"/") + b"/")):
            return host + value[len(target):]
    return value


def container_env(pairs: list[bytes]) -> dict[bytes, bytes]:
    if os.environ.get("WFGEN_STANDIN_INHERIT_ENV") == "1":
        env = dict(os.environb)
    else:
        env = {k: os.environb[k] for k in (b"PATH", b"HOME") if k in os.environb}
    for pair in pairs:
        key, eq, value = pair.partition(b"=")
        if eq:
            env[key] = value
        elif key in os.environb:  # docker: `--env KEY` passes the caller's value
            env[key] = os.environb[key]
    return env


def _become_subreaper() -> None:
    """Adopt the job's orphans (Linux prctl PR_SET_CHILD_SUBREAPER); best effort."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)


def _children() -> list[int]:
    me = os.getpid()
    try:  # the kernel's own list (CONFIG_PROC_CHILDREN): no scan of every process
        kids = []
        for tid in os.listdir(f"/proc/{me}/task"):
            with open(f"/proc/{me}/task/{tid}/children", "rb") as f:
                kids += [int(pid) for pid in f.read().split()]
        return kids
    except (OSError, ValueError):
        pass
    kids = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == me:
                kids.append(int(entry))
    return kids


def _kill_leftovers(keep: set[int]) -> None:
    """SIGKILL and reap every process the job left behind (adopted orphans).

    KEEP are children we had before the job: e.g. a `tee` that bash started in
    a process substitution before exec'ing us reads our output; not ours to kill.
    """
    import contextlib
    import signal

    for _ in range(100):
        kids = [pid for pid in _children() if pid not in keep]
        if not kids:
            return
        for pid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for pid in kids:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


def docker_run(args: list[bytes]) -> int:
    import contextlib
    import signal
    import subprocess

    parsed = parse_run(args)
    if isinstance(parsed, str):
        print(f"docker (stand-in): {parsed}", file=sys.stderr)
        return 125
    opts, rest = parsed
    entry = opts.entrypoint
    argv = ([entry] if entry else []) + rest[1:]  # rest[0] is the image
    if not argv:
        print("docker (stand-in): the image's own command is unknown here", file=sys.stderr)
        return 125
    if opts.cidfile and os.path.exists(opts.cidfile):
        print(f"docker: Container ID file found, make sure the other container isn't "
              f"running or delete {os.fsdecode(opts.cidfile)} (stand-in)", file=sys.stderr)
        return 125
    _become_subreaper()
    keep = set(_children())
    # the handlers go in before the job starts: a signal that comes as soon as the
    # job runs (it may write a pid file before Popen returns here) waits for it
    job: list[subprocess.Popen[bytes]] = []
    pending: list[int] = []

    def forward(signum: int, _frame: object) -> None:
        if not job:
            pending.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):
            job[0].send_signal(signum)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    try:
        env = {k: on_host(v, opts.volumes) for k, v in container_env(opts.env).items()}
        workdir = on_host(opts.workdir, opts.volumes) if opts.workdir else None
        proc = subprocess.Popen(argv, env=env, cwd=workdir)
    except FileNotFoundError:
        print(f"docker: Error response from daemon: exec: {os.fsdecode(argv[0])!r}: "
              "executable file not found in $PATH (stand-in)", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"docker: Error response from daemon: exec: {os.fsdecode(argv[0])!r}: "
              "permission denied (stand-in)", file=sys.stderr)
        return 126
    job.append(proc)
    for signum in pending:  # those that came while it started
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signum)
    cid = f"{os.getpid():032x}{proc.pid:032x}"
    if opts.cidfile:
        with open(opts.cidfile, "w", encoding="ascii") as f:
            f.write(cid)
    rc = proc.wait()
    _kill_leftovers(keep)  # PID 1 gone: the rest of the container goes
    status = 128 - rc if rc < 0 else rc
    if opts.cidfile:
        os.makedirs(_containers_dir(), exist_ok=True)
        with open(os.path.join(_containers_dir(), cid), "w", encoding="ascii") as f:
            f.write(f"{status}\n")
    return status


def _containers_dir() -> str:
    """Where container statuses are kept: under $TMPDIR (tempfile.gettempdir's
    first choice; importing tempfile would double the cost of a `docker run`)."""
    for key in ("TMPDIR", "TEMP", "TMP"):
        folder = os.environ.get(key)
        if folder and os.path.isdir(folder):
            return os.path.join(folder, "wfgen-standin-containers")
    return os.path.join("/tmp", "wfgen-standin-containers")


def _container(cid: str) -> tuple[int, int] | None:
    """(stand-in pid, job pid) of a running container id, else None."""
    if len(cid) != 64 or any(c not in "0123456789abcdef" for c in cid):
        return None
    runner, job = int(cid[:32], 16), int(cid[32:], 16)
    try:
        with open(f"/proc/{runner}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X"):
                return None
        with open(f"/proc/{runner}/cmdline", "rb") as f:
            if b"docker" not in f.read():
                return None
    except (OSError, IndexError):
        return None
    return runner, job


def docker_kill(args: list[str]) -> int:
    """`docker kill [--signal=S | -s S] ID...`: the signal (KILL by default) to
    each container's main process."""
    import signal

    sig, ids, i = "KILL", [], 0
    while i < len(args):
        a = args[i]
        if a in ("-s", "--signal") and i + 1 < len(args):
            sig, i = args[i + 1], i + 2
            continue
        if a.startswith("--signal="):
            sig = a.split("=", 1)[1]
        elif a.startswith("-"):
            print(f"docker (stand-in): unknown flag: {a}", file=sys.stderr)
            return 125
        else:
            ids.append(a)
        i += 1
    name = sig.upper().removeprefix("SIG")
    number = int(name) if name.isdigit() else getattr(signal, f"SIG{name}", None)
    if number is None or not ids:
        print(f"docker (stand-in): kill: bad signal {sig!r} or no container", file=sys.stderr)
        return 1
    rc = 0
    for cid in ids:
        found = _container(cid)
        try:
            if found is None:
                raise ProcessLookupError
            os.kill(found[1], number)
            print(cid)
        except ProcessLookupError:
            print(f"Error response from daemon: No such container: {cid}", file=sys.stderr)
            rc = 1
    return rc


def docker_wait(args: list[str]) -> int:
    """`docker wait ID...`: block until each container is gone; print its status."""
    import contextlib

    rc = 0
    for cid in args:
        found = _container(cid)
        record_file = os.path.join(_containers_dir(), cid)
        if found is None and not os.path.exists(record_file):
            print(f"Error response from daemon: No such container: {cid}", file=sys.stderr)
            rc = 1
            continue
        while _container(cid) is not None:
            time.sleep(0.05)
        for _ in range(40):  # the stand-in writes its status as it ends
            if os.path.exists(record_file):
                break
            time.sleep(0.05)
        with contextlib.suppress(OSError), open(record_file, encoding="ascii") as f:
            print(f.read().strip())
    return rc


def _which(name: str) -> str | None:
    """shutil.which without importing shutil (a third of this stand-in's start)."""
    dirs = [""] if os.sep in name else os.environ.get("PATH", os.defpath).split(os.pathsep)
    for folder in dirs:
        path = os.path.join(folder, name) if folder else name
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def main(tool: str) -> None:
    argv = sys.argv[1:]
    record(tool, argv)
    sub = argv[0] if argv else ""
    if tool == "wfgen-poweroff":  # the local runtime watches for this file
        state = os.environ.get("WFGEN_STATE_DIR")
        if state:
            open(os.path.join(state, "powered-off"), "w").close()
    elif tool == "docker-credential-gcr" or tool == "cos-extensions":
        pass
    elif tool == "toolbox" and sub and sub != "apt-get":
        delay = knob_slow(tool, sub)
        if delay:
            time.sleep(delay)
        fail = knob_fail(tool, sub)
        if fail is not None:
            sys.exit(fail)
        exe = _which(sub)  # toolbox CMD: run CMD here, as toolbox would inside
        if exe is None:
            sys.exit(127)
        os.execv(exe, [exe, *argv[1:]])
    delay = knob_slow(tool, sub)
    if delay:
        time.sleep(delay)
    fail = knob_fail(tool, sub)
    if fail is not None:
        print(f"{tool} (stand-in): failing {sub or tool} as told", file=sys.stderr)
        sys.exit(fail)
    if tool == "docker":
        if sub == "run":
            sys.exit(docker_run([os.fsencode(a) for a in argv[1:]]))
        if sub == "kill":
            sys.exit(docker_kill(argv[1:]))
        if sub == "wait":
            sys.exit(docker_wait(argv[1:]))
        if sub == "pull" and len(argv) > 1:
            print(f"{argv[-1]}: pulled (stand-in)")
        elif sub not in OK_SUBCOMMANDS and sub != "pull":
            print(f"docker (stand-in): unsupported command {sub!r}", file=sys.stderr)
            sys.exit(1)
    sys.exit(0)
