"""Local capacity: which zones are out of capacity for which provisioning model,
and the Flex-start queue, for `wfgen run --local --fault stockout=ZONE[/MODEL]`
and `wfgen serve --stockout ZONE[/MODEL]`.

A refused insert fails its operation the way Compute Engine fails it (HTTP 503,
error code ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS, the message "The zone
'projects/P/zones/Z' does not have enough resources available to fulfill the
request.  '(resource type:compute)'.", and errorDetails with an ErrorInfo of
reason RESOURCE_AVAILABILITY whose metadatas name the zones of the region that
still have capacity, a LocalizedMessage and a Help link: the shapes of the
compute v1 Discovery document's Operation.error and Google's own ErrorInfo
example). A quota error is not capacity and stays a fault of its own.

A Flex-start insert is accepted at once and its VM waits with status PENDING;
after `flex_wait_s` the queue either grants capacity (the VM boots) or, when
the zone is out of capacity for flex-start, gives up: the PENDING VM goes away,
as a request Compute Engine could not fulfil in time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from wfgen.errors import UsageError

MODELS = {"standard": "STANDARD", "spot": "SPOT", "flex-start": "FLEX_START",
          "reservation": "RESERVATION_BOUND"}
STOCKOUT_CODE = "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS"
HELP_URL = "https://cloud.google.com/compute/docs/resource-error"
DEFAULT_FLEX_WAIT_S = 2.0


@dataclass(frozen=True)
class Stockout:
    """One rule: `zone` ("*": every zone) has no capacity for `model` (None: any)."""

    zone: str
    model: str | None

    def matches(self, zone: str, model: str) -> bool:
        return self.zone in ("*", zone) and self.model in (None, model)

    @classmethod
    def parse(cls, text: str, *, option: str = "stockout") -> Stockout:
        """ZONE[/MODEL], the model as wfgen names it (spot) or as the API does (SPOT)."""
        zone, _, model = text.strip().partition("/")
        if not zone or (zone != "*" and not _zone_like(zone)):
            raise UsageError(f"{option} {text!r}: write ZONE[/MODEL], e.g. us-central1-a/spot "
                             "(ZONE * for every zone)")
        if not model:
            return cls(zone, None)
        name = MODELS.get(model.lower(), model.upper().replace("-", "_"))
        if name not in MODELS.values():
            raise UsageError(f"{option} {text!r}: {model!r} is not a provisioning model; use "
                             f"one of {', '.join(MODELS)}")
        return cls(zone, name)


def _zone_like(zone: str) -> bool:
    region, _, letter = zone.rpartition("-")
    return bool(region) and len(letter) == 1 and letter.isalpha() and "-" in region


@dataclass(frozen=True)
class Refusal:
    """A failed insert operation's error: HTTP status, code, message, details."""

    status: int
    code: str
    message: str
    details: list[dict[str, Any]] = field(default_factory=list)

    def errors(self) -> list[dict[str, Any]]:
        """Operation.error.errors as the service gives it."""
        item: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            item["errorDetails"] = self.details
        return [item]


def model_of(body: dict[str, Any]) -> str:
    """The provisioning model an insert body asks for (STANDARD by default)."""
    scheduling = body.get("scheduling") if isinstance(body.get("scheduling"), dict) else {}
    model = scheduling.get("provisioningModel")
    if isinstance(model, str) and model:
        return model
    return "SPOT" if scheduling.get("preemptible") else "STANDARD"


def _last(url: Any) -> str:
    return str(url or "").rstrip("/").rpartition("/")[2]


@dataclass
class Capacity:
    """The capacity rules of one local run (or one `wfgen serve`)."""

    stockouts: list[Stockout] = field(default_factory=list)
    flex_wait_s: float = DEFAULT_FLEX_WAIT_S

    @classmethod
    def parse(cls, rules: list[str], *, flex_wait_s: float | None = None,
              option: str = "stockout") -> Capacity:
        return cls([Stockout.parse(r, option=option) for r in rules],
                   DEFAULT_FLEX_WAIT_S if flex_wait_s is None else flex_wait_s)

    def out(self, zone: str, model: str) -> bool:
        return any(rule.matches(zone, model) for rule in self.stockouts)

    def zones_with_capacity(self, zone: str, model: str) -> list[str]:
        """The other zones of `zone`'s region that have capacity for `model`."""
        from wfgen.job import machines

        region = zone.rpartition("-")[0]
        return [z for z in machines.zones_of(region) if z != zone and not self.out(z, model)]

    def refusal(self, project: str, zone: str, body: dict[str, Any]) -> Refusal | None:
        """Why an insert of `body` in `zone` fails for want of capacity, or None.
        Flex-start requests are never refused here: they wait in the queue."""
        model = model_of(body)
        if model == "FLEX_START" or not self.out(zone, model):
            return None
        return stockout(project, zone, body, self.zones_with_capacity(zone, model))

    def grants_flex(self, zone: str) -> bool:
        """Whether the Flex-start queue grants capacity in `zone` (else it gives up)."""
        return not self.out(zone, "FLEX_START")


def stockout(project: str, zone: str, body: dict[str, Any],
             zones_with_capacity: list[str]) -> Refusal:
    """The operation error of an insert refused for want of capacity."""
    vm_type = _last(body.get("machineType")) or "n1-standard-1"
    gpus = [f"{_last(a.get('acceleratorType'))}={a.get('acceleratorCount', 1)}"
            for a in body.get("guestAccelerators") or [] if isinstance(a, dict)]
    attachment = ",".join(gpus)
    metadatas = {"zone": zone, "vmType": vm_type}
    if attachment:
        metadatas["attachment"] = attachment
    if zones_with_capacity:
        metadatas["zonesWithCapacity"] = ",".join(zones_with_capacity)
    with_what = f" with <{attachment}>" if attachment else ""
    advice = (f" Consider trying your request in the <{','.join(zones_with_capacity)}> zone(s), "
              "which currently has/have capacity to accommodate your request."
              if zones_with_capacity else "")
    localized = (f"An <{vm_type}> VM instance{with_what} is currently unavailable in the "
                 f"<{zone}> zone.{advice} Alternatively, you can try your request again with a "
                 "different VM hardware configuration or at a later time. For more "
                 "information, see the troubleshooting documentation.")
    details = [
        {"errorInfo": {"reason": "RESOURCE_AVAILABILITY", "domain": "compute.googleapis.com",
                       "metadatas": metadatas}},
        {"localizedMessage": {"locale": "en-US", "message": localized}},
        {"help": {"links": [{"description": "Additional information on this error",
                             "url": HELP_URL}]}},
    ]
    message = (f"The zone 'projects/{project}/zones/{zone}' does not have enough resources "
               "available to fulfill the request.  '(resource type:compute)'.")
    return Refusal(503, STOCKOUT_CODE, message, details)
