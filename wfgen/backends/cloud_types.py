"""What the cloud backend's parts share: the environment variables that point
it at `wfgen serve`, the roles named in permission errors, the Cloud Logging
filter of a VM's lines, the Schedule and Trigger records, and its two errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wfgen.errors import EXIT_USAGE, UsageError, WfgenError

EMULATOR_ENV = "WORKFLOWS_EMULATOR_HOST"
GRPC_ENV = "WORKFLOWS_EMULATOR_GRPC_HOST"  # only when serve's gRPC port is not REST + 1
DEFAULT_LOCAL_PROJECT = "local-project"
NO_CREDENTIALS = ("no Google Cloud credentials found: run `gcloud auth application-default "
                  "login` (or set GOOGLE_APPLICATION_CREDENTIALS to a key file)")
# The role each kind of call needs (the README's "Deploy and run" lists them).
ROLE_DEPLOY = "roles/workflows.editor (and roles/iam.serviceAccountUser on the workflow's " \
              "service account)"
ROLE_INVOKE = "roles/workflows.invoker"
ROLE_VIEW = "roles/workflows.viewer"
ROLE_VM_VIEW = "roles/compute.viewer"
ROLE_VM_ADMIN = "roles/compute.instanceAdmin.v1"
ROLE_LOGS = "roles/logging.viewer"
ROLE_SCHEDULE = ("roles/cloudscheduler.admin (and roles/iam.serviceAccountUser on the "
                 "schedule's service account)")
ROLE_TRIGGER = ("roles/eventarc.admin (and roles/iam.serviceAccountUser on the trigger's "
                "service account)")
LOGS_VM_LABEL = "compute.googleapis.com/resource_name"
LOGS_FILTER = f'resource.type="gce_instance" AND labels."{LOGS_VM_LABEL}":"-{{tag}}-"'


@dataclass
class Schedule:
    """A Cloud Scheduler job that starts executions of a workflow."""

    name: str
    schedule: str
    time_zone: str
    uri: str
    argument: Any  # the execution argument its body carries (None: none)
    service_account: str
    state: str
    next_run: str = ""
    last_attempt: str = ""
    last_error: str = ""  # the last attempt's failure, "" when it worked
    created: bool = False  # by the call that returned it


@dataclass
class Trigger:
    """An Eventarc trigger that starts an execution per Pub/Sub message."""

    name: str
    topic: str
    workflow: str
    service_account: str
    subscription: str = ""
    created: bool = False


class CloudError(WfgenError):
    """A call to the service failed (exit 125)."""


class AccessError(UsageError):
    """No credentials, or a permission the account lacks (exit 2: fix the setup)."""

    exit_code = EXIT_USAGE
