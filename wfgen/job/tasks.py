"""Fan-out items: one job over many work items, each task on its own VM. The
items an execution argument may give instead of the spec's are held to the
limits of wfgen.job.budget, by `items_problem` for `wfgen run --data` and by
`workflow_item_checks` inside the generated workflow (the same numbers)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from wfgen.job.budget import (
    MAIN_FIXED_BYTES,
    MEMORY_BUDGET,
    REPORT_MOST_LINES,
    RESULT_BYTES,
    TASK_FRAME_BYTES,
    _json_size,
    has_report,
    memory_needed,
    plan,
    report_bytes,
)
from wfgen.job.spec import JobSpec

# ---------------------------------------------------------------------------
# `items` in the execution argument


_NONEMPTY_LIST = r"^\[\s*[^\s\]]"  # a JSON list with an item (RE2 and Python alike)
_NUL = r"(?:^|[^\\])(?:\\\\)*\\u0000"  # an escaped NUL in JSON text


@dataclass(frozen=True)
class ItemRules:
    """What an `items` execution argument must meet: the step limit's count, and the
    memory estimate of `memory_needed` with the average item for the largest."""

    most: int
    parallelism: int
    container_bytes: int
    report: bool = False  # tasks.report: its line of each task is built in the variables

    @property
    def result_bytes(self) -> int:
        return RESULT_BYTES + (report_bytes(1) if self.report else 0)

    def memory(self, count: int, items_bytes: int) -> float:
        return memory_needed(count, self.parallelism, items_bytes, items_bytes / count,
                             self.container_bytes, self.report)


def item_rules(spec: JobSpec) -> ItemRules:
    p = plan(spec)
    report = has_report(spec)
    most = min(p.max_count_steps, REPORT_MOST_LINES) if report else p.max_count_steps
    return ItemRules(most, p.parallelism, p.container_bytes, report)


def items_problem(items: Any, rules: ItemRules) -> str | None:
    """Why `items` cannot replace a fan-out job's items, or None."""
    if not isinstance(items, list) or not items:
        return "items must be a non-empty list of work items"
    if re.search(_NUL, json.dumps(items)):
        return "items may not contain the NUL character (an item travels in an env variable)"
    if len(items) > rules.most:
        return (f"{len(items)} items; this job's workflow takes at most {rules.most} (the "
                "100,000 steps of one execution)")
    size = _json_size(items)
    if rules.memory(len(items), size) > MEMORY_BUDGET:
        return (f"{len(items)} items of {size:,} bytes as JSON need about "
                f"{int(rules.memory(len(items), size)) // 1024} KB of workflow variables, over "
                f"the {MEMORY_BUDGET // 1024} KB wfgen allows of the 512 KB of one execution")
    return None


def workflow_item_checks(arg: str, rules: ItemRules) -> list[tuple[str, str]]:
    """(condition, message expression) pairs for the generated workflow's argument
    check: the same rules as `items_problem`, one switch condition each."""
    items = f'map.get({arg}, "items")'
    enc = f"json.encode_to_string({items})"
    given = f'"items" in {arg}'
    n, size, p = f"len({items})", f"len({enc})", rules.parallelism
    memory = (f"{MAIN_FIXED_BYTES + 3 * rules.container_bytes} + 3 * {size} + {n} * "
              f"{rules.result_bytes} + math.min({n}, {p}) * "
              f"({TASK_FRAME_BYTES + 2 * rules.container_bytes} + 3 * {size} / {n})")
    return [
        (f"{given} and not text.match_regex({enc}, {json.dumps(_NONEMPTY_LIST)})",
         json.dumps("items must be a non-empty list of work items")),
        (f"{given} and text.match_regex({enc}, {json.dumps(_NUL)})",
         json.dumps("items may not contain the NUL character (an item travels in an env "
                    "variable)")),
        (f"{given} and {n} > {rules.most}",
         json.dumps(f"items: this job's workflow takes at most {rules.most} (the 100,000 "
                    "steps of one execution)")),
        (f"{given} and {memory} > {MEMORY_BUDGET}",
         json.dumps(f"items: too many bytes; the items, their results and the running tasks "
                    f"would need over the {MEMORY_BUDGET // 1024} KB of variables wfgen allows "
                    "of the 512 KB of one execution")),
    ]
