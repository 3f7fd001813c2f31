"""The `wfgen` command line: the parser, and the one error policy.

Each command lives in its own module (wfgen.cli.<command>) with `add_parser`
and `run(args) -> int`. Only `main` turns a WfgenError into a message and an
exit status (2 bad usage or file, 125 could not run, the container's own code
when it ran and failed); no other module prints errors or picks exit codes.
stdout carries the product (workflow YAML, result JSON); progress and
diagnostics go to stderr. Commands import their machinery lazily so
`generate` and `validate` start fast, and the parser imports only the module
of the command chosen (COMMANDS holds every command's one-line help)."""

from __future__ import annotations

import argparse
import builtins
import difflib
import importlib
import os
import sys
from collections.abc import Sequence

from wfgen import __version__
from wfgen.errors import EXIT_NOT_RUN, EXIT_USAGE, SpecError, WfgenError

# command name -> its one-line help (the module's HELP; tests/test_cli.py holds them
# equal), so that `wfgen --help` and a chosen command import no other command's module
COMMANDS = {
    "init": "write a commented job.yaml to start from",
    "generate": "emit the workflow YAML for a job spec",
    "validate": "check job specs or any Cloud Workflows YAML",
    "schema": "print the job spec's JSON Schema (for editors)",
    "run": "run a job spec or a workflow on Cloud Workflows, or here with --local",
    "serve": "serve the Workflows, Executions, Compute Engine, Cloud Scheduler, Eventarc and "
             "Pub/Sub APIs locally",
    "deploy": "deploy a job spec's workflow (or a workflow YAML) to Cloud Workflows",
    "status": "show an execution: state, step, attempt, VM, duration, result or error",
    "logs": "print a job's output: from its VM's console, or Cloud Logging once the VM is gone",
    "list": "list recent executions (of one workflow, or of every workflow in the location)",
    "cancel": "cancel an execution and delete its VMs (waits until they are gone)",
    "gc": "list (or --delete) VMs left by executions that are no longer running",
    "schedule": "start a job on a cron schedule (Cloud Scheduler)",
    "trigger": "start a job for every message on a Pub/Sub topic (Eventarc)",
}


def _err(message: str) -> None:
    from wfgen.cli.colour import paint

    print(f"{paint('wfgen:', 'bold_red', sys.stderr)} {message}", file=sys.stderr)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser. Given argv, only the command it names gets its arguments (and
    its module imported); without, every command does."""
    parser = argparse.ArgumentParser(
        prog="wfgen",
        description="Turn a short job spec into a Cloud Workflows definition that runs one "
                    "container job on a throw-away Compute Engine VM; validate it, and run it "
                    "locally.",
        epilog="start here:\n  wfgen init my-job\n  wfgen generate my-job/job.yaml\n"
               "  wfgen run --local --on-host my-job/job.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"wfgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = None if argv is None else next((a for a in argv if not a.startswith("-")), None)
    for name, summary in COMMANDS.items():
        if argv is not None and name != chosen:
            sub.add_parser(name, help=summary)  # listed; never parsed in this run
            continue
        module = importlib.import_module(f"wfgen.cli.{_module_name(name)}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP,
                           epilog=module.EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(handler=module.run)
    return parser


def _module_name(command: str) -> str:
    """The module of a command; `list` lives in list_.py, since a submodule named
    like a builtin would shadow it in this package (list() in main)."""
    name = command.replace("-", "_")
    return f"{name}_" if hasattr(builtins, name) else name


def _suggest_command(argv: Sequence[str]) -> str | None:
    """'did you mean' for a mistyped command (argparse only lists the choices)."""
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is None or first in COMMANDS:
        return None
    close = difflib.get_close_matches(first, COMMANDS, n=1)
    return f"unknown command {first!r}; did you mean {close[0]!r}?" if close else None


def _suggest_option(parser: argparse.ArgumentParser, argv: Sequence[str]) -> str | None:
    """'did you mean' for a mistyped option (`run --locl`): argparse only says
    'unrecognized arguments'."""
    command = next((a for a in argv if not a.startswith("-")), None)
    sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
    target = sub.choices.get(command, parser) if sub and command else parser
    known = [o for a in target._actions for o in a.option_strings if o.startswith("--")]
    for arg in argv:
        name = arg.split("=", 1)[0]
        if not name.startswith("--") or any(o.startswith(name) for o in known):
            continue
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            return f"unknown option {name!r}; did you mean {close[0]!r}?"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    suggestion = _suggest_command(argv)
    if suggestion:
        _err(suggestion)
        return EXIT_USAGE
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its own message
        if exc.code in (0, None):
            return 0
        hint = _suggest_option(parser, argv)
        if hint:
            _err(hint)
        return EXIT_USAGE
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
