"""The checked job: `JobSpec` (a job spec with every default filled in, and where
each field sits in its file) and the container it runs as data. What every
stage of job/ after loading passes along."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wfgen.errors import Location


@dataclass
class JobSpec:
    """A checked job spec with every default filled in (plain data for templates)."""

    data: dict[str, Any]
    path: str = "<job>"
    seconds: dict[str, int] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)  # field path -> line in the file
    plan: Any = None  # wfgen.job.capacity.Plan: the zones and machine choices, in order
    workdir_uri: str | None = None  # the packed workdir in staging (wfgen.job.workdir)

    def location(self, field_path: str) -> Location:
        """Where a field is in the spec file (its parent's line when it is absent)."""
        line, probe = 0, field_path
        while probe and not line:
            line = self.lines.get(probe, 0)
            probe = probe.rpartition(".")[0]
        return Location(self.path, line, 0, field_path)

    @property
    def name(self) -> str:
        return self.data["name"]

    @property
    def timeout_s(self) -> int:
        return self.seconds["timeout"]

    @property
    def heartbeat_s(self) -> int:
        return self.seconds["heartbeat"]


def container_payload(spec: JobSpec) -> dict[str, Any]:
    """The container settings as the workflow decodes them (see the template)."""
    c = spec.data["container"]
    payload = {
        "image": c["image"],
        "command": list(c["command"] or []),
        "args": list(c["args"]),
        "script": c["script"],
        "env": dict(c["env"]),
    }
    if c.get("secret_env") is not None:  # references only; absent for other jobs
        payload["secret_env"] = dict(c["secret_env"])
    if spec.data.get("workdir"):  # the packed tree (absent for other jobs)
        payload["workdir"] = spec.workdir_uri
    data = spec.data
    if data.get("inputs"):  # a job's data (absent for other jobs): NAME -> URI
        payload["inputs"] = dict(data["inputs"])
    if data.get("outputs"):  # URIs, and sync_every in seconds for the synced ones
        payload["outputs"] = {k: v["uri"] for k, v in data["outputs"].items()}
        payload["sync"] = {k: str(spec.seconds[f"sync:{k}"]) for k, v in
                           data["outputs"].items() if v["sync_every"] is not None}
    return payload
