"""The engine's side of the local Compute Engine: the connector functions
(googleapis.compute.v1.instances.*, images.getFromFamily) a workflow calls,
each waiting for its operation, and Compute errors turned into the engine's
HttpError/OperationError. Mixed into wfgen.local.compute.LocalCompute."""

from __future__ import annotations

from typing import Any

from wfgen.engine.errors import make_error
from wfgen.local.compute_records import ComputeError
from wfgen.local.connector_names import COMPUTE_CONNECTORS


class ComputeConnectors:
    """Connector functions over LocalCompute's calls (a mixin of LocalCompute)."""

    # -- connectors ------------------------------------------------------
    def _connector_wait(self, project: str, zone: str, op: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            pending = self.operations.get((project, zone, op["name"]))
        if pending is not None:
            pending.done.wait()
        done = self.get_operation(project, zone, op["name"])
        if "error" in done:
            errors = done["error"]["errors"]
            raise make_error("OperationError", errors[0]["message"], operation=done)
        return done

    def insert(self, rt: Any, connector_params: dict[str, Any] | None = None, *,
               project: str, zone: str, body: dict[str, Any], **_: Any) -> dict[str, Any]:
        try:
            op = self.insert_instance(project, zone, body)
        except ComputeError as exc:
            if exc.status == 503:
                raise make_error("OperationError", exc.message) from None
            raise exc.workflow_error() from None
        return self._connector_wait(project, zone, op)

    def get(self, rt: Any, connector_params: dict[str, Any] | None = None, *,
            project: str, zone: str, instance: str, **_: Any) -> dict[str, Any]:
        try:
            return self.get_instance(project, zone, instance)
        except ComputeError as exc:
            raise exc.workflow_error() from None

    def delete(self, rt: Any, connector_params: dict[str, Any] | None = None, *,
               project: str, zone: str, instance: str, **_: Any) -> dict[str, Any]:
        try:
            op = self.delete_instance(project, zone, instance)
        except ComputeError as exc:
            raise exc.workflow_error() from None
        return self._connector_wait(project, zone, op)

    def stop(self, rt: Any, connector_params: dict[str, Any] | None = None, *,
             project: str, zone: str, instance: str, **_: Any) -> dict[str, Any]:
        try:
            op = self.stop_instance(project, zone, instance)
        except ComputeError as exc:
            raise exc.workflow_error() from None
        return self._connector_wait(project, zone, op)

    def start(self, rt: Any, connector_params: dict[str, Any] | None = None, *,
              project: str, zone: str, instance: str, **_: Any) -> dict[str, Any]:
        try:
            op = self.start_instance(project, zone, instance)
        except ComputeError as exc:
            raise exc.workflow_error() from None
        return self._connector_wait(project, zone, op)

    def get_image_from_family(self, rt: Any, connector_params: dict[str, Any] | None = None,
                              *, project: str, family: str, **_: Any) -> dict[str, Any]:
        return self.image_from_family(project, family)

    def register(self, registry: Any) -> None:
        for name, method in COMPUTE_CONNECTORS.items():
            registry.register(name, getattr(self, method))
