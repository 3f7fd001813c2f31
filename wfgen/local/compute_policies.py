"""Local Compute Engine's resource policies (compact placement policies), as
`resourcePolicies.insert/get/list/delete` of the compute v1 Discovery document
answer them, with their region operations. Mixed into
wfgen.local.compute.LocalCompute, so an instance insert can check the policies
it names and a policy delete can see the instances that use it.

What Compute Engine does and this does too:

- a policy is regional (projects/P/regions/R/resourcePolicies/NAME); a second
  insert of the same name is a 409 alreadyExists;
- an instance insert naming a policy that does not exist is a 404 notFound of
  that policy, and one in another region than the instance's zone a 400;
- a policy still used by an instance (one being deleted included) cannot be
  deleted: 400 resourceInUseByAnotherResource, so a caller deletes the
  instances first and retries.

A workflow reaches them through the connector functions
googleapis.compute.v1.resourcePolicies.* (wfgen.local.connector_names)."""

from __future__ import annotations

import re
import time
from typing import Any

from wfgen.local.compute_records import (
    API,
    NAME_RE,
    ComputeError,
    _new_id,
    _stamp,
    not_found,
)

POLICY_PATH_RE = re.compile(r"(?:.*/)?projects/([^/]+)/regions/([^/]+)/resourcePolicies/([^/]+)$")


def policy_link(project: str, region: str, name: str = "") -> str:
    base = f"{API}/projects/{project}/regions/{region}"
    return f"{base}/resourcePolicies/{name}" if name else base


