"""The job spec: a short YAML file describing one container job.

Loading and checking a job.yaml against the field table of wfgen.job.rules
(every error names file, line, column and field path, unknown keys get a "did
you mean"), filling defaults, and the cross-field checks (placement, durations,
what fits in one execution: wfgen.job.budget) that make a `JobSpec`.

Loading uses ruamel.yaml's round-trip loader because it keeps the line and
column of every key and value."""


from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wfgen.errors import Location, SpecError, UsageError
from wfgen.job.budget import (
    budget_problem,
    default_parallelism,
    items_of,
    longest_timeout,
    memory_problem,
)
from wfgen.job.gang import gang_steps_problem
from wfgen.job.model import JobSpec
from wfgen.job.rules import (
    _KIND_NAMES,
    JOB_FIELDS,
    MAX_GRACE_SPOT_S,
    MAX_GRACE_STANDARD_S,
    MAX_SPEC_BYTES,
    MAX_TASKS,
    MAX_TIMEOUT_S,
    OUTPUT_FIELDS,
    Field,
    default_heartbeat,
    default_name,
    format_duration,
    heartbeat_conflict,
    parallelism_problem,
    parse_duration,
)
from wfgen.job.shards import one_execution_problem, quota_problem, split_problem
from wfgen.limits import MAX_CONCURRENT_BRANCHES
from wfgen.yamlload import read_source  # here, and cheap to import alone (wfgen.cli.run)

__all__ = ["JobSpec", "load_spec", "load_spec_text", "read_source"]

# ---------------------------------------------------------------------------
# Loading



def _position(node: Any, key: Any, *, value: bool) -> tuple[int, int]:
    """1-based (line, column) of a key (or its value) in a ruamel container."""
    try:
        if isinstance(key, int):
            line, col = node.lc.item(key)
        elif value:
            line, col = node.lc.value(key)
        else:
            line, col = node.lc.key(key)
        return line + 1, col + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        line = getattr(getattr(node, "lc", None), "line", None)
        return (line + 1, 1) if isinstance(line, int) else (0, 0)


