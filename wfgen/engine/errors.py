"""Workflows runtime errors as the service has them.

A raised error in Cloud Workflows is a *value*: usually a map with at least
`message` and `tags` (e.g. {"message": "...", "tags": ["KeyError"]}), but a
`raise` step may raise any value (a raised string stays a string). Python code
in the engine carries that value inside WorkflowError so that `except: as: e`
receives exactly what was raised."""

from __future__ import annotations

from typing import Any


class WorkflowError(Exception):
    """A Workflows error value in flight; `value` is what `except as e` sees.

    `step` and `subworkflow` say where it was raised (filled in as it leaves
    the step and the subworkflow), for the execution's error report."""

    def __init__(self, value: Any) -> None:
        super().__init__(value)
        self.value = value
        self.step: str | None = None
        self.subworkflow: str | None = None

    @property
    def tags(self) -> list[str]:
        if isinstance(self.value, dict) and isinstance(self.value.get("tags"), list):
            return [t for t in self.value["tags"] if isinstance(t, str)]
        return []

    @property
    def message(self) -> str:
        if isinstance(self.value, dict) and "message" in self.value:
            return str(self.value["message"])
        return str(self.value)

    def __str__(self) -> str:
        tags = ",".join(self.tags)
        return f"[{tags}] {self.message}" if tags else self.message


STEP_NOTE = "wfgen step: "  # a Python error from a builtin carries its step as a note


def step_of_bug(exc: BaseException) -> str | None:
    """The step a non-Workflows exception (a bug) was raised in, if noted."""
    notes = getattr(exc, "__notes__", ())
    return next((n[len(STEP_NOTE):] for n in notes if n.startswith(STEP_NOTE)), None)


def make_error(tag: str | list[str], message: str, **extra: Any) -> WorkflowError:
    """A standard error map, e.g. make_error("KeyError", "key not found: x")."""
    tags = [tag] if isinstance(tag, str) else list(tag)
    return WorkflowError({"message": message, "tags": tags, **extra})
