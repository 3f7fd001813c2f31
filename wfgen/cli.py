"""The `wfgen` command line.

stdout carries the product (workflow YAML, result JSON); progress and
diagnostics go to stderr. Expected failures are WfgenError and end with one
clear message and the exit status of DESIGN.md's contract (2 bad usage or file,
125 could not run, the container's own code when it ran and failed). Commands
import their machinery lazily so `generate` and `validate` start fast."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from wfgen import __version__
from wfgen.errors import EXIT_NOT_RUN, EXIT_USAGE, SpecError, UsageError, WfgenError

Handler = Callable[[argparse.Namespace], int]


def _err(message: str) -> None:
    print(f"wfgen: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------
# Commands


def cmd_generate(args: argparse.Namespace) -> int:
    from wfgen.output import is_stdout, write_output
    from wfgen.render import render_workflow
    from wfgen.spec import load_spec

    text = render_workflow(load_spec(args.job))
    write_output(text, args.output)
    if not is_stdout(args.output):
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from wfgen.validate import validate_paths

    findings, unreadable = validate_paths(args.files)
    for finding in findings:
        print(finding)
    if findings:
        print(f"{len(findings)} problem(s) found", file=sys.stderr)
        return EXIT_USAGE if unreadable else 1
    if not args.quiet:
        print(f"{len(args.files)} file(s) OK", file=sys.stderr)
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from wfgen.init import write_starter_job

    path = write_starter_job(Path(args.dir), force=args.force)
    print(f"wrote {path}; next: wfgen generate {path}", file=sys.stderr)
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    import json

    from wfgen.spec import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from wfgen.validate import looks_like_workflow

    if not args.local:
        raise UsageError("running in GCP is not available yet; use `wfgen run --local FILE` "
                         "(or deploy the generated YAML with gcloud: see the README)")
    if looks_like_workflow(args.file):
        from wfgen.engine.command import run_workflow_command

        job_only = [f"--{n}" for n in ("fault", "heartbeat", "timeout") if getattr(args, n)]
        if job_only:
            raise UsageError(f"{', '.join(job_only)} apply to job specs; {args.file} is a "
                             "workflow (run it as it is, or run its job spec)")
        return run_workflow_command(args.file, args.data, stats=args.stats)
    from wfgen.local.runner import run_job_command

    return run_job_command(args.file, args.data, stats=args.stats, faults=args.fault,
                           heartbeat=args.heartbeat, timeout=args.timeout)


# ---------------------------------------------------------------------------
# Parser

EXAMPLES = {
    "init": "example:\n  wfgen init my-job && wfgen generate my-job/job.yaml",
    "generate": "examples:\n  wfgen generate job.yaml > workflow.yaml\n"
                "  wfgen generate job.yaml -o workflow.yaml",
    "validate": "examples:\n  wfgen validate job.yaml\n  wfgen validate workflow.yaml other.yaml",
    "schema": "example (yaml-language-server, first line of job.yaml):\n"
              "  wfgen schema > job.schema.json\n"
              "  # yaml-language-server: $schema=./job.schema.json",
    "run": "examples:\n  wfgen run --local examples/hello.yaml\n"
           "  wfgen run --local job.yaml --data '{\"args\": [\"--lr\", \"0.1\"]}'\n"
           "  wfgen run --local some-workflow.yaml --data '{\"name\": \"x\"}'\n"
           "  wfgen run --local job.yaml --heartbeat 2s --fault preempt@3s\n\n"
           "faults (--fault, repeatable; each acts on the first VM of the run):\n"
           "  preempt@DELAY        preempt the VM DELAY after it boots (500ms, 5s, 2m)\n"
           "  vanish@DELAY         the VM disappears without a word\n"
           "  refuse-callbacks=N   the callback endpoint answers 503 to the first N requests\n"
           "  insert-fail[=MSG]    instances.insert fails (e.g. quota)",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wfgen",
        description="Turn a short job spec into a Cloud Workflows definition that runs one "
                    "container job on a throw-away Compute Engine VM; validate it, and run it "
                    "locally.",
        epilog="start here:\n  wfgen init my-job\n  wfgen generate my-job/job.yaml\n"
               "  wfgen run --local my-job/job.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wfgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=EXAMPLES[name],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(handler=handler)
        return p

    p = add("init", cmd_init, "write a commented job.yaml to start from")
    p.add_argument("dir", nargs="?", default=".", help="directory to write job.yaml in")
    p.add_argument("--force", action="store_true", help="overwrite an existing job.yaml")

    p = add("generate", cmd_generate, "emit the workflow YAML for a job spec")
    p.add_argument("job", help="the job spec (YAML)")
    p.add_argument("-o", "--output", help="write here instead of stdout (atomically)")

    p = add("validate", cmd_validate, "check job specs or any Cloud Workflows YAML")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing when clean")

    add("schema", cmd_schema, "print the job spec's JSON Schema (for editors)")

    p = add("run", cmd_run, "run a job spec or any workflow YAML")
    p.add_argument("file", help="a job spec or a workflow YAML")
    p.add_argument("--local", action="store_true",
                   help="run here on wfgen's own Workflows engine (no cloud account)")
    p.add_argument("--data", help="the execution argument, as JSON")
    p.add_argument("--stats", action="store_true",
                   help="print the billed steps and what they would cost in Cloud Workflows")
    p.add_argument("--fault", action="append", default=[], metavar="FAULT",
                   help="inject a fault into a local job run (list below)")
    p.add_argument("--heartbeat", metavar="DURATION",
                   help="override the job's heartbeat for a local run (e.g. 2s)")
    p.add_argument("--timeout", metavar="DURATION",
                   help="override the job's timeout for a local run (e.g. 1m)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its own message
        return EXIT_USAGE if exc.code not in (0, None) else 0
    if not getattr(args, "handler", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.handler(args)
    except WfgenError as exc:
        for each in exc.all() if isinstance(exc, SpecError) else [exc]:
            _err(str(each))
        return exc.exit_code
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:  # e.g. stdout on a full disk, a directory we may not write
        where = f"{exc.filename}: " if exc.filename else ""
        _err(f"{where}{exc.strerror or exc}")
        return EXIT_USAGE
    except Exception as exc:
        if os.environ.get("WFGEN_DEBUG"):
            raise
        _err(f"internal error: {type(exc).__name__}: {exc} "
             "(a wfgen bug; rerun with WFGEN_DEBUG=1 for details and please report it)")
        return EXIT_NOT_RUN


if __name__ == "__main__":
    raise SystemExit(main())
