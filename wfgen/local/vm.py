"""A local "VM": the real startup script under bash, in its own process group.

Each VM gets a scratch directory, its own metadata server (serving exactly the
metadata the workflow put in the insert body), and a PATH where stand-ins
answer for `toolbox`, `cos-extensions`, `docker-credential-gcr` and, unless a
container engine truly works here, `docker` (which then runs the container's
argv as a host process in the scratch directory). Deleting the VM runs its
shutdown script, as Compute Engine does, then ends the whole process group:
nothing it started survives."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path

from wfgen.local.metadata import DEFAULT_SERVICE_ACCOUNT, MetadataServer

Notify = Callable[[str], None]
SHUTDOWN_GRACE_S = 30.0  # Compute Engine gives a Spot VM's shutdown script about this long
STANDARD_SHUTDOWN_S = 120.0  # and a standard VM's (Compute v1 skipGuestOsShutdown)
MAX_LINE = 16384  # longer output lines are shown in pieces
# Starts a VM: a watchdog in the background (it holds the lifeline, $3, and acts
# when it reads end of file: wfgen is gone), then the startup script in its place.
# Processes that left the group (setsid) are found by the marker in their environment
# or, for a job whose environment is its own (the docker stand-in), a working directory
# in the VM's scratch directory.
_LAUNCHER = (
    'fd=$3; { read -r _ <&"$fd"; trap "" TERM; kill -TERM -- "-$$"; sleep 1; '
    'rm -rf -- "$1"; for p in /proc/[0-9]*; do q=${p#/proc/}; [ "$q" = "$BASHPID" ] && '
    'continue; if grep -qzx -- "WFGEN_VM_MARKER=$WFGEN_VM_MARKER" "$p/environ" 2>/dev/null; '
    'then kill -KILL "$q"; else case "$(readlink "$p/cwd" 2>/dev/null)" in "$1"|"$1"/*) '
    'kill -KILL "$q";; esac; fi; done; kill -KILL -- "-$$"; } '
    '</dev/null >/dev/null 2>&1 & exec {fd}<&-; exec bash "$2"')
MARKER_VAR = "WFGEN_VM_MARKER"  # in the environment of everything a local VM runs


def standins_dir() -> Path:
    return Path(__file__).resolve().parent / "standins"


@cache
def container_engine_works() -> bool:
    """True only when a docker client reaches a running daemon (a client alone is not enough)."""
    docker = shutil.which("docker")
    if not docker:
        return False
    try:
        probe = subprocess.run([docker, "info", "--format", "{{.ServerVersion}}"],
                               capture_output=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and bool(probe.stdout.strip())


def _shim(tool: Path) -> str:
    """The PATH entry of a stand-in: this interpreter, without site-packages
    (`#!/usr/bin/env python3` may find a version manager's shim, a dozen
    processes per call), started straight from the #! line where its path fits
    there (no shell in between; the stand-ins' code then loads from its cached
    bytecode), else through sh."""
    exe = sys.executable
    if len(exe) < 200 and not any(c.isspace() for c in exe) and "\\" not in exe:
        return (f"#!{exe} -S\nimport sys\nsys.path.insert(0, {str(tool.parent)!r})\n"
                f"from _standin import main\nmain({tool.name!r})\n")
    return f"#!/bin/sh\nexec {shlex.quote(exe)} -S {shlex.quote(str(tool))} \"$@\"\n"


class LocalVM:
    """One instance: metadata server + startup script process group."""

    def __init__(self, name: str, zone: str, project: str, metadata: dict[str, str],
                 *, output: Callable[[str, str], None], notify: Notify,
                 use_container_engine: bool, extra_env: dict[str, str] | None = None,
                 project_metadata: dict[str, str] | None = None,
                 service_account: str | None = None) -> None:
        self.name = name
        self.zone = zone
        self.project = project
        self.status = "PROVISIONING"
        self.created = time.time()
        sweep_stale_scratch()
        # the pid in the name lets a later run remove it if wfgen is killed before the
        # watchdog owns it (sweep_stale_scratch)
        self.scratch = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-{name}-"))
        self.marker = f"{name}-{secrets.token_hex(8)}"
        # project metadata: where this runtime's Secret Manager is (the agent's
        # wfgen-secretmanager-endpoint); the account: whose token the VM holds
        self.metadata = MetadataServer(
            name, zone, project, metadata, project_attributes=project_metadata,
            service_account=service_account or DEFAULT_SERVICE_ACCOUNT)
        self._output = output
        self._notify = notify
        self._use_engine = use_container_engine
        self._extra_env = dict(extra_env or {})
        self._proc: subprocess.Popen[bytes] | None = None
        self.hurry = threading.Event()  # the user insists: cut the shutdown script short
        self.shutdown_window_s = SHUTDOWN_GRACE_S  # from power-off to the hard stop
        self._lifeline: int | None = None
        self._lock = threading.RLock()  # power_off/destroy may race (fault timer vs. delete)
        self._readers: list[threading.Thread] = []
        self.shutdown_script = ""  # "ran" or "cut short" once a stop ran it

    # -- environment of the scripts ---------------------------------------
    def _env(self) -> dict[str, str]:
        shims = self.scratch / "bin"
        shims.mkdir(exist_ok=True)
        for tool in standins_dir().iterdir():
            if tool.name.startswith((".", "_")) or not tool.is_file():
                continue
            if tool.name == "docker" and self._use_engine:
                continue
            target = shims / tool.name
            if not target.exists():
                target.write_text(_shim(tool))
                target.chmod(0o755)
        env = {
            "PATH": f"{shims}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.scratch / "home"),
            "TMPDIR": str(self.scratch / "tmp"),
            "GCE_METADATA_HOST": self.metadata.host,
            "WFGEN_STATE_DIR": str(self.scratch / "state"),
            "WFGEN_NVIDIA_REMOUNT": "0",  # no /var/lib/nvidia to remount on this machine
            "WFGEN_POWEROFF": "wfgen-poweroff",  # leaves state/powered-off: see _watch
            # a multi-node job's nodes all run on this host: they meet on loopback
            "WFGEN_NODE_ADDRESS": "127.0.0.1",
            # Local SSD scratch (wfgen-local-ssd): a directory, not formatted disks
            "WFGEN_SCRATCH_ROOT": str(self.scratch / "local-ssd"),
            # a job's inputs and outputs: the data directory, and the transfer step as
            # a host process (wfgen.backends.cloud_transfer; a real VM runs gcloud storage)
            "WFGEN_DATA_DIR": str(self.scratch / "data"),
            "WFGEN_TRANSFER": f"{sys.executable} -m wfgen.backends.cloud_transfer",
            "LANG": os.environ.get("LANG", "C.UTF-8"),
        }
        # The agent's own knobs (WFGEN_REPORT_DEADLINE, WFGEN_BACKOFF_MS, ...) pass
        # through, so users and tests can tune a local VM from the environment.
        for key, value in os.environ.items():
            if key.startswith("WFGEN_") and key not in env and key != "WFGEN_DEBUG":
                env[key] = value
        for key in ("home", "tmp", "state", "work"):
            (self.scratch / key).mkdir(exist_ok=True)
        env.update(self._extra_env)
        env[MARKER_VAR] = self.marker
        return env

    def _script(self, key: str) -> Path:
        path = self.scratch / f"{key}.sh"
        path.write_text(self.metadata.attributes.get(key, ""), encoding="utf-8")
        return path

    # -- lifecycle ---------------------------------------------------------
    def boot(self) -> None:
        """Start the metadata server and the startup script (a new process group)."""
        self.metadata.start()
        script = self._script("startup-script")
        # If wfgen itself dies (SIGKILL, out of memory), nothing would end this VM:
        # a watchdog in the VM's session waits on a pipe that only wfgen holds open;
        # at end of file it stops the VM's process group and removes its directory.
        read_end, self._lifeline = os.pipe()
        try:
            self._proc = subprocess.Popen(
                ["bash", "-c", _LAUNCHER, "wfgen-vm", str(self.scratch), str(script),
                 str(read_end)], cwd=self.scratch / "work", env=self._env(),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True, pass_fds=(read_end,))
        finally:
            os.close(read_end)
        self.status = "RUNNING"
        reader = threading.Thread(target=self._pump, args=(self._proc,), daemon=True,
                                  name=f"vm-{self.name}-output")
        reader.start()
        self._readers.append(reader)
        threading.Thread(target=self._watch, daemon=True, name=f"vm-{self.name}-power").start()

    def _stop_watchdog(self) -> None:
        """Close the lifeline once the VM is ended (its watchdog went with it)."""
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None

    def _watch(self) -> None:
        """A guest that powers itself off (the agent, when it cannot report) ends up
        TERMINATED, as on Compute Engine: the shutdown script runs, everything stops."""
        marker = self.scratch / "state" / "powered-off"
        while self.status in ("PROVISIONING", "RUNNING"):
            if marker.exists():
                self._notify(f"VM {self.name} powered itself off")
                self.power_off(run_shutdown=True)
                return
            time.sleep(0.1)

    def _pump(self, proc: subprocess.Popen[bytes]) -> None:
        """Forward output line by line: bounded memory, and `\r` progress bars show
        as they go (a line is cut at MAX_LINE bytes)."""
        assert proc.stdout is not None
        pending = b""
        while chunk := os.read(proc.stdout.fileno(), 65536):  # what is there, up to 64 KB
            pending += chunk
            *lines, pending = re.split(rb"\r\n|\n|\r", pending)
            while len(pending) > MAX_LINE:
                lines.append(pending[:MAX_LINE])
                pending = pending[MAX_LINE:]
            for raw in lines:
                self._output(self.name, raw.decode("utf-8", errors="replace"))
        if pending:
            self._output(self.name, pending.decode("utf-8", errors="replace"))

    def run_shutdown_script(self, timeout: float | None = None) -> None:
        """Run the shutdown script, best effort, as Compute Engine does on stop/delete,
        for at most the VM's shutdown window."""
        timeout = self.shutdown_window_s if timeout is None else timeout
        script = self._script("shutdown-script")
        if not script.read_text().strip():
            return
        try:
            proc = subprocess.Popen(["bash", str(script)], cwd=self.scratch / "work",
                                    env=self._env(), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        except OSError as exc:
            self._notify(f"{self.name}: shutdown script did not start: {exc}")
            return
        self.shutdown_script = "ran"  # what the last stop did with it (serve reports it)
        reader = threading.Thread(target=self._pump, args=(proc,), daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        while proc.poll() is None:
            if self.hurry.is_set() or time.monotonic() > deadline:
                self.shutdown_script = "cut short"
                _kill_group(proc, hard=True)
                proc.wait()
                break
            time.sleep(0.05)
        reader.join(timeout=1)

    def power_off(self, *, run_shutdown: bool, hard: bool = False) -> None:
        """Stop everything the VM runs; idempotent. `hard`: no SIGTERM first, as
        when a host dies (nothing in the VM gets a chance to say anything)."""
        with self._lock:
            if self.status == "TERMINATED":
                return
            self.status = "STOPPING"
            if run_shutdown:
                self.run_shutdown_script()
            if self._proc is not None:  # hurried: no grace for SIGTERM either
                _kill_group(self._proc, hard=hard or self.hurry.is_set())
                kill_marked(self.marker, self.scratch)  # what left the group (setsid)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._proc.wait(timeout=5)
            self._stop_watchdog()
            for reader in self._readers:
                reader.join(timeout=1)
            self.metadata.stop()
            self.status = "TERMINATED"

    def destroy(self) -> None:
        """Power off (if needed) and remove the scratch directory."""
        with self._lock:
            self.power_off(run_shutdown=False)
            shutil.rmtree(self.scratch, ignore_errors=True)

    def processes_alive(self) -> bool:
        """Does any process of this VM (its group, or marked as its) still run?"""
        if self._proc is None:
            return False
        return _group_alive(self._proc.pid) or bool(marked_pids(self.marker, self.scratch))


def shutdown_window(body: dict) -> float:
    """How long Compute Engine lets an instance of this insert body shut down:
    30 s for Spot (and preemptible) VMs, 120 s for standard ones."""
    scheduling = body.get("scheduling") or {}
    spot = scheduling.get("provisioningModel") == "SPOT" or scheduling.get("preemptible")
    return SHUTDOWN_GRACE_S if spot else STANDARD_SHUTDOWN_S


def marked_pids(marker: str, root: Path | None = None) -> list[int]:
    """Live processes whose environment carries this VM's marker, or whose working
    directory lies in `root` (the VM's scratch directory); empty without /proc.

    Every VM's deletion scans all of /proc, so this reads as little as it can: the
    environment, the working directory only when the marker is not there, and the
    state only of a process that matches."""
    needle = f"{MARKER_VAR}={marker}".encode()
    inner = b"\0" + needle + b"\0"
    prefix = str(root) if root is not None else None
    found: list[int] = []
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    me = str(os.getpid())
    for name in names:
        if not name.isdigit() or name == me:
            continue
        base = f"/proc/{name}/"
        try:
            with open(base + "environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        hit = inner in environ or environ.startswith(needle + b"\0") or environ in (
            needle, inner[1:]) or environ.endswith(inner[:-1])
        if not hit and prefix is not None:
            try:
                cwd = os.readlink(base + "cwd")
            except OSError:
                continue
            hit = cwd == prefix or cwd.startswith(prefix + "/")
        if hit and _state(base) not in ("Z", "X", ""):
            found.append(int(name))
    return found


def _state(base: str) -> str:
    """A process's state letter from /proc/PID/stat ("" when it is gone)."""
    try:
        with open(base + "stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return ""
    return stat[stat.rfind(")") + 2:][:1]


def kill_marked(marker: str, root: Path | None = None, rounds: int = 20) -> None:
    """SIGKILL every process marked as this VM's, again while new ones appear (forks)."""
    for _ in range(rounds):
        pids = marked_pids(marker, root)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


SCRATCH_PREFIX = "wfgen-vm-"
SWEEP_EVERY_S = 10.0  # a temporary directory is swept at most this often per process
_SWEPT: dict[str, float] = {}
_SWEPT_LOCK = threading.Lock()


def sweep_stale_scratch(root: str | None = None) -> list[Path]:
    """Remove scratch directories of wfgen processes that no longer exist.

    A SIGKILL between mkdtemp and the VM's launcher leaves one behind (no watchdog
    owns it yet); its name carries the pid of the wfgen that made it."""
    removed: list[Path] = []
    base = Path(root or tempfile.gettempdir())
    if root is None:  # each VM asks; a look through the directory every few seconds will do
        now = time.monotonic()
        with _SWEPT_LOCK:
            if now - _SWEPT.get(str(base), -SWEEP_EVERY_S) < SWEEP_EVERY_S:
                return removed
            _SWEPT[str(base)] = now
    try:
        entries = [base / name for name in os.listdir(base) if name.startswith(SCRATCH_PREFIX)]
    except OSError:
        return removed
    for entry in entries:
        pid_text = entry.name[len(SCRATCH_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit() or int(pid_text) == os.getpid():
            continue
        try:
            os.kill(int(pid_text), 0)
            continue  # its wfgen still runs
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue  # another user's, or not a pid
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _group_alive(pgid: int) -> bool:
    """Does a live (not zombie) process of the group remain?

    kill(0) alone cannot tell: it succeeds on zombies, such as a group leader
    that its parent has not reaped yet. It can tell that the group is empty,
    though, which is the common case and needs no look at all of /proc; else,
    where /proc exists, read the states."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        names = os.listdir("/proc")
    except OSError:
        return True
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] not in ("Z", "X"):
            return True
    return False


def _kill_group(leader: subprocess.Popen[bytes], *, hard: bool = False) -> None:
    """SIGTERM the leader's process group, then SIGKILL what is left after a
    moment. The leader is reaped as soon as it ends, so that an emptied group is
    seen as gone without a look through /proc."""
    pgid = leader.pid
    steps = ((signal.SIGKILL, 0.0),) if hard else ((signal.SIGTERM, 1.0), (signal.SIGKILL, 0.0))
    for sig, pause in steps:
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + pause
        while time.monotonic() < deadline:
            leader.poll()
            if not _group_alive(pgid):
                return
            time.sleep(0.01)
