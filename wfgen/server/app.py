"""`wfgen serve` put together: the store, the runner, every API on one REST
port (and Workflows + Executions on a gRPC port), the --workflows-dir
watcher, and an orderly stop on Ctrl-C/SIGTERM (stop accepting, cancel every
running execution, delete every local VM)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wfgen.backends.local import LocalBackend
from wfgen.local.loopback import LoopbackServer
from wfgen.server.apicheck import Checked, check_connector
from wfgen.server.callbacks_api import CallbackHub
from wfgen.server.compute_api import ComputeApi
from wfgen.server.executions_api import ExecutionsRest, ExecutionsService
from wfgen.server.guard import BrowserGuard
from wfgen.server.logging_api import LoggingApi
from wfgen.server.store import Store
from wfgen.server.workflows_api import WorkflowsRest, WorkflowsService

Log = Callable[[str], None]
DEFAULT_PROJECT = "local-project"
DEFAULT_LOCATION = "us-central1"
STOP_GRACE_S = 1.0  # how long VMs' shutdown scripts may run when serve stops


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def default_data_dir() -> Path:
    """A per-user state directory ($XDG_STATE_HOME/wfgen/serve)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "wfgen" / "serve"


@dataclass
class Options:
    port: int = 8787
    grpc_port: int | None = 8788  # None: no gRPC server
    host: str = "127.0.0.1"
    data_dir: str = ""  # "" = default_data_dir(); ":memory:" = nothing kept
    workflows_dir: str | None = None
    on_host: bool = False
    project: str = DEFAULT_PROJECT
    location: str = DEFAULT_LOCATION
    poll_seconds: float = 1.0  # how often --workflows-dir is checked for changes
    test_clock: bool = False  # POST /wfgen/test/clock moves the scheduler's clock (tests)
    faults: Any = None  # wfgen.local.faults.Faults: --stockout and --flex-wait (capacity)


