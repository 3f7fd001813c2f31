"""`wfgen schema`: the job spec's JSON Schema, for editors."""

from __future__ import annotations

import argparse
import json

HELP = "print the job spec's JSON Schema (for editors)"
EXAMPLES = ("example (yaml-language-server, first line of job.yaml):\n"
            "  wfgen schema > job.schema.json\n"
            "  # yaml-language-server: $schema=./job.schema.json")


def add_arguments(p: argparse.ArgumentParser) -> None:
    del p  # no options


def run(args: argparse.Namespace) -> int:
    from wfgen.job.schema import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0
