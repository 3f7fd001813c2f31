"""What an execution's billed steps would cost in Cloud Workflows, as one line.

Shared by `wfgen run --local WORKFLOW.yaml --stats` and the job runner."""

from __future__ import annotations

# Cloud Workflows list prices beyond the free tier (the Workflows pricing page).
PRICE_INTERNAL = 0.01 / 1000
PRICE_EXTERNAL = 0.025 / 1000


def billing_cost(internal: int, external: int) -> float:
    """Dollars for `internal` internal and `external` external steps at list prices."""
    return internal * PRICE_INTERNAL + external * PRICE_EXTERNAL


def describe_billing(internal: int, external: int) -> str:
    """The one-line summary printed with --stats (without a trailing newline)."""
    return (f"wfgen: billed steps: {internal} internal + {external} external = "
            f"{internal + external}; ${billing_cost(internal, external):.6f} at Cloud "
            "Workflows list prices (beyond the free tier)")