class _Loader:
    """Walks the YAML tree against JOB_FIELDS, raising the first SpecError."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: dict[str, int] = {}  # field path -> line, for later messages
        self.errors: list[SpecError] = []  # every mistake found, in file order at the end

    def fail(self, message: str, node: Any, key: Any, field_path: str, *, value: bool = True
             ) -> SpecError:
        line, col = _position(node, key, value=value) if node is not None else (1, 1)
        return SpecError(message, Location(self.path, line, col, field_path))

    def load_object(self, node: Any, fields: tuple[Field, ...], prefix: str,
                    parent: Any, parent_key: Any) -> dict[str, Any]:
        if not isinstance(node, dict):
            raise self.fail(f"expected {_KIND_NAMES['object']}, got {_describe(node)}",
                            parent, parent_key, prefix.rstrip(".") or "(top level)")
        by_name = {f.name: f for f in fields}
        out: dict[str, Any] = {}
        for key in node:
            path = f"{prefix}{key}"
            if not isinstance(key, str) or key not in by_name:
                hint = difflib.get_close_matches(str(key), list(by_name), n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else (
                    f"; known keys: {', '.join(by_name)}")
                self.errors.append(self.fail(f"unknown key {key!r}{extra}", node, key, path,
                                             value=False))
        for f in fields:
            path = f"{prefix}{f.name}"
            try:
                out[f.name] = self.load_field(node, f, path, parent, parent_key)
            except SpecError as exc:  # keep going: report every mistake at once
                self.errors.append(exc)
                out[f.name] = _copy(f.default)
        return out

    def load_field(self, node: Any, f: Field, path: str, parent: Any, parent_key: Any) -> Any:
        if f.name in node:
            self.lines[path] = _position(node, f.name, value=False)[0]
        if f.name not in node or node[f.name] is None:
            if f.required:
                if f.name in node:
                    raise self.fail(f"{f.name!r} needs a value", node, f.name, path)
                raise self.fail(f"missing required key {f.name!r}", parent, parent_key,
                                path, value=False)
            if f.kind == "object" and f.default is not None:
                return self.load_object({}, f.children, path + ".", node, f.name)
            return _copy(f.default)
        return self.load_value(node[f.name], f, path, node, f.name)

    def load_value(self, value: Any, f: Field, path: str, node: Any, key: Any) -> Any:
        kind = f.kind
        if kind == "object":
            return self.load_object(value, f.children, path + ".", node, key)
        if kind == "jsonlist":
            return self.json_list(value, f, path, node, key)
        if kind == "fallback":
            return self.fallback(value, f, path, node, key)
        if kind == "outputs":
            return self.outputs(value, f, path, node, key)
        if kind == "duration":
            try:
                parse_duration(value)
            except ValueError as exc:
                raise self.fail(str(exc), node, key, path) from None
            return value
        if kind == "str":
            result = self.text(value, path, node, key, f.kind)
        elif kind == "zones" and isinstance(value, list):
            if not value:
                raise self.fail("needs at least one zone", node, key, path)
            result = [self.text(item, f"{path}[{i}]", value, i, "str")
                      for i, item in enumerate(value)]
        elif kind == "zones":
            result = self.text(value, path, node, key, "str")
        elif kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.fail(f"expected {_KIND_NAMES[kind]}, got {_describe(value)}",
                                node, key, path)
            if f.minimum is not None and value < f.minimum:
                raise self.fail(f"must be at least {f.minimum}", node, key, path)
            if f.maximum is not None and value > f.maximum:
                raise self.fail(f"must be at most {f.maximum}", node, key, path)
            result = int(value)
        elif kind == "bool":
            if not isinstance(value, bool):
                raise self.fail(f"expected {_KIND_NAMES[kind]}, got {_describe(value)}",
                                node, key, path)
            result = bool(value)
        elif kind == "strlist":
            if not isinstance(value, list):
                hint = " (write a YAML list: [\"a\", \"b\"]; a string is never split)" if (
                    isinstance(value, str)) else ""
                raise self.fail(f"expected {_KIND_NAMES[kind]}, got {_describe(value)}{hint}",
                                node, key, path)
            result = self.each(value, enumerate(value), lambda i, item: self.text(
                item, f"{path}[{i}]", value, i, "str", scalar_ok=True))
        elif kind == "strmap":
            if not isinstance(value, dict):
                raise self.fail(f"expected {_KIND_NAMES[kind]}, got {_describe(value)}",
                                node, key, path)

            def entry(k: Any, item: Any) -> str:
                if not isinstance(k, str):
                    raise self.fail(f"key {k!r} must be a string", value, k, f"{path}.{k}",
                                    value=False)
                return self.text(item, f"{path}.{k}", value, k, "str", scalar_ok=True)

            result = dict(zip(value, self.each(value, value.items(), entry), strict=True))
        else:  # pragma: no cover - the table only uses the kinds above
            raise AssertionError(kind)
        if f.check is not None:
            message = f.check(result)
            if message:
                raise self.fail(message, node, key, path)
        return result

    def each(self, container: Any, items: Any, check: Any) -> list[Any]:
        """check(key, item) for every item of a list or map, every mistake kept:
        the first is raised, the others join self.errors."""
        results, problems = [], []
        for key, item in items:
            try:
                results.append(check(key, item))
            except SpecError as exc:
                problems.append(exc)
        if problems:
            self.errors.extend(problems[1:])
            raise problems[0]
        return results

    def fallback(self, value: Any, f: Field, path: str, node: Any, key: Any) -> list[Any]:
        """Machine choices: each a map of the keys it changes (null: removed)."""
        if not isinstance(value, list) or not value:
            raise self.fail(f"expected {_KIND_NAMES[f.kind]}, e.g. [{{provisioning: "
                            "flex-start}, {provisioning: standard}]", node, key, path)
        out = []
        for i, item in enumerate(value):
            loaded = self.load_object(item, f.children, f"{path}[{i}].", value, i)
            out.append({k: loaded[k] for k in item if k in loaded})
        return out

    def outputs(self, value: Any, f: Field, path: str, node: Any, key: Any
                ) -> dict[str, dict[str, Any]]:
        """outputs: NAME -> URI, or NAME -> {uri, sync_every}; as NAME -> {uri,
        sync_every (None when not given)}."""
        if not isinstance(value, dict):
            raise self.fail(f"expected {_KIND_NAMES[f.kind]}, got {_describe(value)}",
                            node, key, path)

        def entry(name: Any, item: Any) -> dict[str, Any]:
            where = f"{path}.{name}"
            if not isinstance(name, str):
                raise self.fail(f"key {name!r} must be a string", value, name, where,
                                value=False)
            if not isinstance(item, dict):
                return {"uri": self.text(item, where, value, name, "str"), "sync_every": None}
            loaded = self.load_object(item, OUTPUT_FIELDS, where + ".", value, name)
            return loaded

        result = dict(zip(value, self.each(value, value.items(), entry), strict=True))
        if f.check is not None:
            message = f.check(result)
            if message:
                raise self.fail(message, node, key, path)
        return result

    def json_list(self, value: Any, f: Field, path: str, node: Any, key: Any) -> list[Any]:
        """A list of any JSON values, as plain Python data."""
        if not isinstance(value, list):
            raise self.fail(f"expected {_KIND_NAMES[f.kind]}, got {_describe(value)}",
                            node, key, path)
        if not value:
            raise self.fail("needs at least one item", node, key, path)
        if len(value) > MAX_TASKS:
            raise self.fail(f"{len(value)} items; at most {MAX_TASKS} tasks", node, key, path)
        return [self.json_value(item, f"{path}[{i}]", value, i) for i, item in enumerate(value)]

    def json_value(self, value: Any, path: str, node: Any, key: Any) -> Any:
        if value is None or isinstance(value, bool):
            return None if value is None else bool(value)
        if isinstance(value, int):
            if type(value) is not int:  # 010, 0x1F, 1_000: quote to keep the text
                raise self.fail(f"this number would be read as {int(value)}; quote it to "
                                "pass the text as written", node, key, path)
            return int(value)
        if isinstance(value, float):
            if value != value or value in (float("inf"), float("-inf")):
                raise self.fail("not a JSON number (quote it to pass text)", node, key, path)
            return float(value)
        if isinstance(value, str):
            return self.text(value, path, node, key, "str")
        if isinstance(value, list):
            return [self.json_value(x, f"{path}[{i}]", value, i) for i, x in enumerate(value)]
        if isinstance(value, dict):
            out = {}
            for k, x in value.items():
                if not isinstance(k, str):
                    raise self.fail(f"map key {k!r} must be a string", value, k,
                                    f"{path}.{k}", value=False)
                out[str(k)] = self.json_value(x, f"{path}.{k}", value, k)
            return out
        raise self.fail(f"{_describe(value)} is not JSON data; quote it", node, key, path)

    def text(self, value: Any, path: str, node: Any, key: Any, kind: str,
             *, scalar_ok: bool = False) -> str:
        """A string value. In args, command and env too, a number or boolean is
        refused, naming the key, as `--data` and the workflow's own check refuse
        it: YAML does not keep a number's text (010, 1_000, 1e3, 0.10 change), so
        strings only is the one rule all three places can apply alike."""
        if not isinstance(value, str):
            hint = ""
            if scalar_ok and isinstance(value, bool | int | float):
                plain = type(value) is int  # not 010, 0x1F or 1_000: their text is lost
                hint = f' (quote it: "{value}")' if plain else " (quote it)"
            raise self.fail(f"expected {_KIND_NAMES[kind]}, got {_describe(value)}{hint}",
                            node, key, path)
        value = str(value)
        if "\x00" in value:
            raise self.fail("text may not contain the NUL character", node, key, path)
        if any("\ud800" <= ch <= "\udfff" for ch in value):
            # JSON-style "\ud83d\ude00" escapes reach us as two surrogates: join them.
            try:
                value = value.encode("utf-16", "surrogatepass").decode("utf-16")
            except UnicodeDecodeError:
                raise self.fail("text is not valid Unicode (a lone surrogate)", node, key,
                                path) from None
        return value


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a map"
    return type(value).__name__


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value



def load_spec_text(text: str, path: str = "<job>", *, tree: Any = None) -> JobSpec:
    """Parse and check a job spec; raises SpecError naming file, line and field.

    `tree` is the text already loaded by wfgen.yamlload (so validate parses once)."""
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    from wfgen import yamlload

    if not text.strip():
        raise SpecError("the file is empty; a job spec needs at least container.image",
                        Location(path, 1, 1))
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SPEC_BYTES:
        raise SpecError(f"the file is {size // 1024} KB; a job spec may be "
                        f"at most {MAX_SPEC_BYTES // 1024} KB (its workflow must fit in 128 KB)",
                        Location(path, 1, 1))
    try:
        if tree is None:
            tree = yamlload.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        problem = exc.problem or exc.context or "not valid YAML"
        if "'\\t'" in problem:
            problem += " (indent with spaces: YAML does not allow tabs there)"
        raise SpecError(f"not valid YAML: {problem}", Location(path, line, col)) from None
    except (YAMLError, ValueError, TypeError) as exc:
        raise SpecError(f"not valid YAML: {exc}", Location(path, 1, 1)) from None
    except Exception as exc:  # the YAML library itself trips on some inputs (e.g. "-_")
        raise SpecError(f"not valid YAML (the parser failed: {type(exc).__name__})",
                        Location(path, 1, 1)) from None
    if tree is None:
        raise SpecError("the file holds no YAML document; a job spec needs container.image",
                        Location(path, 1, 1))
    loader = _Loader(path)
    if not isinstance(tree, dict):
        raise SpecError(f"a job spec is a YAML map, got {_describe(tree)}", Location(path, 1, 1))
    data = loader.load_object(tree, JOB_FIELDS, "", None, None)
    field_errors = list(loader.errors)
    spec = _finish(data, tree, loader)
    if loader.errors:
        # a cross-field check may trip over a default put in place of a field
        # that was wrong: report only what the field's own error does not say
        wrong = {e.location.field for e in field_errors if e.location}
        errors = field_errors + [e for e in loader.errors[len(field_errors):]
                                 if not (e.location and _related(e.location.field, wrong))]
        errors.sort(key=lambda e: (e.location.line, e.location.column)
                    if e.location else (0, 0))
        first = errors[0]
        first.others = errors[1:]
        raise first
    assert spec is not None
    return spec


def _related(field_path: str, others: set[str]) -> bool:
    """Is the field one of `others`, inside one, or holding one (tasks, tasks.items)?"""
    return any(field_path == o or o.startswith(field_path + ".") or
               field_path.startswith(o + ".") for o in others)


def _node_for(tree: Any, field_path: str) -> tuple[Any, Any]:
    """(node, key) of the deepest part of field_path the file has (for positions)."""
    node, found = tree, (None, None)
    for part in field_path.split("."):
        if not isinstance(node, dict) or part not in node:
            break
        found, node = (node, part), node[part]
    return found


def _check_region(data: dict[str, Any], tree: Any, loader: _Loader) -> None:
    """Region and zone Compute Engine would refuse (a wrong region leaves the
    zone unchecked, and says so)."""
    from wfgen.job import machines

    problem = machines.region_problem(data["location"])
    if problem:
        unchecked = " (zone is checked once location is right)" if data["zone"] else ""
        raise loader.fail(problem + unchecked, tree, "location", "location")
    if data["zone"] is None:
        data["zone"] = machines.default_zone(data["location"])
    elif isinstance(data["zone"], str) and data["zone"] != "any" and not data["regions"]:
        problem = machines.zone_problem(data["zone"], data["location"])
        if problem:
            raise loader.fail(problem, tree, "zone", "zone")


def _check_machine(data: dict[str, Any], tree: Any, loader: _Loader) -> None:
    """Machine type and GPU combinations Compute Engine would refuse."""
    from wfgen.job import machines

    found = machines.machine_problem(data["machine"]) or _disk_problem(data)
    if found:
        where, message = found
        node, key = _node_for(tree, where)
        raise loader.fail(message, node, key, where, value=False)


def _disk_problem(data: dict[str, Any]) -> tuple[str, str] | None:
    """(field, message) when the machine type (or a fallback's) cannot take the boot
    disk type or the count of Local SSD disks (wfgen.job.disks)."""
    from wfgen.job import disks

    machine = data["machine"]
    if machine["local_ssd"] and data["nodes"] > 1:
        return "machine.local_ssd", "local_ssd is not supported for multi-node jobs yet"
    if machine["local_ssd"] and data["fallback"] and any(
            choice.get("type") for choice in data["fallback"]):
        return ("machine.local_ssd", "local_ssd with a fallback that changes machine.type is "
                "not supported yet (the allowed counts depend on the type)")
    if machine["disk_type"]:
        problem = disks.disk_type_problem(machine["type"], machine["disk_type"])
        if problem:
            return "machine.disk_type", problem
        for choice in data["fallback"] or ():
            problem = choice.get("type") and disks.disk_type_problem(choice["type"],
                                                                     machine["disk_type"])
            if problem:
                return "machine.disk_type", f"a fallback's machine: {problem}"
    problem = disks.local_ssd_problem(machine["type"], machine["local_ssd"])
    return ("machine.local_ssd", problem) if problem else None


def _plan_capacity(spec: JobSpec, tree: Any, loader: _Loader) -> None:
    """The zones and machine choices to try (wfgen.job.capacity); `zone` becomes
    the first zone tried, the plan the rest."""
    from wfgen.job import capacity

    if any(e.location and e.location.field in ("location", "zone") for e in loader.errors):
        return  # _check_region said what is wrong with them; no plan from a wrong place
    data = spec.data
    given = tree.get("zone") if isinstance(tree, dict) else None
    try:
        spec.plan = capacity.plan_for(
            zone=given if given is not None else None, location=data["location"],
            regions=data["regions"], machine=data["machine"], fallback=data["fallback"],
            timeout_s=spec.timeout_s)
    except capacity.CapacityProblem as exc:
        node, key = _fallback_node(tree, exc.field)
        raise loader.fail(exc.message, node, key, exc.field, value=False) from None
    data["zone"] = spec.plan.entries[0][0]


def _fallback_node(tree: Any, field_path: str) -> tuple[Any, Any]:
    """(node, key) of a field path that may index the fallback list: fallback[1].type."""
    match = re.fullmatch(r"fallback\[(\d+)\](?:\.(\w+))?", field_path)
    if match and isinstance(tree.get("fallback"), list):
        items = tree["fallback"]
        index = int(match.group(1))
        item = items[index] if index < len(items) else None
        if match.group(2) and isinstance(item, dict) and match.group(2) in item:
            return item, match.group(2)
        return items, index
    return _node_for(tree, field_path)


def _finish(data: dict[str, Any], tree: Any, loader: _Loader) -> JobSpec | None:
    """Cross-field rules and derived defaults. Independent checks each run (their
    errors join loader.errors), also after a field's own error; None if any failed."""
    if data["name"] is None:
        data["name"] = default_name(loader.path)
    before = len(loader.errors)
    spec = None
    for check in (_check_container, _check_data, _check_workdir, _check_region, _check_machine,
                  _durations):
        try:
            spec = check(data, tree, loader) or spec
        except SpecError as exc:
            loader.errors.append(exc)
        except (KeyError, TypeError, AttributeError, ValueError):
            if not before:  # a default stood in for a wrong field: its error says it
                raise
    return spec if len(loader.errors) == 0 else None


def _check_container(data: dict[str, Any], tree: Any, loader: _Loader) -> None:
    container = data["container"]
    ctree = tree["container"]
    if container["script"] is not None and container["command"] is not None:
        raise loader.fail("script runs with `sh -c`; it cannot be combined with command",
                          ctree, "script", "container.script", value=False)
    both = sorted(set(container["env"]) & set(container["secret_env"] or {}))
    if both:
        raise loader.fail(f"{', '.join(both)} {'is' if len(both) == 1 else 'are'} in env too: "
                          "a variable comes from env or from secret_env, not both",
                          ctree["secret_env"], both[0], f"container.secret_env.{both[0]}",
                          value=False)


def _check_workdir(data: dict[str, Any], tree: Any, loader: _Loader) -> None:
    """workdir: a folder beside the spec (packed by run and deploy); not yet with
    tasks or nodes."""
    if not data["workdir"]:
        return
    if data["tasks"] is not None or data["nodes"] > 1:
        raise loader.fail("workdir is not supported with tasks or nodes yet", tree,
                          "workdir", "workdir", value=False)
    if loader.path.startswith("<"):
        return  # a spec without a file (a test's text): nothing to look beside
    folder = Path(loader.path).parent / data["workdir"]
    if not folder.is_dir():
        raise loader.fail(f"{data['workdir']!r}: no folder {folder} (workdir is a path "
                          "relative to the spec file)", tree, "workdir", "workdir", value=False)


def _check_data(data: dict[str, Any], tree: Any, loader: _Loader) -> None:
    """inputs/outputs: their names are the container's variables (none of env's or
    secret_env's); a name in both is one local path (the same kind of URI); not yet
    with tasks or nodes; sync_every at least 10s."""
    from wfgen.job.data_uris import parse_uri

    inputs, outputs = data["inputs"] or {}, data["outputs"] or {}
    if not inputs and not outputs:
        return
    bad = False
    for key, uris in (("inputs", inputs), ("outputs", {k: v["uri"] for k, v in
                                                       outputs.items()})):
        for name, uri in uris.items():
            if uri is None:
                bad = True  # its missing uri is reported already
                continue
            try:
                parse_uri(uri, output=key == "outputs")
            except ValueError as exc:
                bad = True
                node = tree[key][name]
                where, at = (node, "uri") if isinstance(node, dict) else (tree[key], name)
                loader.errors.append(loader.fail(str(exc), where, at, f"{key}.{name}"))
    taken = set(data["container"]["env"]) | set(data["container"]["secret_env"] or {})
    for key, names in (("inputs", inputs), ("outputs", outputs)):
        both = sorted(set(names) & taken)
        if both:
            raise loader.fail(f"{both[0]} is in container.env or container.secret_env too: "
                              f"${both[0]} holds the local path of this {key[:-1]}",
                              tree[key], both[0], f"{key}.{both[0]}", value=False)
    for name in sorted(set(inputs) & set(outputs)) if not bad else []:
        try:
            kinds = {parse_uri(inputs[name]).kind != "file",
                     parse_uri(outputs[name]["uri"], output=True).kind != "file"}
        except ValueError:
            continue  # the field's own check said so
        if len(kinds) > 1:
            raise loader.fail(f"{name} is an input and an output: one local path, so both "
                              "must be folders (ending in /) or both one object",
                              tree["outputs"], name, f"outputs.{name}", value=False)
    for name, out in outputs.items():
        if out["sync_every"] is not None and parse_duration(out["sync_every"]) < 10:
            raise loader.fail("must be at least 10s", tree["outputs"][name], "sync_every",
                              f"outputs.{name}.sync_every")
    for key in ("tasks", "nodes"):
        if data[key] is not None and data[key] != 1:
            where = "inputs" if inputs else "outputs"
            raise loader.fail(f"inputs and outputs are not built yet for a job with {key}",
                              tree, where, where, value=False)


def _durations(data: dict[str, Any], tree: Any, loader: _Loader) -> JobSpec:
    """Timeout and heartbeat, the fan-out plan and what fits one execution."""
    timeout_s = parse_duration(data["timeout"])
    if data["heartbeat"] is None:
        data["heartbeat"] = format_duration(default_heartbeat(timeout_s))
    seconds = {"timeout": timeout_s, "heartbeat": parse_duration(data["heartbeat"])}
    if seconds["timeout"] > MAX_TIMEOUT_S:
        raise loader.fail("may be at most 100d (Compute Engine stops a VM after 120 days "
                          "at the latest)", tree, "timeout", "timeout")
    if seconds["heartbeat"] >= seconds["timeout"]:
        raise loader.fail(heartbeat_conflict(seconds["heartbeat"], seconds["timeout"],
                                             timeout_given="timeout" in tree),
                          tree, "heartbeat", "heartbeat")
    if seconds["heartbeat"] < 1:
        raise loader.fail("heartbeat must be at least 1s", tree, "heartbeat", "heartbeat")
    seconds["stop_grace"] = _stop_grace(data, tree, loader)
    for name, out in (data["outputs"] or {}).items():
        if out["sync_every"] is not None:
            seconds[f"sync:{name}"] = parse_duration(out["sync_every"])
    if data["checkpoint_dir"] is not None:
        data["checkpoint_dir"] = data["checkpoint_dir"].rstrip("/")
    if data["nodes"] > 1 and data["tasks"] is not None:
        raise loader.fail("nodes (one job on several VMs) and tasks (one VM per item) cannot "
                          "be combined; use one or the other", tree, "nodes", "nodes",
                          value=False)
    spec = JobSpec(data=data, path=loader.path, seconds=seconds, lines=loader.lines)
    if data.get("quota") is None:
        data.pop("quota", None)  # a spec without the fan-out-at-scale keys reads as before
    _plan_capacity(spec, tree, loader)
    if data["nodes"] > 1 and spec.plan is not None:
        _check_group(spec, tree, loader)
    if data["placement"] is not None and spec.plan is not None:
        _check_placement(spec, tree, loader)
    if data["tasks"] is not None:
        for key, unset in (("items_file", None), ("max_vms", None), ("split", None),
                           ("report", None)):
            if data["tasks"].get(key, unset) == unset:
                data["tasks"].pop(key, None)
        _finish_tasks(spec, tree, loader)
    refused = quota_problem(spec)  # tasks.max_vms, quota.gpus: before any VM is made
    if refused:
        where, why = refused
        head, _, key = where.rpartition(".")
        raise loader.fail(why, tree.get(head, tree), key if head in tree else head, where)
    problem = budget_problem(spec) or gang_steps_problem(spec)
    if problem:
        if data["tasks"] is not None:
            node, key = _task_size_node(tree)
            raise loader.fail(problem, node, key, f"tasks.{key}")
        where = "heartbeat" if "heartbeat" in tree else "timeout"
        raise loader.fail(problem, tree, where, where)
    return spec


def _check_group(spec: JobSpec, tree: Any, loader: _Loader) -> None:
    """What a multi-node job's machine choices may not be: flex-start (its queued
    VMs would look lost to the group's heartbeat)."""
    for choice in spec.plan.choices:
        if choice.provisioning == "flex-start":
            where = f"{choice.where}.provisioning"
            node, key = _fallback_node(tree, where)
            raise loader.fail("a multi-node job's VMs use standard, spot or reservation "
                              "provisioning for now, not flex-start", node, key, where,
                              value=False)


def _check_placement(spec: JobSpec, tree: Any, loader: _Loader) -> None:
    """placement: compact places the nodes of a multi-node job, on a machine series
    that supports compact placement policies (every machine choice)."""
    from wfgen.job import machines

    if spec.data["nodes"] <= 1:
        raise loader.fail("compact placement places the VMs of a multi-node job close "
                          "together; this job runs on one VM (add nodes: N, 2 or more, or "
                          "remove placement)", tree, "placement", "placement")
    for choice in spec.plan.choices:
        series = machines.series_of(choice.type)
        if series not in machines.COMPACT_PLACEMENT_SERIES:
            supported = ", ".join(s.upper() for s in machines.COMPACT_PLACEMENT_SERIES)
            raise loader.fail(
                f"compact placement needs a machine series that supports compact placement "
                f"policies, and {choice.where}.type {choice.type} is {series.upper()}; use "
                f"one of {supported} (e.g. n2-standard-16, a2-highgpu-1g), or remove "
                "placement", tree, "placement", "placement")


def _stop_grace(data: dict[str, Any], tree: Any, loader: _Loader) -> int:
    """The container's grace in seconds, within what the VM's shutdown window allows."""
    grace = parse_duration(data["stop_grace"])
    most, kind = ((MAX_GRACE_SPOT_S, "a Spot VM has 30s") if data["machine"]["spot"]
                  else (MAX_GRACE_STANDARD_S, "a standard VM has 120s"))
    if grace > most:
        raise loader.fail(f"may be at most {most}s: {kind} from SIGTERM to power-off, and "
                          "the stop report needs the rest", tree, "stop_grace", "stop_grace")
    return grace


def _task_size_node(tree: Any) -> tuple[Any, str]:
    ttree = tree["tasks"]
    return ttree, "items" if "items" in ttree and ttree["items"] is not None else "count"


def _finish_tasks(spec: JobSpec, tree: Any, loader: _Loader) -> None:
    """Fan-out: exactly one of items and count; the default parallelism; whether
    every task's result fits in the execution's variables."""
    tasks = spec.data["tasks"]
    if tasks.get("items_file") is not None:
        if tasks["items"] is not None or tasks["count"] is not None:
            raise loader.fail("give one of items, count and items_file", tree["tasks"],
                              "items_file", "tasks.items_file")
        from wfgen.job.items_file import read_items_file

        tasks["items"] = read_items_file(loader.path, tasks["items_file"],
                                         spec.location("tasks.items_file"))
    if (tasks["items"] is None) == (tasks["count"] is None):
        raise loader.fail("give either items (a list of work items) or count (a number of "
                          "tasks), not both" if tasks["items"] is not None else
                          "give items (a list of work items) or count (a number of tasks)",
                          tree, "tasks", "tasks", value=False)
    count = len(tasks["items"]) if tasks["items"] is not None else tasks["count"]
    if tasks["parallelism"] is None:
        tasks["parallelism"] = default_parallelism(count)
    wanted = tasks.pop("split", None)  # None: split exactly when one execution cannot hold it
    problem = parallelism_problem(tasks["parallelism"], wanted)
    if problem:
        raise loader.fail(problem, tree["tasks"], "parallelism", "tasks.parallelism")

    def fail(problem: str, size: bool) -> Exception:
        node, key = _task_size_node(tree) if size else (tree["tasks"], "parallelism")
        return loader.fail(problem, node, key, f"tasks.{key}")

    _decide_split(spec, wanted, fail)


def _decide_split(spec: JobSpec, wanted: bool | None,
                  fail: Callable[[str, bool], Exception]) -> None:
    """Split the tasks over child executions when asked, or (not asked either way)
    when they do not fit one execution; refuse what the platform could not run
    (`fail(why, size)`: size is true when the task count or items are to blame)."""
    tasks = spec.data["tasks"]
    tasks.pop("split", None)
    if wanted if wanted is not None else one_execution_problem(spec) is not None:
        tasks["split"] = True  # only split jobs carry the key: the others read as before
        problem = split_problem(spec)
        if problem:
            raise fail(problem, not problem.startswith("parallelism"))
    else:
        # more than 20 asked of fewer tasks: as many at once as there are tasks
        if tasks["parallelism"] > MAX_CONCURRENT_BRANCHES:
            tasks["parallelism"] = len(items_of(spec))
        problem = memory_problem(spec)
        if problem:
            raise fail(problem, True)


def load_spec(path: str | Path, *, heartbeat: str | None = None,
              timeout: str | None = None, notes: list[str] | None = None) -> JobSpec:
    """Read and check a job spec file; `heartbeat` and `timeout` override the
    file's (command-line flags), and the pair is checked again with them: the
    heartbeat is shorter than the timeout, and the steps fit the budget. A
    short --heartbeat alone (to watch retries locally) shortens a timeout too
    long for it to what fits, saying so in `notes`."""
    spec = load_spec_text(read_source(path), str(path))
    if heartbeat is None and timeout is None:
        return spec
    for key, value in (("heartbeat", heartbeat), ("timeout", timeout)):
        if value is not None:
            try:
                spec.seconds[key] = parse_duration(value)
            except ValueError as exc:
                raise UsageError(f"--{key}: {exc}") from None
            spec.data[key] = value
    if timeout is not None and heartbeat is None and "heartbeat" not in spec.lines:
        spec.seconds["heartbeat"] = default_heartbeat(spec.timeout_s)  # follows --timeout
        spec.data["heartbeat"] = format_duration(spec.heartbeat_s)
    if spec.heartbeat_s >= spec.timeout_s:
        in_file = f", from {spec.path}"
        if heartbeat is None and "heartbeat" not in spec.lines:  # the default, too long
            raise UsageError(f"--timeout {timeout}: too short for a heartbeat (a timeout "
                             "of at least 2s leaves room for one)")
        raise UsageError(heartbeat_conflict(
            spec.heartbeat_s, spec.timeout_s, timeout_given="timeout" in spec.lines,
            heartbeat_from=", from --heartbeat" if heartbeat else in_file,
            timeout_from=", from --timeout" if timeout else (
                in_file if "timeout" in spec.lines else "")))
    tasks = spec.data.get("tasks")
    if tasks is not None:  # a shorter heartbeat may need the split a file's own did not
        wanted = bool(tasks.get("split")) if "tasks.split" in spec.lines else None
        _decide_split(spec, wanted,
                      lambda why, _size: UsageError(f"--heartbeat/--timeout: {why}"))
    problem = budget_problem(spec)
    if problem and heartbeat is not None and timeout is None and notes is not None \
            and spec.data.get("tasks") is None and longest_timeout(spec) > spec.heartbeat_s:
        spec.seconds["timeout"] = longest_timeout(spec)
        spec.data["timeout"] = format_duration(spec.timeout_s)
        notes.append(f"--heartbeat {heartbeat}: timeout shortened to {spec.data['timeout']} "
                     f"for this run, the longest whose steps fit one execution with that "
                     f"heartbeat (give --timeout to choose another)")
        problem = budget_problem(spec)
    if problem:
        raise UsageError(f"--heartbeat/--timeout: {problem}")
    return spec
