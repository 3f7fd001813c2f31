"""`wfgen serve`: a local Cloud Workflows service that gcloud and Google's
Python clients drive unchanged (Workflows, Executions, Compute Engine)."""

from __future__ import annotations

import argparse
import sys

from wfgen.errors import UsageError

HELP = ("serve the Workflows, Executions, Compute Engine, Cloud Scheduler, Eventarc and "
        "Pub/Sub APIs locally")
EXAMPLES = (
    "examples:\n  wfgen serve                      # then paste the export lines it prints\n"
    "  wfgen serve --workflows-dir wf/  # deploy every wf/*.yaml, redeploy on change\n"
    "  wfgen serve --data-dir :memory: --port 0 --grpc-port 0\n\n"
    "then, in another shell:\n"
    "  gcloud workflows deploy hello --source=workflow.yaml --location=us-central1\n"
    "  gcloud workflows run hello --location=us-central1 --data='{\"args\": [\"x\"]}'")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--port", type=int, default=8787, help="REST port (default 8787; 0: any)")
    p.add_argument("--grpc-port", type=int, default=8788,
                   help="gRPC port for the Python ExecutionsClient (default 8788; 0: any; "
                        "-1: none)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default 127.0.0.1; anything else exposes an "
                        "unauthenticated API that runs commands)")
    p.add_argument("--data-dir", default="", metavar="DIR",
                   help="where workflows and executions are kept (default: a per-user state "
                        "directory; ':memory:' keeps nothing)")
    p.add_argument("--workflows-dir", metavar="DIR",
                   help="deploy every *.yaml here at start (job specs are generated first; "
                        "the file name is the workflow id) and redeploy on change")
    p.add_argument("--on-host", action="store_true",
                   help="let local VMs run on this host: each job's command where no container "
                        "engine works, and startup scripts that are not wfgen's VM agent "
                        "(without it such an insert fails; workflows without VMs run as usual)")
    p.add_argument("--project", default="local-project",
                   help="project of the --workflows-dir workflows (default local-project)")
    p.add_argument("--location", default="us-central1",
                   help="location of the --workflows-dir workflows (default us-central1)")
    p.add_argument("--stockout", action="append", default=[], metavar="ZONE[/MODEL]",
                   help="emulate a zone with no capacity for a provisioning model (standard, "
                        "spot, flex-start, reservation; none: all; ZONE * for every zone): "
                        "inserts there fail as Compute Engine fails them; repeatable")
    p.add_argument("--flex-wait", default=None, metavar="DELAY",
                   help="how long the emulated flex-start queue keeps a VM PENDING before it "
                        "grants capacity (or gives up where flex-start is out); default 2s")
    p.add_argument("--test-clock", action="store_true",
                   help="for tests: POST /wfgen/test/clock {\"advanceSeconds\": N} (or "
                        "{\"advanceTo\": RFC3339}) moves the scheduler's clock forward, so a "
                        "cron fires at once")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wfgen.server.app import App, Options

    for flag, port in (("--port", args.port), ("--grpc-port", args.grpc_port)):
        if not -1 <= port <= 65535 or (flag == "--port" and port < 0):
            raise UsageError(f"{flag}: {port} is not a port number")
    if args.workflows_dir and not Path(args.workflows_dir).is_dir():
        raise UsageError(f"--workflows-dir: {args.workflows_dir} is not a directory")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"wfgen serve: WARNING: listening on {args.host}: anyone who reaches it can "
              "deploy and run workflows (commands on this machine), unauthenticated",
              file=sys.stderr)
    from wfgen.local.capacity import Capacity
    from wfgen.local.faults import Faults, parse_delay

    try:
        flex_wait = None if args.flex_wait is None else parse_delay(args.flex_wait)
    except UsageError as exc:
        raise UsageError(f"--flex-wait: {exc}") from None
    Capacity.parse(args.stockout, option="--stockout")  # a bad rule: a usage error now
    capacity = Faults(stockouts=list(args.stockout), flex_wait=flex_wait)
    options = Options(port=args.port, grpc_port=None if args.grpc_port < 0 else args.grpc_port,
                      host=args.host, data_dir=args.data_dir, workflows_dir=args.workflows_dir,
                      on_host=args.on_host, project=args.project, location=args.location,
                      test_clock=args.test_clock, faults=capacity)
    import os
    import sqlite3

    os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # a failed bind is reported once, below
    try:
        app = App(options)
    except OSError as exc:  # a port in use, a data directory we may not write
        where = f"{exc.filename}: " if exc.filename else ""
        raise UsageError(f"cannot start: {where}{exc.strerror or exc}") from None
    except sqlite3.Error as exc:
        where = args.data_dir or "the default data directory"
        raise UsageError(f"cannot use the state database in {where}: {exc} (move it away, "
                         "or give another --data-dir)") from None
    app.start()
    where = options.data_dir if options.data_dir == ":memory:" else app.store.path

    def ready() -> None:  # once SIGTERM is handled: whoever reads these may send it at once
        print(f"wfgen serve: listening on {app.url} (REST)"
              + (f" and {app.reach_host}:{app.grpc_port} (gRPC)" if app.grpc else "")
              + f"; state in {where}", file=sys.stderr)
        print(f"wfgen serve: {app.mode}", file=sys.stderr)
        print(f"wfgen serve: dashboard at {app.url}/ui/", file=sys.stderr)
        print("wfgen serve: point gcloud here with:", file=sys.stderr)
        for line in app.env_lines():
            print(line, file=sys.stderr)
        sys.stderr.flush()

    status = app.serve_forever(ready)
    # Everything serve owns is released (VMs deleted, store closed); what is left
    # are gRPC's worker threads, which the interpreter's exit would wait on for
    # most of a second: leave now, so that a stop takes under 2 s.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
