"""serve checks every request against Google's Discovery documents (the trimmed
copy in wfgen/server/discovery/): in each API an unknown body field, an unknown
query parameter and a bad enum (or, where the request has no enum, a wrong
type) are refused with Google's message, while the examples, the Python
clients, gcloud and the workflows' own connector calls keep passing."""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import grpc
import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import compute_v1
from google.cloud.workflows import executions_v1

from tests.conftest import ROOT
from tests.server.serve_process import GCLOUD, LOCATION, PROJECT, Serve

pytestmark = pytest.mark.xdist_group("server_apicheck")
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
ZONE = f"/compute/v1/projects/{PROJECT}/zones/{LOCATION}-a"
SOURCE = "main:\n  steps:\n    - done:\n        return: 1\n"
DISCOVERY = ROOT / "wfgen" / "server" / "discovery"
UNDESCRIBED = "is not in Google's description"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    server = Serve(tmp_path_factory.mktemp("apicheck")).start()
    yield server
    server.stop()
    assert UNDESCRIBED not in server.log(), server.log()
    assert "internal error" not in server.log(), server.log()


def _trim_script():
    spec = importlib.util.spec_from_file_location("trim_discovery",
                                                  ROOT / "scripts" / "trim_discovery.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_documents_are_the_pinned_packages_and_cover_what_the_script_keeps():
    pin = next(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["discovery"] if d.startswith("google-api-python-client"))
    version = pin.split("==")[1]
    script = _trim_script()
    for (api, api_version), method_ids in script.KEEP.items():
        doc = json.loads((DISCOVERY / f"{api}.{api_version}.json").read_text())
        assert doc["x-wfgen-source"] == {"package": "google-api-python-client",
                                         "version": version}
        assert sorted(doc["methods"]) == sorted(method_ids)
        for method in doc["methods"].values():  # every schema a method names is there
            for ref in (method.get("request"), method.get("response")):
                assert ref is None or ref["$ref"] in doc["schemas"]
    readme = (ROOT / "README.md").read_text()
    assert f"google-api-python-client {version}" in readme


def _create_workflow(serve: Serve, workflow_id: str) -> None:
    status, body = serve.call("POST", f"/v1/{PARENT}/workflows?workflowId={workflow_id}",
                              {"sourceContents": SOURCE})
    assert status == 200 and body["done"] and "error" not in body, body


UNKNOWN_FIELD = [  # (API, method, path, body, Google's message)
    ("workflows", "POST", f"/v1/{PARENT}/workflows?workflowId=wf-a",
     {"sourceContents": SOURCE, "sourceCode": SOURCE},
     "Invalid JSON payload received. Unknown name \"sourceCode\" at 'workflow': Cannot find "
     "field."),
    ("executions", "POST", f"/v1/{PARENT}/workflows/known/executions",
     {"argument": "{}", "arguments": "{}"},
     "Invalid JSON payload received. Unknown name \"arguments\" at 'execution': Cannot find "
     "field."),
    ("compute", "POST", f"{ZONE}/instances",
     {"name": "vm-a", "scheduling": {"maxRunDurationSeconds": 5}},
     "Invalid JSON payload received. Unknown name \"maxRunDurationSeconds\" at "
     "'resource.scheduling': Cannot find field."),
    ("logging", "POST", "/v2/entries:list", {"resourceNames": [f"projects/{PROJECT}"],
                                             "order": "timestamp desc"},
     "Invalid JSON payload received. Unknown name \"order\": Cannot find field."),
    ("scheduler", "POST", f"/v1/{PARENT}/jobs",
     {"name": f"{PARENT}/jobs/j", "schedule": "* * * * *", "retries": 3},
     "Invalid JSON payload received. Unknown name \"retries\" at 'job': Cannot find field."),
    ("eventarc", "POST", f"/v1/{PARENT}/triggers?triggerId=t",
     {"destination": {"workflow": f"{PARENT}/workflows/known"}, "filters": []},
     "Invalid JSON payload received. Unknown name \"filters\" at 'trigger': Cannot find "
     "field."),
    ("pubsub", "PUT", f"/v1/projects/{PROJECT}/topics/topic-a", {"retention": "1s"},
     "Invalid JSON payload received. Unknown name \"retention\": Cannot find field."),
    ("secretmanager", "POST", f"/v1/projects/{PROJECT}/secrets?secretId=s-a",
     {"replication": {"automatic": {}}, "rotate": True},
     "Invalid JSON payload received. Unknown name \"rotate\" at 'secret': Cannot find "
     "field."),
    ("storage", "POST", f"/storage/v1/b?project={PROJECT}", {"name": "bkt-a", "colour": "b"},
     "Invalid JSON payload received. Unknown name \"colour\" at 'resource': Cannot find "
     "field."),
]

UNKNOWN_QUERY = [  # (API, method, path): each gets ?wfgenBogus=1
    ("workflows", "GET", f"/v1/{PARENT}/workflows"),
    ("executions", "GET", f"/v1/{PARENT}/workflows/known/executions"),
    ("compute", "GET", f"/compute/v1/projects/{PROJECT}/aggregated/instances"),
    ("logging", "POST", "/v2/entries:list"),
    ("scheduler", "GET", f"/v1/{PARENT}/jobs"),
    ("eventarc", "GET", f"/v1/{PARENT}/triggers"),
    ("pubsub", "GET", f"/v1/projects/{PROJECT}/topics/topic-a"),
    ("secretmanager", "GET", f"/v1/projects/{PROJECT}/secrets"),
    ("storage", "GET", "/storage/v1/b/bkt-a/o/dir%2Ffile.txt"),
]

BAD_VALUE = [  # (API, method, path, body, the start of Google's message)
    ("workflows", "POST", f"/v1/{PARENT}/workflows?workflowId=wf-b",
     {"sourceContents": SOURCE, "callLogLevel": "LOG_EVERYTHING"},
     "Invalid value at 'workflow.call_log_level' (TYPE_ENUM), \"LOG_EVERYTHING\""),
    ("executions", "GET", f"/v1/{PARENT}/workflows/known/executions?view=WIDE", None,
     "Invalid value at 'view' (TYPE_ENUM), \"WIDE\""),
    ("compute", "POST", f"{ZONE}/instances",
     {"name": "vm-b", "scheduling": {"provisioningModel": "CHEAP"}},
     "Invalid value at 'resource.scheduling.provisioning_model' (TYPE_ENUM), \"CHEAP\""),
    ("logging", "POST", "/v2/entries:list", {"resourceNames": [f"projects/{PROJECT}"],
                                             "pageSize": "ten"},
     "Invalid value at 'page_size' (TYPE_INT32), \"ten\""),
    ("scheduler", "POST", f"/v1/{PARENT}/jobs",
     {"name": f"{PARENT}/jobs/j", "schedule": "* * * * *",
      "httpTarget": {"uri": "http://127.0.0.1:9/", "httpMethod": "BREW"}},
     "Invalid value at 'job.http_target.http_method' (TYPE_ENUM), \"BREW\""),
    ("eventarc", "POST", f"/v1/{PARENT}/triggers?triggerId=t",
     {"destination": {"workflow": f"{PARENT}/workflows/known"}, "labels": ["a"]},
     "Invalid value at 'trigger.labels' (map), [\"a\"]"),
    ("pubsub", "PUT", f"/v1/projects/{PROJECT}/topics/topic-b", {"state": "PAUSED"},
     "Invalid value at 'state' (TYPE_ENUM), \"PAUSED\""),
    ("secretmanager", "POST", f"/v1/projects/{PROJECT}/secrets?secretId=s-b",
     {"replication": {"automatic": {}}, "versionDestroyTtl": 7},
     "Invalid value at 'secret.version_destroy_ttl' (TYPE_STRING), 7"),
    ("storage", "GET", "/storage/v1/b/bkt-a/o?projection=everything", None,
     "Invalid value at 'projection' (TYPE_ENUM), \"everything\""),
]


@pytest.mark.parametrize(("api", "method", "path", "body", "message"), UNKNOWN_FIELD,
                         ids=[c[0] for c in UNKNOWN_FIELD])
def test_an_unknown_body_field_is_refused_with_googles_message(serve, api, method, path, body,
                                                               message):
    status, answer = serve.call(method, path, body)
    assert status == 400, answer
    assert answer["error"]["message"] == message
    if api not in ("compute", "storage"):  # google.rpc.Status with a BadRequest detail
        assert answer["error"]["status"] == "INVALID_ARGUMENT"
        assert answer["error"]["details"][0]["@type"] == \
            "type.googleapis.com/google.rpc.BadRequest"
    else:  # Compute Engine's and Cloud Storage's own shape
        assert answer["error"]["errors"][0]["reason"] == "invalid"


@pytest.mark.parametrize(("api", "method", "path"), UNKNOWN_QUERY,
                         ids=[c[0] for c in UNKNOWN_QUERY])
def test_an_unknown_query_parameter_is_refused_with_googles_message(serve, api, method, path):
    body = {"resourceNames": [f"projects/{PROJECT}"]} if method == "POST" else None
    status, answer = serve.call(method, f"{path}?wfgenBogus=1", body)
    assert status == 400, answer
    assert answer["error"]["message"] == (
        "Invalid JSON payload received. Unknown name \"wfgenBogus\": Cannot bind query "
        "parameter. Field 'wfgenBogus' could not be found in request message.")


@pytest.mark.parametrize(("api", "method", "path", "body", "message"), BAD_VALUE,
                         ids=[c[0] for c in BAD_VALUE])
def test_a_bad_enum_or_type_is_refused_with_googles_message(serve, api, method, path, body,
                                                            message):
    status, answer = serve.call(method, path, body)
    assert status == 400, answer
    assert answer["error"]["message"] == message


def test_returnpartialsuccess_is_refused_and_wfgen_no_longer_sends_it(serve):
    status, answer = serve.call(
        "GET", f"/compute/v1/projects/{PROJECT}/aggregated/instances?returnPartialSuccess=true")
    assert status == 400 and "Cannot bind query parameter" in answer["error"]["message"]
    source = (ROOT / "wfgen" / "backends" / "cloud.py").read_text()
    assert '"returnPartialSuccess"' not in source


def test_the_documented_limits_are_enforced(serve):
    status, answer = serve.call("POST", f"/v1/{PARENT}/workflows?workflowId=wf-long",
                                {"sourceContents": SOURCE, "description": "d" * 1001})
    assert status == 400
    assert answer["error"]["message"].startswith("Invalid value at 'workflow.description': "
                                                 "must be at most 1000 characters")
    status, answer = serve.call("POST", f"/v1/{PARENT}/workflows?workflowId=wf-big",
                                {"sourceContents": SOURCE + "#" * (128 * 1024)})
    assert status == 400 and "workflow.source_contents" in answer["error"]["message"]
    labels = {f"k{i}": "v" for i in range(65)}
    status, answer = serve.call("POST", f"/v1/{PARENT}/workflows?workflowId=wf-lab",
                                {"sourceContents": SOURCE, "labels": labels})
    assert status == 400 and "at most 64 entries" in answer["error"]["message"]
    status, answer = serve.call("POST", f"{ZONE}/instances",
                                {"name": "vm-c", "metadata": {"items": [{"value": "v"}]}})
    assert status == 400  # the document marks an item's key required for instances.insert
    assert answer["error"]["message"] == ("Required field 'resource.metadata.items[0].key' "
                                          "not specified")
    _create_workflow(serve, "limits")
    status, answer = serve.call("POST", f"/v1/{PARENT}/workflows/limits/executions",
                                {"argument": json.dumps({"x": "y" * 33 * 1024})})
    assert status == 400 and "execution.argument" in answer["error"]["message"]


def test_a_workflow_id_must_end_with_a_letter_or_digit(serve):
    status, answer = serve.call("POST", f"/v1/{PARENT}/workflows?workflowId=nightly-etl_",
                                {"sourceContents": SOURCE})
    assert status == 400 and "end with a letter or digit" in answer["error"]["message"]
    status, answer = serve.call("POST", f"/v1/{PARENT}/workflows?workflowId={'a' * 65}",
                                {"sourceContents": SOURCE})
    assert status == 400


def test_null_means_unset_and_query_names_may_be_snake_case(serve):
    _create_workflow(serve, "nulls")
    _create_workflow(serve, "nulls-2")
    status, answer = serve.call("POST", f"/v1/{PARENT}/workflows/nulls/executions",
                                {"argument": None, "callLogLevel": None})
    assert status == 200, answer
    status, answer = serve.call("GET", f"/v1/{PARENT}/workflows?page_size=1")
    assert status == 200 and len(answer["workflows"]) == 1 and answer["nextPageToken"]


def test_int64_fields_are_answered_as_strings(serve):
    body = {"name": "int64-vm", "scheduling": {"maxRunDuration": {"seconds": 3600}}}
    status, operation = serve.call("POST", f"{ZONE}/instances", body)
    assert status == 200, operation
    try:
        status, instance = serve.call("GET", f"{ZONE}/instances/int64-vm")
        assert status == 200
        assert instance["scheduling"]["maxRunDuration"]["seconds"] == "3600"
        assert isinstance(instance["id"], str)
        client = compute_v1.InstancesClient(
            credentials=AnonymousCredentials(), transport="rest",
            client_options={"api_endpoint": serve.url})
        got = client.get(project=PROJECT, zone=f"{LOCATION}-a", instance="int64-vm")
        assert got.scheduling.max_run_duration.seconds == 3600
    finally:
        serve.call("DELETE", f"{ZONE}/instances/int64-vm")


def test_a_connector_call_google_would_refuse_fails_the_step(serve, tmp_path):
    source = f"""main:
  steps:
    - insert:
        try:
          call: googleapis.compute.v1.instances.insert
          args:
            project: {PROJECT}
            zone: {LOCATION}-a
            body:
              name: refused-vm
              scheduling:
                preemptable: true
        except:
          as: e
          steps:
            - give:
                return: ${{e}}
"""
    status, body = serve.call("POST", f"/v1/{PARENT}/workflows?workflowId=connector",
                              {"sourceContents": source})
    assert status == 200 and "error" not in body, body
    status, execution = serve.call("POST", f"/v1/{PARENT}/workflows/connector/executions", {})
    assert status == 200
    done = serve.wait_execution(execution["name"])
    assert done["state"] == "SUCCEEDED", done
    error = json.loads(done["result"])
    assert error["code"] == 400
    assert "Unknown name \"preemptable\" at 'resource.scheduling'" in error["message"]
    status, _ = serve.call("GET", f"{ZONE}/instances/refused-vm")
    assert status == 404  # the refused call never reached the local compute


def test_a_connector_of_a_name_method_takes_the_whole_resource_name():
    """executions.get/cancel take `name` (the `{+name}` path, held to its
    documented pattern), not the flat path's projectsId, locationsId, ..."""
    from wfgen.server.apicheck import check_connector

    get = "googleapis.workflowexecutions.v1.projects.locations.workflows.executions.get"
    cancel = "googleapis.workflowexecutions.v1.projects.locations.workflows.executions.cancel"
    name = f"{PARENT}/workflows/w/executions/e"
    assert check_connector(get, {"name": name, "view": "BASIC"}) is None
    assert check_connector(cancel, {"name": name}) is None
    assert "Must be a match of regex" in check_connector(get, {"name": f"{PARENT}/w"})
    assert check_connector(get, {"view": "BASIC"}) == "Required parameter 'name' not specified"
    assert "TYPE_ENUM" in check_connector(get, {"name": name, "view": "ALL"})
    assert check_connector("googleapis.compute.v1.instances.get",
                           {"project": PROJECT, "zone": f"{LOCATION}-a"}) == \
        "Required parameter 'instance' not specified"


def test_grpc_junk_is_invalid_argument_and_resources_are_checked(serve):
    channel = grpc.insecure_channel(f"127.0.0.1:{serve.grpc_port}")
    call = channel.unary_unary(
        "/google.cloud.workflows.executions.v1.Executions/CreateExecution",
        request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.RpcError) as junk:
        call(b"\xff\xff\xff\xff\x0f\x12", timeout=10)
    assert junk.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()
    _create_workflow(serve, "grpc-checked")
    client = executions_v1.ExecutionsClient(
        transport=executions_v1.services.executions.transports.ExecutionsGrpcTransport(
            channel=grpc.insecure_channel(f"127.0.0.1:{serve.grpc_port}")))
    with pytest.raises(exceptions.InvalidArgument, match=r"execution\.argument"):
        client.create_execution(parent=f"{PARENT}/workflows/grpc-checked",
                                execution={"argument": json.dumps({"x": "y" * 40_000})})
    made = client.create_execution(parent=f"{PARENT}/workflows/grpc-checked",
                                   execution={"argument": "{}"})
    assert made.name.startswith(f"{PARENT}/workflows/grpc-checked/executions/")


@pytest.mark.skipif(GCLOUD is None, reason="gcloud is not on PATH")
def test_gcloud_keeps_passing_the_check(serve, tmp_path):
    source = tmp_path / "g.yaml"
    source.write_text(SOURCE)
    deployed = serve.gcloud("workflows", "deploy", "gcloud-checked", f"--source={source}",
                            "--description=checked", "--labels=team=data")
    assert deployed.returncode == 0, deployed.stderr
    ran = serve.gcloud("workflows", "run", "gcloud-checked", "--format=json")
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["state"] == "SUCCEEDED"
    listed = serve.gcloud("compute", "instances", "list", "--format=json")
    assert listed.returncode == 0 and "did not succeed" not in listed.stderr, listed.stderr


def _wfgen(serve: Serve, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"WORKFLOWS_EMULATOR_HOST": f"127.0.0.1:{serve.port}",
           "WORKFLOWS_EMULATOR_GRPC_HOST": f"127.0.0.1:{serve.grpc_port}",
           "WFGEN_BACKOFF_MS": "100", "WFGEN_BACKOFF_MAX_MS": "400"}
    return subprocess.run([sys.executable, "-m", "wfgen", *args], capture_output=True,
                          text=True, timeout=240, env={**os.environ, **env}, cwd=ROOT)


# examples whose programs are not on this machine: train-gpu's train.py, the
# fine-tuning image's own entrypoint (the stand-in runs its args), torchrun
NOT_RUNNABLE_HERE = ("train-gpu.yaml", "finetune-anywhere.yaml", "torchrun.yaml")


@pytest.mark.parametrize("example", sorted(p.name for p in (ROOT / "examples").glob("*.yaml")))
def test_every_example_runs_through_the_checked_serve(serve, example):
    done = _wfgen(serve, "run", str(Path("examples") / example))
    if example in NOT_RUNNABLE_HERE:  # the job fails, but every request on the way (a GPU
        # VM and its failover tries included) was accepted
        assert done.returncode != 0 and "container exited" in done.stderr, done.stderr
    else:
        assert done.returncode == 0, done.stderr
    assert not re.search(r"(Unknown name|Cannot bind|Invalid value at)", done.stderr + done.stdout)


def test_each_part_of_a_compute_batch_is_checked(serve):
    boundary = "===============1234567890=="
    parts = [f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: <part+{index}>"
             f"\r\n\r\nDELETE {ZONE}/instances/batch-missing?{query} HTTP/1.1\r\n"
             "Content-Type: application/json\r\n\r\n"
             for index, query in enumerate(("alt=json", "alt=json&wfgenBogus=1"), start=1)]
    connection = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=30)
    connection.request("POST", "/batch/compute/v1", body=("".join(parts) + f"--{boundary}--"),
                       headers={"Content-Type": f'multipart/mixed; boundary="{boundary}"'})
    answer = connection.getresponse()
    text = answer.read().decode()
    connection.close()
    assert answer.status == 200
    first, second = text.split("HTTP/1.1 ")[1:]
    assert first.startswith("404 ")  # checked, then answered: no such VM
    assert second.startswith("400 ") and "Cannot bind query parameter" in second


