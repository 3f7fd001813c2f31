"""The one rule for what a local VM may run on this machine, and the words it uses.

A local VM is two things: its startup (and shutdown) script, on Compute Engine
the VM's own code, and the container that script starts. Here they would run
on the host, as the user running wfgen. So:

- wfgen's own VM agent (startup/startup.sh and shutdown.sh of this package,
  recognised by content, byte for byte) is the VM stand-in and always runs;
  its container runs in a working container engine, and on the host only
  with --on-host;
- any other startup or shutdown script runs on the host only with --on-host;
- a VM without scripts runs nothing and is always allowed.

Without the opt-in the insert is refused, the way Compute Engine refuses an
insert an organization policy forbids (412 CONDITION_NOT_MET in the
operation), with the sentence that says how to opt in. Every path that does
run something on the host says so once, with the same notice."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from functools import cache

from wfgen.job.resources import startup_script

SCRIPT_KEYS = ("startup-script", "shutdown-script")
AGENT_FILES = {"startup-script": "startup.sh", "shutdown-script": "shutdown.sh"}
REFUSED_STATUS = 412  # what Compute Engine answers an insert a policy forbids
REFUSED_REASON = "CONDITION_NOT_MET"
OPT_IN = ("To allow that, add --on-host (wfgen run --local --on-host FILE, or "
          "wfgen serve --on-host).")


@cache
def _agent(key: str) -> str:
    return startup_script(AGENT_FILES[key])


def is_agent(key: str, text: str) -> bool:
    """Is `text` wfgen's own VM agent for this metadata key (startup or shutdown)?"""
    return text == _agent(key)


@cache
def host_user() -> str:
    """Who host processes run as: the effective user's name (its uid if it has none)."""
    uid = os.geteuid()
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def notice(what: str) -> str:
    """The one notice of every path that runs something on the host."""
    reach = "the whole machine" if os.geteuid() == 0 else "your files"
    return (f"{what} runs as a host process, as {host_user()}, in a scratch directory, "
            f"with {reach} in reach")


@dataclass
class HostRule:
    """The rule for one local Compute Engine: does a container engine work here
    (`engine`), and did the user opt in to host processes (`on_host`)?"""

    engine: bool
    on_host: bool
    _told: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def host_parts(self, metadata: dict[str, str]) -> dict[str, str]:
        """What of this VM would run on the host, by kind ("script", "container");
        empty: nothing, or only wfgen's agent with its container in the engine."""
        scripts = [key.replace("-", " ") for key in SCRIPT_KEYS
                   if metadata.get(key, "").strip() and not is_agent(key, metadata[key])]
        parts = {}
        if scripts:
            parts["script"] = f"its {' and '.join(scripts)} (not wfgen's VM agent)"
        if not self.engine and is_agent("startup-script", metadata.get("startup-script", "")):
            parts["container"] = "its container's command (no container engine works here)"
        return parts

    def check(self, name: str, metadata: dict[str, str]) -> tuple[str | None, str | None]:
        """(refusal, notice) for an insert: a refusal's message goes into the failed
        operation; a notice is to be shown, once per kind of host process."""
        parts = self.host_parts(metadata)
        if not parts:
            return None, None
        if not self.on_host:
            return (f"local VM {name} was not created: {' and '.join(parts.values())} would "
                    f"run as a host process on this machine, as {host_user()}. {OPT_IN}"), None
        with self._lock:
            new = [kind for kind in parts if kind not in self._told]
            self._told.update(new)
        if not new:
            return None, None
        image = metadata.get("wfgen-image") or "of the job"
        subjects = {"script": "a VM's startup or shutdown script that is not wfgen's VM agent",
                    "container": "the container's command (no container engine works here; "
                                 f"the image {image} is not used)"}
        what = " and ".join(subjects[kind] for kind in new)
        return None, notice(f"--on-host: {what}") + f" (first: VM {name})"

    def describe(self) -> str:
        """serve's start-up line about local VMs: which mode it is in."""
        if self.engine and self.on_host:
            return ("VMs: wfgen's VM agent runs each job's container in the container engine; "
                    "any other startup script " + notice("").strip() + " (--on-host)")
        if self.engine:
            return ("VMs: wfgen's VM agent runs each job's container in the container engine; "
                    "an insert with any other startup script is refused (--on-host would run "
                    "it as a host process)")
        if self.on_host:
            return ("VMs: no container engine works here; each job's container command and "
                    "any startup script " + notice("").strip() + " (--on-host)")
        return ("VMs: no container engine works here and no --on-host: an insert that would "
                "run anything on this host is refused (its execution fails, naming "
                "--on-host); workflows without VMs run as usual")
