"""`wfgen init`: a commented job.yaml that generates as-is, to start from."""

from __future__ import annotations

from pathlib import Path

from wfgen.errors import Location, UsageError
from wfgen.job.rules import default_name
from wfgen.output import write_output

STARTER = """\
# wfgen job spec: one container job on a throw-away Compute Engine VM.
# Only container.image is required; every other key shows its default or an
# example. Check it with `wfgen validate job.yaml`, then
# `wfgen generate job.yaml -o workflow.yaml` or `wfgen run --local job.yaml`.
# Editors: `wfgen schema > job.schema.json` and add the line
#   # yaml-language-server: $schema=./job.schema.json

name: {name}                  # workflow name and prefix of the VM names
# project: my-project           # default: the workflow's own project
location: us-central1           # region of the workflow
zone: us-central1-a             # zone of the VMs, in that region

container:
  image: python:3.12-slim
  command: ["python", "-c"]     # entrypoint override, as a list (default: the image's)
  args: ["print('hello from wfgen')"]   # argv list, never split on spaces
  # script: |                   # or a shell script: sh -c SCRIPT NAME ARGS ("$@")
  #   python train.py --epochs 90
  env:
    PYTHONUNBUFFERED: "1"
  # secret_env:                 # API keys from Secret Manager, read on the VM (never in env)
  #   WANDB_API_KEY: wandb-key   # its latest version; the VM's account needs secretAccessor

machine:
  type: n1-standard-4
  # accelerator: {{type: nvidia-tesla-t4, count: 1}}
  spot: false                   # true: cheaper, may be preempted (then retried)
  disk_gb: 50
  image_family: cos-stable      # Container-Optimized OS

network:
  external_ip: true             # false needs Cloud NAT to pull public images
  # subnetwork: default
  # tags: [allow-ssh]

# service_account: runner@my-project.iam.gserviceaccount.com
timeout: 7d                     # whole job, all attempts
# heartbeat: 10m                # how often the workflow checks the VM is alive
                                # (default: a quarter of timeout, 10s to 10m)
retries: 2                      # new attempts after preemption or a lost VM
retry_on_failure: false         # also retry when the container exits non-zero
labels:
  team: ml
"""


def starter_job(name: str) -> str:
    return STARTER.format(name=name)


def write_starter_job(directory: Path, *, force: bool = False) -> Path:
    if directory.exists() and not directory.is_dir():
        raise UsageError("is not a directory", Location(str(directory)))
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the directory: {exc.strerror}",
                         Location(str(directory))) from None
    path = directory / "job.yaml"
    if path.exists() and not force:
        raise UsageError("already exists (use --force to overwrite)", Location(str(path)))
    name = default_name(str(directory.resolve()) + ".yaml") if directory.name else "my-job"
    write_output(starter_job(name), str(path))
    return path
