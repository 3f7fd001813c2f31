"""`wfgen init [DIR]`: write a commented job.yaml to start from."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "write a commented job.yaml to start from"
EXAMPLES = "example:\n  wfgen init my-job && wfgen generate my-job/job.yaml"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", nargs="?", default=".", help="directory to write job.yaml in")
    p.add_argument("--force", action="store_true", help="overwrite an existing job.yaml")


def run(args: argparse.Namespace) -> int:
    from wfgen.job.starter import write_starter_job

    path = write_starter_job(Path(args.dir), force=args.force)
    print(f"wrote {path}; next: wfgen generate {path}", file=sys.stderr)
    return 0
