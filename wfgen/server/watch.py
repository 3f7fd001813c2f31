"""`wfgen serve --workflows-dir DIR`: every *.yaml in DIR deployed at start
and redeployed when it changes (mtimes polled; no extra dependency). A job
spec is generated first; a workflow file is deployed as it is. The file name
(without .yaml) is the workflow id. A file that cannot be deployed is named
in one log line and tried again when it changes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from wfgen.errors import SpecError, WfgenError
from wfgen.server import wire
from wfgen.server.workflows_api import WorkflowsService


def workflow_source(path: Path) -> str:
    """The workflow YAML a file stands for (job specs are rendered)."""
    from wfgen.job.spec import load_spec_text, read_source
    from wfgen.job.validate import classify

    text = read_source(str(path))
    if classify(text) == "workflow":
        return text
    from wfgen.job.render import render_workflow

    return render_workflow(load_spec_text(text, str(path)))


class WorkflowsDir:
    """Keeps the workflows of one directory deployed."""

    def __init__(self, root: Path, workflows: WorkflowsService, project: str, location: str,
                 log: Callable[[str], None], poll_seconds: float = 1.0) -> None:
        self.root = root
        self.workflows = workflows
        self.parent = f"projects/{project}/locations/{location}"
        self.log = log
        self.poll_seconds = poll_seconds
        self._seen: dict[Path, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sync(self) -> list[str]:
        """Deploy every new or changed file now; the workflow ids deployed."""
        deployed = []
        try:
            files = sorted(self.root.glob("*.yaml"))
        except OSError as exc:
            self.log(f"wfgen serve: --workflows-dir {self.root}: {exc.strerror or exc}")
            return deployed
        for path in files:
            try:
                stat = path.stat()
            except OSError:
                continue
            key = (stat.st_mtime_ns, stat.st_size)
            if self._seen.get(path) == key:
                continue
            self._seen[path] = key
            workflow_id = path.stem
            if not wire.WORKFLOW_ID_RE.fullmatch(workflow_id):
                self.log(f"wfgen serve: {path}: {workflow_id!r} is not a valid workflow id "
                         "(a letter, then letters, digits, - and _)")
                continue
            try:
                source = workflow_source(path)
            except SpecError as exc:
                self.log(f"wfgen serve: not deployed: {exc.all()[0]}")
                continue
            except (WfgenError, OSError) as exc:
                self.log(f"wfgen serve: not deployed: {path}: {exc}")
                continue
            name = f"{self.parent}/workflows/{workflow_id}"
            operation, changed = self.workflows.deploy(name, source)
            if "error" in operation:
                self.log(f"wfgen serve: not deployed: {path}: {operation['error']['message']}")
            elif changed:
                revision = operation["response"]["revisionId"]
                self.log(f"wfgen serve: deployed {path.name} as {name} (revision {revision})")
                deployed.append(workflow_id)
        return deployed

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="wfgen-serve-watch",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.sync()
            except Exception as exc:  # keep watching whatever one file did
                self.log(f"wfgen serve: --workflows-dir: {type(exc).__name__}: {exc}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
