"""Write the trimmed Discovery documents `wfgen serve` checks requests against.

Google publishes a machine-readable description of each API (a Discovery
document); google-api-python-client ships them. This script keeps, of each API
serve implements, only the methods serve answers and the schemas they reach,
without prose, and writes them to wfgen/server/discovery/ with the package name
and version they came from. Run it with `make discovery` (which installs the
pinned package); never edit the output by hand.

A new API in serve: add its methods to KEEP and run `make discovery`."""

from __future__ import annotations

import json
import sys
from importlib import metadata, resources
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "wfgen" / "server" / "discovery"
PACKAGE = "google-api-python-client"

# (API, version): the method ids serve implements
KEEP: dict[tuple[str, str], list[str]] = {
    ("workflows", "v1"): [
        "workflows.projects.locations.workflows.create",
        "workflows.projects.locations.workflows.delete",
        "workflows.projects.locations.workflows.get",
        "workflows.projects.locations.workflows.list",
        "workflows.projects.locations.workflows.listRevisions",
        "workflows.projects.locations.workflows.patch",
        "workflows.projects.locations.operations.get",
    ],
    ("workflowexecutions", "v1"): [
        "workflowexecutions.projects.locations.workflows.executions.create",
        "workflowexecutions.projects.locations.workflows.executions.list",
        "workflowexecutions.projects.locations.workflows.executions.get",
        "workflowexecutions.projects.locations.workflows.executions.cancel",
        "workflowexecutions.projects.locations.workflows.executions.callbacks.list",
    ],
    ("compute", "v1"): [
        "compute.instances.list", "compute.instances.insert", "compute.instances.aggregatedList",
        "compute.instances.get", "compute.instances.delete", "compute.instances.stop",
        "compute.instances.start", "compute.instances.getSerialPortOutput",
        "compute.zoneOperations.get", "compute.zoneOperations.wait",
        "compute.images.getFromFamily",
        "compute.resourcePolicies.insert", "compute.resourcePolicies.get",
        "compute.resourcePolicies.list", "compute.resourcePolicies.delete",
        "compute.regionOperations.get", "compute.regionOperations.wait",
    ],
    ("logging", "v2"): ["logging.entries.list"],
    ("cloudscheduler", "v1"): [
        "cloudscheduler.projects.locations.jobs.create",
        "cloudscheduler.projects.locations.jobs.delete",
        "cloudscheduler.projects.locations.jobs.get",
        "cloudscheduler.projects.locations.jobs.list",
        "cloudscheduler.projects.locations.jobs.patch",
        "cloudscheduler.projects.locations.jobs.pause",
        "cloudscheduler.projects.locations.jobs.resume",
        "cloudscheduler.projects.locations.jobs.run",
    ],
    ("eventarc", "v1"): [
        "eventarc.projects.locations.triggers.create",
        "eventarc.projects.locations.triggers.delete",
        "eventarc.projects.locations.triggers.get",
        "eventarc.projects.locations.triggers.list",
        "eventarc.projects.locations.triggers.patch",
    ],
    ("pubsub", "v1"): [
        "pubsub.projects.topics.create", "pubsub.projects.topics.delete",
        "pubsub.projects.topics.get", "pubsub.projects.topics.publish",
        "pubsub.projects.topics.subscriptions.list",
        "pubsub.projects.subscriptions.create", "pubsub.projects.subscriptions.get",
        "pubsub.projects.subscriptions.list", "pubsub.projects.subscriptions.patch",
        "pubsub.projects.subscriptions.delete", "pubsub.projects.subscriptions.pull",
        "pubsub.projects.subscriptions.acknowledge",
        "pubsub.projects.subscriptions.modifyAckDeadline",
    ],
    ("secretmanager", "v1"): [
        "secretmanager.projects.secrets.create", "secretmanager.projects.secrets.get",
        "secretmanager.projects.secrets.list", "secretmanager.projects.secrets.delete",
        "secretmanager.projects.secrets.addVersion",
        "secretmanager.projects.secrets.getIamPolicy",
        "secretmanager.projects.secrets.setIamPolicy",
        "secretmanager.projects.secrets.versions.get",
        "secretmanager.projects.secrets.versions.list",
        "secretmanager.projects.secrets.versions.access",
        "secretmanager.projects.secrets.versions.enable",
        "secretmanager.projects.secrets.versions.disable",
        "secretmanager.projects.secrets.versions.destroy",
    ],
    ("storage", "v1"): [
        "storage.buckets.insert", "storage.buckets.get", "storage.buckets.list",
        "storage.buckets.patch", "storage.buckets.update", "storage.buckets.delete",
        "storage.buckets.getStorageLayout",
        "storage.objects.insert", "storage.objects.get", "storage.objects.list",
        "storage.objects.patch", "storage.objects.update", "storage.objects.delete",
        "storage.objects.copy", "storage.objects.rewrite", "storage.objects.compose",
    ],
}

