"""`wfgen validate FILE...`: job specs and any Cloud Workflows YAML.

Exit status: 0 clean (warnings are printed but do not count), 1 errors, 2 when
a file could not be read at all. Errors, warnings, notes and the summary all go
to stdout, in that order (as linters print them), so `wfgen validate job.yaml |
less` shows the whole answer."""

from __future__ import annotations

import argparse

from wfgen.errors import EXIT_USAGE

HELP = "check job specs or any Cloud Workflows YAML"
EXAMPLES = "examples:\n  wfgen validate job.yaml\n  wfgen validate workflow.yaml other.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing when clean")


def run(args: argparse.Namespace) -> int:
    from wfgen.job.validate import capacity_order, validate_notes, validate_paths

    outcome = validate_paths(args.files)
    for finding in outcome.errors:
        print(finding)
    for warning in outcome.warnings:  # accepted by the service: printed, never fatal
        print(warning)
    if outcome.errors:
        print(f"{len(outcome.errors)} problem(s) found")
        return EXIT_USAGE if outcome.unreadable else 1
    if not args.quiet:
        for note in validate_notes(args.files):
            print(note)
        for path in args.files:
            order = capacity_order(path)
            if order:
                print(order)
    if outcome.warnings or not args.quiet:
        said = f", {len(outcome.warnings)} warning(s)" if outcome.warnings else ""
        print(f"{len(args.files)} file(s) OK{said}")
    return 0