def _raw(serve: Serve, method: str, path: str, body: bytes = b"",
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=30)
    connection.request(method, path, body=body, headers=headers or {})
    answer = connection.getresponse()
    data = answer.read()
    connection.close()
    return answer.status, data


def test_storage_upload_and_download_paths_are_checked_and_media_is_not_json(serve):
    status, answer = serve.call("POST", f"/storage/v1/b?project={PROJECT}", {"name": "bkt-m"})
    assert status == 200, answer
    media = b"{not json at all\x00\xff"
    upload = "/upload/storage/v1/b/bkt-m/o?uploadType=media&name=dir%2Fm.bin"
    status, data = _raw(serve, "POST", upload + "&ifGenerationMatch=abc", media)
    assert status == 400
    error = json.loads(data)["error"]
    assert error["message"] == "Invalid value at 'if_generation_match' (TYPE_INT64), \"abc\""
    assert error["errors"][0]["reason"] == "invalid"
    status, data = _raw(serve, "POST", upload, media)  # the media body streams on unparsed
    assert status == 200, data
    assert json.loads(data)["size"] == str(len(media))
    status, data = _raw(serve, "GET", "/download/storage/v1/b/bkt-m/o/dir%2Fm.bin?alt=media")
    assert status == 200 and data == media
    status, data = _raw(serve, "GET",
                        "/download/storage/v1/b/bkt-m/o/dir%2Fm.bin?alt=media&wfgenBogus=1")
    assert status == 400 and b"Cannot bind query parameter" in data
    # a resumable upload's start is the object's metadata: checked like any body
    status, data = _raw(serve, "POST", "/resumable/upload/storage/v1/b/bkt-m/o?"
                        "uploadType=resumable&name=r.bin", json.dumps({"colour": "b"}).encode(),
                        {"Content-Type": "application/json"})
    assert status == 400 and b'Unknown name \\"colour\\"' in data, data
    status, data = _raw(serve, "POST", "/resumable/upload/storage/v1/b/bkt-m/o?"
                        "uploadType=resumable&name=r.bin",
                        json.dumps({"contentType": "text/plain"}).encode(),
                        {"Content-Type": "application/json"})
    assert status == 200, data


def test_storage_null_clears_a_field_as_its_patch_semantics_say(serve):
    status, answer = serve.call("POST", f"/storage/v1/b?project={PROJECT}", {"name": "bkt-n"})
    assert status == 200, answer
    status, _ = _raw(serve, "POST", "/upload/storage/v1/b/bkt-n/o?uploadType=media&name=n",
                     b"x")
    assert status == 200
    status, answer = serve.call("PATCH", "/storage/v1/b/bkt-n/o/n",
                                {"metadata": {"a": "1", "b": "2"}})
    assert status == 200 and answer["metadata"] == {"a": "1", "b": "2"}, answer
    status, answer = serve.call("PATCH", "/storage/v1/b/bkt-n/o/n", {"metadata": {"a": None}})
    assert status == 200 and answer["metadata"] == {"b": "2"}, answer