# what a check needs of a parameter or a schema; prose and examples are dropped
KEEP_KEYS = {"type", "format", "enum", "items", "properties", "additionalProperties", "$ref",
             "readOnly", "required", "location", "repeated", "pattern", "minimum", "maximum",
             "annotations", "id"}


def _methods(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {m["id"]: m for m in resource.get("methods", {}).values()}
    for child in resource.get("resources", {}).values():
        found.update(_methods(child))
    return found


def _trim(node: Any) -> Any:
    """The node without prose; a property map keeps every name (names are data)."""
    if isinstance(node, list):
        return [_trim(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in ("properties", "parameters"):
            out[key] = {name: _trim(sub) for name, sub in value.items()}
        elif key in KEEP_KEYS:
            out[key] = _trim(value)
    return out


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node)) if node else set()
    return set()


def trim(doc: dict[str, Any], method_ids: list[str], version: str) -> dict[str, Any]:
    every = _methods(doc)
    missing = [m for m in method_ids if m not in every]
    if missing:
        raise SystemExit(f"{doc['name']}.{doc['version']}: no such methods: {missing}")
    methods = {}
    for method_id in method_ids:
        method = every[method_id]
        kept = {key: method[key] for key in ("httpMethod", "path", "flatPath",
                                              "parameterOrder", "request", "response")
                if key in method}
        upload = method.get("mediaUpload", {}).get("protocols", {})
        if upload:  # the upload service's paths (media, multipart, resumable bodies)
            kept["mediaUpload"] = {kind: {"path": spec["path"]} for kind, spec in
                                   sorted(upload.items())}
        if method.get("useMediaDownloadService"):  # alt=media also under /download/
            kept["useMediaDownloadService"] = True
        kept["parameters"] = _trim({"parameters": method.get("parameters", {})})["parameters"]
        methods[method_id] = kept
    schemas: dict[str, Any] = {}
    todo = _refs(methods)
    while todo:
        name = todo.pop()
        if name in schemas:
            continue
        schemas[name] = _trim(doc["schemas"][name])
        todo |= _refs(schemas[name]) - set(schemas)
    return {"x-wfgen-source": {"package": PACKAGE, "version": version},
            "name": doc["name"], "version": doc["version"], "revision": doc.get("revision"),
            "rootUrl": doc["rootUrl"], "servicePath": doc.get("servicePath", ""),
            "parameters": _trim({"parameters": doc.get("parameters", {})})["parameters"],
            "methods": methods,
            "schemas": dict(sorted(schemas.items()))}


def main() -> int:
    version = metadata.version(PACKAGE)
    documents = resources.files("googleapiclient") / "discovery_cache" / "documents"
    OUT.mkdir(parents=True, exist_ok=True)
    for (api, api_version), method_ids in KEEP.items():
        doc = json.loads((documents / f"{api}.{api_version}.json").read_text(encoding="utf-8"))
        trimmed = trim(doc, method_ids, version)
        target = OUT / f"{api}.{api_version}.json"
        target.write_text(json.dumps(trimmed, indent=1, sort_keys=False) + "\n",
                          encoding="utf-8")
        print(f"{target.relative_to(OUT.parent.parent.parent)}: {len(trimmed['methods'])} "
              f"methods, {len(trimmed['schemas'])} schemas (revision {trimmed['revision']})")
    print(f"from {PACKAGE} {version}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
