"""machine.disk_type and machine.local_ssd: validate refuses what Compute Engine
would (naming the field and line), the insert body carries the boot disk type
and NVMe scratch disks as the compute v1 document describes them, and a local
run's container gets a writable scratch at $WFGEN_SCRATCH_DIR."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.discovery import problems
from wfgen.errors import SpecError
from wfgen.job.render import render_workflow
from wfgen.job.spec import load_spec_text

ROOT = Path(__file__).resolve().parent.parent


def _spec(machine: str, extra: str = "") -> str:
    return f"container:\n  image: alpine\nmachine:\n{machine}{extra}"


def _create_vm(text: str) -> dict:
    tree = YAML(typ="safe").load(render_workflow(load_spec_text(text, "job.yaml")))
    return tree["run_job"]["steps"][0]["run_attempt"]["try"]["steps"][1]["create_vm"]["args"]


@pytest.mark.parametrize(("machine", "field", "words"), [
    ("  type: c4-standard-8\n  disk_type: pd-ssd\n", "machine.disk_type", "only Hyperdisk"),
    ("  type: a3-ultragpu-8g\n  disk_type: pd-balanced\n", "machine.disk_type",
     "only Hyperdisk"),
    ("  type: n1-standard-8\n  disk_type: hyperdisk-balanced\n", "machine.disk_type",
     "takes Persistent Disk"),
    ("  type: n1-standard-8\n  disk_type: ssd\n", "machine.disk_type",
     "not a disk type"),
    ("  type: n2-standard-16\n  local_ssd: 1\n", "machine.local_ssd",
     "attaches 2, 4, 8, 16 or 24"),
    ("  type: n1-standard-4\n  local_ssd: 9\n", "machine.local_ssd", "not 9"),
    ("  type: e2-standard-4\n  local_ssd: 1\n", "machine.local_ssd", "E2 series has none"),
    ("  type: c3-standard-8\n  local_ssd: 2\n", "machine.local_ssd", "-lssd"),
    ("  type: n1-standard-4\n  local_ssd: 25\n", "machine.local_ssd", "24"),
])
def test_validate_refuses_what_compute_engine_would_naming_the_field(machine, field, words):
    with pytest.raises(SpecError) as info:
        load_spec_text(_spec(machine), "job.yaml")
    err = info.value
    assert err.location is not None and err.location.field == field, str(err)
    assert err.location.line in (4, 5, 6), str(err)
    assert words in str(err)


@pytest.mark.parametrize("machine", [
    "  type: c4-standard-8\n  disk_type: hyperdisk-balanced\n",
    "  type: c3-standard-8\n  disk_type: pd-ssd\n",
    "  type: n4-standard-8\n",  # unset: Compute Engine's default for the series
    "  type: n2-standard-16\n  local_ssd: 2\n  disk_type: pd-balanced\n",
    "  type: c2-standard-60\n  local_ssd: 8\n",
    "  type: a2-highgpu-2g\n  local_ssd: 4\n",
])
def test_combinations_google_accepts_pass(machine):
    load_spec_text(_spec(machine), "job.yaml")


def test_a_fallback_machine_is_checked_against_the_disk_type():
    text = _spec("  type: c3-standard-8\n  disk_type: pd-ssd\n",
                 "fallback: [{type: c4-standard-8}]\n")
    with pytest.raises(SpecError, match="a fallback's machine: c4-standard-8 takes only"):
        load_spec_text(text, "job.yaml")


def test_the_insert_body_carries_the_boot_disk_type_and_nvme_scratch_disks():
    args = _create_vm(_spec("  type: n2-standard-16\n  disk_type: pd-ssd\n  local_ssd: 2\n"))
    body = args["body"]
    boot, *scratch = body["disks"]
    assert boot["boot"] is True
    assert boot["initializeParams"]["diskType"] == "zones/us-central1-a/diskTypes/pd-ssd"
    assert scratch == [{"type": "SCRATCH", "autoDelete": True, "interface": "NVME",
                        "initializeParams": {
                            "diskType": "zones/us-central1-a/diskTypes/local-ssd"}}] * 2
    metadata = {item["key"]: item["value"] for item in body["metadata"]["items"]}
    assert metadata["wfgen-local-ssd"] == "2"
    assert problems(body) == []  # fits the compute v1 Discovery document


def test_a_failover_names_the_disk_types_in_the_zone_of_each_try():
    args = _create_vm(_spec("  type: n1-standard-8\n  disk_type: pd-ssd\n  local_ssd: 1\n",
                            "zone: [us-central1-a, us-central1-b]\n"))
    disks = args["body"]["disks"]
    assert disks[0]["initializeParams"]["diskType"] == \
        '${"zones/" + failover.at.zone + "/diskTypes/pd-ssd"}'
    assert disks[1]["initializeParams"]["diskType"] == \
        '${"zones/" + failover.at.zone + "/diskTypes/local-ssd"}'


def test_without_the_fields_the_boot_disk_is_balanced_and_there_is_no_scratch():
    body = _create_vm(_spec("  type: n1-standard-8\n"))["body"]
    assert len(body["disks"]) == 1
    assert body["disks"][0]["initializeParams"]["diskType"] == \
        "zones/us-central1-a/diskTypes/pd-balanced"
    assert "wfgen-local-ssd" not in {item["key"] for item in body["metadata"]["items"]}
    assert problems(body) == []


@pytest.mark.parametrize(("machine", "expected"), [
    ("  type: c4-standard-8\n", "hyperdisk-balanced"),  # Hyperdisk only
    ("  type: c3-standard-8\n", "pd-balanced"),  # takes both
    ("  type: n2-standard-8\n", "pd-balanced"),
])
def test_the_default_boot_disk_follows_the_series(machine, expected):
    params = _create_vm(_spec(machine))["body"]["disks"][0]["initializeParams"]
    assert params["diskType"] == f"zones/us-central1-a/diskTypes/{expected}"


def test_choices_that_disagree_on_the_default_leave_it_to_compute_engine():
    text = _spec("  type: n2-standard-8\n", "fallback:\n  - type: c4-standard-8\n")
    params = _create_vm(text)["body"]["disks"][0]["initializeParams"]
    assert "diskType" not in params


@pytest.mark.xdist_group("run_local")
def test_a_local_run_gets_a_writable_scratch(tmp_path):
    spec = {"name": "scratch", "timeout": "5m", "heartbeat": "1s", "retries": 0,
            "machine": {"type": "n1-standard-4", "local_ssd": 1},
            "container": {"image": "alpine", "script":
                          'echo written > "$WFGEN_SCRATCH_DIR/probe" && '
                          'cat "$WFGEN_SCRATCH_DIR/probe"'}}
    job = tmp_path / "job.yaml"
    job.write_text(json.dumps(spec))
    env = {**os.environ, "WFGEN_BACKOFF_MS": "100", "WFGEN_BACKOFF_MAX_MS": "400",
           "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "wfgen", "run", "--local", "--on-host",
                           str(job)], capture_output=True, text=True, timeout=180, env=env,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["output_tail"] == "written\n"
