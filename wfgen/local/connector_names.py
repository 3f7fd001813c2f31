"""The Workflows connector names local Compute Engine answers, apart from the
machinery that answers them: a runner registers these names without importing
(or starting) Compute Engine, which most workflows never call."""

from __future__ import annotations

# Workflows connector name -> the LocalCompute method (wfgen.local.compute_connectors)
COMPUTE_CONNECTORS = {
    "googleapis.compute.v1.instances.insert": "insert",
    "googleapis.compute.v1.instances.get": "get",
    "googleapis.compute.v1.instances.delete": "delete",
    "googleapis.compute.v1.instances.stop": "stop",
    "googleapis.compute.v1.instances.start": "start",
    "googleapis.compute.v1.images.getFromFamily": "get_image_from_family",
}