class ComputePolicies:
    """Resource policies over LocalCompute's state (a mixin of LocalCompute)."""

    policies: dict[tuple[str, str, str], dict[str, Any]]

    # -- the API's calls -------------------------------------------------
    def insert_policy(self, project: str, region: str, body: Any) -> dict[str, Any]:
        """resourcePolicies.insert: the policy is READY when its operation is DONE."""
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or \
                not NAME_RE.fullmatch(body["name"]):
            name = body.get("name") if isinstance(body, dict) else None
            raise ComputeError(400, f"Invalid value for field 'resource.name': '{name or ''}'. "
                               "Must be a match of regex '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)'",
                               "invalid")
        name = body["name"]
        key = (project, region, name)
        with self._lock:
            if key in self.policies:
                raise ComputeError(409, f"The resource 'projects/{project}/regions/{region}/"
                                   f"resourcePolicies/{name}' already exists", "alreadyExists")
            resource = {k: v for k, v in body.items()
                        if k in ("name", "description", "groupPlacementPolicy")}
            resource.update(kind="compute#resourcePolicy", id=_new_id(),
                            creationTimestamp=_stamp(time.time()),
                            region=policy_link(project, region), status="READY",
                            selfLink=policy_link(project, region, name))
            self.policies[key] = resource
        self.notify(f"placement policy {name} created in {region}")
        op = self._region_operation("insert", project, region, name, resource["id"])
        return dict(op.resource)

    def get_policy(self, project: str, region: str, name: str) -> dict[str, Any]:
        with self._lock:
            found = self.policies.get((project, region, name))
        if found is None:
            raise not_found(f"projects/{project}/regions/{region}/resourcePolicies/{name}")
        return dict(found)

    def list_policies(self, project: str, region: str) -> list[dict[str, Any]]:
        with self._lock:
            found = [dict(p) for (pr, rg, _n), p in self.policies.items()
                     if (pr, rg) == (project, region)]
        return sorted(found, key=lambda p: p["name"])

    def all_policies(self) -> list[tuple[str, str, str]]:
        """(project, region, name) of every policy, for cleanup after a cancel."""
        with self._lock:
            return sorted(self.policies)

    def delete_policy(self, project: str, region: str, name: str) -> dict[str, Any]:
        """resourcePolicies.delete: refused while an instance still uses the policy."""
        key = (project, region, name)
        with self._lock:
            if key not in self.policies:
                raise not_found(f"projects/{project}/regions/{region}/resourcePolicies/{name}")
            user = next((r for r in self.records.values() if key in _policies_of(r.body, r)),
                        None)
            if user is not None:
                raise ComputeError(
                    400, f"The resource_policy resource 'projects/{project}/regions/{region}/"
                    f"resourcePolicies/{name}' is already being used by 'projects/"
                    f"{user.project}/zones/{user.zone}/instances/{user.name}'",
                    "resourceInUseByAnotherResource")
            resource = self.policies.pop(key)
        self.notify(f"placement policy {name} deleted")
        return dict(self._region_operation("delete", project, region, name,
                                           resource["id"]).resource)

    def check_instance_policies(self, project: str, zone: str, body: dict[str, Any]) -> None:
        """An insert's resourcePolicies must exist, in the zone's region."""
        region = zone.rpartition("-")[0]
        for key in _named_policies(body.get("resourcePolicies"), project, region):
            if key[1] != region:
                raise ComputeError(400, f"Invalid value for field 'resource.resourcePolicies"
                                   f"[0]': 'projects/{key[0]}/regions/{key[1]}/resourcePolicies/"
                                   f"{key[2]}'. Resource policy must be in the same region as "
                                   "the instance.", "invalid")
            with self._lock:
                if key not in self.policies:
                    raise not_found(f"projects/{key[0]}/regions/{key[1]}/resourcePolicies/"
                                    f"{key[2]}")

    def _region_operation(self, kind: str, project: str, region: str, target: str,
                          target_id: str) -> Any:
        """A DONE region operation, kept where zoneOperations keeps zone ones (a
        region's name is never a zone's)."""
        op = self._operation(kind, project, region, target, target_id)
        op.resource.pop("zone", None)
        op.resource.update(
            region=policy_link(project, region),
            targetLink=policy_link(project, region, target),
            selfLink=f"{policy_link(project, region)}/operations/{op.resource['name']}")
        return op

    # -- connectors ------------------------------------------------------
    def policy_insert(self, rt: Any, connector_params: dict[str, Any] | None = None, *,
                      project: str, region: str, body: dict[str, Any], **_: Any
                      ) -> dict[str, Any]:
        try:
            op = self.insert_policy(project, region, body)
        except ComputeError as exc:
            raise exc.workflow_error() from None
        return self._connector_wait(project, region, op)

    def policy_get(self, rt: Any, connector_params: dict[str, Any] | None = None, *,
                   project: str, region: str, resourcePolicy: str, **_: Any
                   ) -> dict[str, Any]:
        try:
            return self.get_policy(project, region, resourcePolicy)
        except ComputeError as exc:
            raise exc.workflow_error() from None

    def policy_list(self, rt: Any, connector_params: dict[str, Any] | None = None, *,
                    project: str, region: str, **_: Any) -> dict[str, Any]:
        return {"kind": "compute#resourcePolicyList",
                "items": self.list_policies(project, region)}

    def policy_delete(self, rt: Any, connector_params: dict[str, Any] | None = None, *,
                      project: str, region: str, resourcePolicy: str, **_: Any
                      ) -> dict[str, Any]:
        try:
            op = self.delete_policy(project, region, resourcePolicy)
        except ComputeError as exc:
            raise exc.workflow_error() from None
        return self._connector_wait(project, region, op)


def _named_policies(value: Any, project: str, region: str) -> list[tuple[str, str, str]]:
    """(project, region, name) of each policy an insert body names (a URL, a
    partial URL or a bare name in the instance's region)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ComputeError(400, "Invalid value for field 'resource.resourcePolicies': "
                           f"'{value}'. Must be a list of resource policy URLs.", "invalid")
    out = []
    for item in value:
        match = POLICY_PATH_RE.match(item)
        if match:
            out.append((match.group(1), match.group(2), match.group(3)))
        elif NAME_RE.fullmatch(item):
            out.append((project, region, item))
        else:
            raise ComputeError(400, f"Invalid value for field 'resource.resourcePolicies[0]': "
                               f"'{item}'. The URL is malformed.", "invalid")
    return out


def _policies_of(body: dict[str, Any], record: Any) -> list[tuple[str, str, str]]:
    try:
        return _named_policies(body.get("resourcePolicies"), record.project,
                               record.zone.rpartition("-")[0])
    except ComputeError:
        return []


__all__ = ["ComputePolicies", "policy_link"]
