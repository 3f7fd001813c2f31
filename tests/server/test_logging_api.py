"""Cloud Logging entries:list (wfgen.server.logging_api): what local VMs
printed, kept after they are deleted, filtered as the Logging query language
allows, paged and ordered; plus the filter language on its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.server.localvms import GCLOUD, PROJECT, ZONE, Bed, eventually
from wfgen.server.filters import FilterError, Matcher, parse

pytestmark = pytest.mark.xdist_group("server_logging")
BASE = f"/compute/v1/projects/{PROJECT}/zones/{ZONE}"
BY_NAME = 'resource.type="gce_instance"\nlabels."compute.googleapis.com/resource_name"="{}"'


@pytest.fixture(scope="module")
def bed(tmp_path_factory):
    bed = Bed(tmp_path_factory.mktemp("logging"))
    yield bed
    bed.close()


@pytest.fixture(scope="module")
def ended(bed):
    """Two VMs that printed and were deleted: (id of log-a, time before they booted)."""
    before = datetime.now(UTC) - timedelta(seconds=1)
    bed.boot("log-a", "for i in 1 2 3 4 5; do echo a-line-$i; done; sleep 120")
    bed.boot("log-b", "echo b-line-1; sleep 120")
    eventually(lambda: "a-line-5" in bed.console("log-a") and "b-line-1" in bed.console("log-b"),
               what="both VMs printed")
    instance_id = bed.call("GET", f"{BASE}/instances/log-a")[1]["id"]
    for name in ("log-a", "log-b"):
        status, op = bed.call("DELETE", f"{BASE}/instances/{name}")
        assert status == 200
        assert bed.call("POST", f"{BASE}/operations/{op['name']}/wait")[1]["status"] == "DONE"
    assert bed.call("GET", f"{BASE}/instances/log-a")[0] == 404
    return instance_id, before


def entries(bed, **body) -> tuple[int, dict]:
    return bed.call("POST", "/v2/entries:list", {"resourceNames": [f"projects/{PROJECT}"], **body})


def texts(result: dict) -> list[str]:
    return [e["textPayload"] for e in result.get("entries", [])]


def test_lines_of_a_deleted_vm_by_name(bed, ended):
    status, result = entries(bed, filter=BY_NAME.format("log-a"), pageSize=1000)
    assert status == 200
    lines = texts(result)
    assert [x for x in lines if x.startswith("a-line")] == [f"a-line-{i}" for i in range(1, 6)]
    assert "b-line-1" not in lines
    assert any("wfgen-shutdown" in x for x in lines)  # the shutdown script's lines too
    entry = result["entries"][0]
    assert entry["resource"]["type"] == "gce_instance"
    assert entry["resource"]["labels"]["zone"] == ZONE
    assert entry["labels"]["compute.googleapis.com/resource_name"] == "log-a"
    assert entry["logName"].startswith(f"projects/{PROJECT}/logs/")
    assert entry["timestamp"].endswith("Z")
    stamps = [e["timestamp"] for e in result["entries"]]
    assert stamps == sorted(stamps)


def test_a_part_of_the_vm_name_selects_its_vms(bed, ended):
    """labels."...resource_name":TEXT holds for the VMs whose name contains TEXT
    (any case): serve passes over the others before looking at their lines."""
    part = 'labels."compute.googleapis.com/resource_name":"{}"'
    both = texts(entries(bed, filter=part.format("log-"), pageSize=1000)[1])
    assert "a-line-1" in both and "b-line-1" in both
    only_b = texts(entries(bed, filter=part.format("OG-B"), pageSize=1000)[1])
    assert "b-line-1" in only_b and not [x for x in only_b if x.startswith("a-line")]
    assert entries(bed, filter=BY_NAME.format("log-c"))[1] == {}


def test_filter_by_instance_id_and_time(bed, ended):
    instance_id, before = ended
    status, result = entries(bed, filter=f'resource.labels.instance_id="{instance_id}" AND '
                                         'textPayload:"A-LINE"')
    assert status == 200 and texts(result) == [f"a-line-{i}" for i in range(1, 6)]
    since = before.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    status, result = entries(bed, filter=f'timestamp>="{since}" "b-line"')
    assert texts(result) == ["b-line-1"]
    later = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    status, result = entries(bed, filter=f'timestamp>="{later}"')
    assert status == 200 and result == {}
    status, result = entries(bed, filter='textPayload:"a-line" -textPayload:"a-line-1" '
                                         'OR textPayload="nothing"')
    assert texts(result) == [f"a-line-{i}" for i in range(2, 6)]


def test_a_lines_own_timestamp_as_the_bound(bed, ended):
    """serve skips lines before a timestamp>= bound without building them: the
    lines exactly at the bound are still in (>=) or out (>), to the microsecond."""
    every = entries(bed, filter=BY_NAME.format("log-a"), pageSize=1000)[1]["entries"]
    stamp = next(e["timestamp"] for e in every if e["textPayload"] == "a-line-3")
    for op, keep in ((">=", lambda t: t >= stamp), (">", lambda t: t > stamp)):
        query = BY_NAME.format("log-a") + f' timestamp{op}"{stamp}"'
        got = entries(bed, filter=query, pageSize=1000)[1]
        assert texts(got) == [e["textPayload"] for e in every if keep(e["timestamp"])]
    assert "a-line-3" in texts(entries(bed, filter=BY_NAME.format("log-a")
                                       + f' timestamp>="{stamp}"', pageSize=1000)[1])


def test_paging_and_descending_order(bed, ended):
    query = BY_NAME.format("log-a") + ' textPayload=~"^a-line-[0-9]$"'
    seen, token = [], None
    while True:
        status, page = entries(bed, filter=query, pageSize=2, orderBy="timestamp desc",
                               **({"pageToken": token} if token else {}))
        assert status == 200 and len(page.get("entries", [])) <= 2
        seen += texts(page)
        token = page.get("nextPageToken")
        if not token:
            break
    assert seen == [f"a-line-{i}" for i in range(5, 0, -1)]


def test_errors_are_google_rpc_status(bed, ended):
    status, body = entries(bed, filter='resource.type="gce_instance" AND (')
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT"
    assert "Unparseable filter" in body["error"]["message"]
    status, body = bed.call("POST", "/v2/entries:list", {"filter": ""})
    assert status == 400 and "resourceNames" in body["error"]["message"]
    status, body = entries(bed, orderBy="insertId")
    assert status == 400 and body["error"]["code"] == 400
    status, body = entries(bed, filter="resource.type=gce_instance", projectIds=["other"],
                           resourceNames=["projects/other"])
    assert status == 200 and body == {}


@pytest.mark.skipif(GCLOUD is None, reason="gcloud is not on PATH")
def test_gcloud_logging_read_after_deletion(bed, ended):
    read = bed.gcloud("logging", "read", BY_NAME.format("log-b"), "--format=json",
                      "--freshness=1h")
    assert read.returncode == 0, read.stderr
    lines = [e["textPayload"] for e in json.loads(read.stdout)]
    assert "b-line-1" in lines and not any(x.startswith("a-line") for x in lines)


# -- the filter language --------------------------------------------------------
ENTRY = {"resource": {"type": "gce_instance", "labels": {"instance_id": "42"}},
         "labels": {"compute.googleapis.com/resource_name": "vm-1"},
         "timestamp": "2024-05-01T10:00:00.5Z", "textPayload": "Hello World",
         "severity": "WARNING", "tags": ["x", "y"]}


@pytest.mark.parametrize(("text", "expected"), [
    ("", True),
    ('labels."compute.googleapis.com/resource_name"="vm-1"', True),
    ('labels."compute.googleapis.com/resource_name"="vm-2"', False),
    ('timestamp>="2024-05-01T10:00:00Z" timestamp<"2024-05-01T11:00:00+00:00"', True),
    ('timestamp>"2024-05-01T03:00:01-07:00"', False),  # the same instant, another offset
    ("resource.labels.instance_id=42", True),
    ("resource.labels.instance_id>9", True),  # numbers compare as numbers
    ("textPayload:hello", True),
    ("NOT textPayload:hello", False),
    ("-textPayload:hello", False),
    ("textPayload:nope OR textPayload:world", True),
    # OR binds tighter than AND, as in both services' filter languages
    ("textPayload:nope OR textPayload:world AND resource.type=x", False),
    ('"world"', True),
    ("labels:*", True),
    ("missing:*", False),
    ("missing!=1", True),
    ('textPayload=~"W.rld$"', True),
    ('resource.type eq "gce_.*"', True),
    ('resource.type ne "gce"', True),
    ("tags=y", True),
])
def test_filter_matches(text, expected):
    assert Matcher(text)(ENTRY) is expected


def test_filter_severity_order_is_the_callers():
    order = {"DEFAULT": 0, "INFO": 200, "WARNING": 400, "ERROR": 500}.__getitem__
    assert Matcher("severity>=INFO", orders={"severity": order})(ENTRY)
    assert not Matcher("severity>=ERROR", orders={"severity": order})(ENTRY)


@pytest.mark.parametrize("text", ["a=", "(a=b", 'a="x', "AND a=b", "a=b)", "a = = b"])
def test_filter_errors_name_the_place(text):
    with pytest.raises(FilterError):
        parse(text)
