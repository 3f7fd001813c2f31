"""A split job whose items are past the shard workflow's 128 KB source, run by
`wfgen run --local` against a `wfgen serve`'s Cloud Storage (STORAGE_EMULATOR_HOST):
the items are staged one object per shard, each child reads its own with the
Cloud Storage connector, and every task sees its own item."""

from __future__ import annotations

import json

import pytest

from tests.cloud.serve_cli import serve_bucket
from tests.local.test_run_local import result_of, run_local

pytestmark = pytest.mark.xdist_group("split_items_local")
BUCKET = "wfgen-split-items"
TASKS = 200
# a task succeeds only when its item is the one made for its index
CHECK = ('case "$WFGEN_TASK_ITEM" in "$(printf %05d "$WFGEN_TASK_INDEX")-"*) exit 0;; '
         '*) echo "task $WFGEN_TASK_INDEX got ${WFGEN_TASK_ITEM%%-*}"; exit 7;; esac')


@pytest.fixture(scope="module")
def bucket(tmp_path_factory):
    with serve_bucket(tmp_path_factory.mktemp("split-items-serve"), BUCKET) as made:
        yield made


def _job(tmp_path, staging: str | None):
    items = [f"{i:05d}-" + "y" * 700 for i in range(TASKS)]
    spec = {"name": "wide-items", "container": {"image": "alpine:3.20", "script": CHECK},
            "timeout": "5m", "heartbeat": "1s", "retries": 0,
            "tasks": {"items": items, "parallelism": 40}}
    if staging:
        spec["staging"] = staging
    path = tmp_path / "job.yaml"
    path.write_text(json.dumps(spec))
    return path


def test_items_past_128_kb_run_from_staging_each_task_its_own(bucket, tmp_path):
    run = run_local(tmp_path, _job(tmp_path, f"gs://{BUCKET}/stage"), timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    summary = result_of(run)
    assert summary["counts"] == {"succeeded": TASKS, "failed": 0}, summary
    staged = [b.name for b in bucket.list_blobs(prefix="stage/items-")]
    assert len(staged) == len(summary["shards"]) >= 2
    first = json.loads(bucket.blob(sorted(staged)[0]).download_as_bytes())
    assert all(item.endswith("y" * 700) for item in first)
    assert "items staged: " in run.stderr and f"{len(staged)} uploaded" in run.stderr
    # run again: the objects are named by their content, so nothing is uploaded twice
    again = run_local(tmp_path, _job(tmp_path, f"gs://{BUCKET}/stage"), timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "(0 uploaded" in again.stderr


def test_without_staging_nothing_runs_and_the_error_says_to_set_it(bucket, tmp_path):
    run = run_local(tmp_path, _job(tmp_path, None))
    assert run.returncode == 2, run.stderr
    assert "tasks.items" in run.stderr and "128 KB" in run.stderr
    assert "set staging: gs://BUCKET/PREFIX (or --staging)" in run.stderr
    assert "Traceback" not in run.stderr