class App:
    """One running `wfgen serve`."""

    def __init__(self, options: Options, log: Log = _stderr) -> None:
        self.options = options
        self.log = log
        if options.data_dir == ":memory:":
            db = ":memory:"
        else:
            db = str(Path(options.data_dir or default_data_dir()) / "serve.sqlite3")
        self.store = Store(db)
        from wfgen.local.vm import container_engine_works

        use_engine = container_engine_works()
        self.runner = LocalBackend(
            project=options.project, location=options.location,
            use_container_engine=use_engine, on_host=options.on_host,
            callbacks=CallbackHub, faults=options.faults)
        self.runner.connector_check = check_connector  # the workflows' calls, as REST ones
        self.workflows = WorkflowsService(self.store)
        self.executions = ExecutionsService(self.store, self.workflows, self.runner,
                                            self.runner.callbacks)
        from wfgen.server.child_runner import ServeChildren

        self.runner.children = ServeChildren(self.executions)  # the executions connector
        interrupted = self.executions.fail_interrupted()
        if interrupted:
            log(f"wfgen serve: {len(interrupted)} execution(s) left running by an earlier "
                "serve are now FAILED")
        self.guard = BrowserGuard(options.host)  # first: before any handler, callbacks too
        apis: list[Any] = [self.guard, self.runner.callbacks, WorkflowsRest(self.workflows),
                           ExecutionsRest(self.executions)]
        compute = ComputeApi(self.runner.compute)
        apis += [compute, LoggingApi(self.runner.compute)]
        apis += self._event_apis()
        apis.append(self._secret_manager())
        apis.append(self._storage_api())
        apis.append(self._dashboard())
        # past the guard, every request is checked against Google's descriptions
        checked = Checked(apis[1:], log)
        apis = [self.guard, checked]
        compute.answer_part = checked.handle  # and each part of a batch
        try:
            self.http = LoopbackServer(apis, host=options.host, port=options.port, log=log)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {options.host}:{options.port}: "
                                     f"{exc.strerror or exc}") from None
        self.guard.port = self.http.port
        self.runner.callbacks.mount(self.url)  # callback URLs point at this server
        self.runner.publisher.endpoint = self.url  # workflows publish to this serve
        # the local VMs read container.secret_env from this server's Secret Manager
        from wfgen.server.local_secrets import ENDPOINT_KEY

        self.runner.compute.project_metadata[ENDPOINT_KEY] = self.url
        # and a job's inputs and outputs from this server's Cloud Storage
        self.runner.compute.project_metadata["wfgen-storage-endpoint"] = self.url
        self.runner.storage_endpoint = self.url  # and a split job's staged items
        self.grpc: Any = None
        if options.grpc_port is not None:
            from wfgen.server.grpc_api import start_grpc

            self.grpc, self.grpc_port = start_grpc(self.workflows, self.executions,
                                                   options.host, options.grpc_port)
        self.watcher: Any = None
        self._stopped = threading.Event()
        self.shutdown_scripts: list[str] = []  # how each VM's shutdown script ended at stop
        self.mode = self.runner.compute.host_rule.describe()  # wfgen.local.host_policy

    def _event_apis(self) -> list[Any]:
        """Cloud Scheduler, Eventarc and Pub/Sub: what starts executions without a person."""
        from wfgen.server.eventarc_api import EventarcRest, EventarcService
        from wfgen.server.pubsub_api import PubsubRest
        from wfgen.server.scheduler_api import SchedulerRest, SchedulerService
        from wfgen.server.subscriptions_api import SubscriptionsRest, SubscriptionsService

        self.scheduler = SchedulerService(self.store, self.executions.create, self.log)
        self.eventarc = EventarcService(self.store, self.executions.create, self.log)
        self.subscriptions = SubscriptionsService(self.store)

        def deliver(topic: str, message: dict[str, Any]) -> list[str]:
            return self.subscriptions.deliver(topic, message) + self.eventarc.deliver(
                topic, message)

        return [SchedulerRest(self.scheduler, self.options.test_clock),
                EventarcRest(self.eventarc), SubscriptionsRest(self.subscriptions),
                PubsubRest(self.store, deliver)]

    def _secret_manager(self) -> Any:
        """Secret Manager; a local VM's token stands for that VM's service account."""
        from wfgen.server.secretmanager_api import SecretManagerRest

        def who(token: str) -> str | None:
            for vm in list(self.runner.compute.all_vms):
                if vm.metadata.check_token(token):
                    return vm.metadata.service_account
            return None

        return SecretManagerRest(self.store, who)

    def _storage_api(self) -> Any:
        """Cloud Storage (JSON API): buckets and objects under --data-dir/storage."""
        from wfgen.server.storage_api import StorageApi
        from wfgen.server.storage_store import ObjectStore

        data_dir = self.options.data_dir
        root = None if data_dir == ":memory:" else Path(data_dir or default_data_dir()) / "storage"
        self.objects = ObjectStore(root)
        return StorageApi(self.objects, self.options.project)

    def _dashboard(self) -> Any:
        """The web pages at /ui/ (read-only views of all the above, two forms)."""
        from wfgen.server.ui.dashboard import Dashboard
        from wfgen.server.ui.pages import Pages

        return Dashboard(Pages(self.store, self.executions, self.runner,
                               self.runner.compute), self.log)

    @property
    def reach_host(self) -> str:
        """Where clients on this machine reach serve (a wildcard bind is not an address)."""
        return "127.0.0.1" if self.options.host in ("0.0.0.0", "::", "") else self.options.host

    @property
    def url(self) -> str:
        return f"http://{self.reach_host}:{self.http.port}"

    def start(self) -> App:
        self.http.start(poll_interval=0.1)  # stops within 0.1 s
        self.scheduler.start()
        if self.options.workflows_dir:
            from wfgen.server.watch import WorkflowsDir

            self.watcher = WorkflowsDir(Path(self.options.workflows_dir), self.workflows,
                                        self.options.project, self.options.location,
                                        self.log, self.options.poll_seconds)
            self.watcher.sync()
            self.watcher.start()
        return self

    def env_lines(self) -> list[str]:
        url = f"{self.url}/"
        lines = [f"export CLOUDSDK_API_ENDPOINT_OVERRIDES_{api}={url}"
                 for api in ("WORKFLOWS", "WORKFLOWEXECUTIONS", "COMPUTE", "CLOUDSCHEDULER",
                             "EVENTARC", "PUBSUB", "SECRETMANAGER")]
        lines.append(f"export CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE={url}storage/v1/")
        lines.append(f"export STORAGE_EMULATOR_HOST={self.url}")
        lines.append("export CLOUDSDK_AUTH_DISABLE_CREDENTIALS=true")
        lines.append(f"export WORKFLOWS_EMULATOR_HOST={self.reach_host}:{self.http.port}")
        if self.grpc is not None:
            # wfgen's cloud commands look for gRPC on the REST port + 1 unless told
            lines.append(f"export WORKFLOWS_EMULATOR_GRPC_HOST={self.reach_host}:"
                         f"{self.grpc_port}")
        else:
            lines.append("# no gRPC port (--grpc-port -1): wfgen's cloud commands and the "
                         "Python ExecutionsClient need one")
        return lines

    def stop(self) -> list[str]:
        """Stop accepting, cancel every execution, delete every VM; VMs deleted."""
        if self._stopped.is_set():
            return []
        self._stopped.set()
        # the VMs' shutdown scripts run in parallel, cut short STOP_GRACE_S after
        # the stop began (as `run --local` does on Ctrl-C)
        hurry = threading.Timer(STOP_GRACE_S, self.runner.hurry_up)
        hurry.daemon = True
        hurry.start()
        if self.watcher is not None:
            self.watcher.stop()
        self.scheduler.stop()
        self.subscriptions.close()  # pulls waiting for a message answer now
        self.http.stop()
        if self.grpc is not None:
            self.grpc.stop(grace=None)
        vms = list(self.runner.compute.all_vms)
        deleted = self.runner.shutdown()
        hurry.cancel()
        self.shutdown_scripts = [vm.shutdown_script for vm in vms if vm.shutdown_script]
        self.executions.wait_all(5.0)  # their final state reaches the store
        self.store.close()
        self.objects.close()
        return deleted

    def serve_forever(self, ready: Callable[[], None] | None = None) -> int:
        """Run until SIGINT/SIGTERM/SIGHUP, then stop in order; exit status 0.
        `ready` (the start-up lines) runs once those signals are handled."""
        stop = threading.Event()

        def handler(signum: int, _frame: Any) -> None:
            stop.set()

        watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, handler) for sig in watched}
        try:
            if ready is not None:
                ready()
            while not stop.wait(0.1):
                pass
        finally:
            for sig in watched:
                signal.signal(sig, previous[sig])
        self.log("wfgen serve: stopping: cancelling running executions, deleting local VMs "
                 f"(their shutdown scripts get {STOP_GRACE_S:g} s)")
        deleted = self.stop()
        if deleted:
            cut = self.shutdown_scripts.count("cut short")
            self.log(f"wfgen serve: deleted {', '.join(deleted)}; {len(self.shutdown_scripts)} "
                     f"shutdown script(s) ran" + (f", {cut} cut short at the "
                                                  f"{STOP_GRACE_S:g} s deadline" if cut else ""))
        self.log("wfgen serve: stopped")
        return 0
