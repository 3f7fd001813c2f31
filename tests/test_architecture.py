"""The layers of docs/architecture.md, enforced: each package imports only
from the layers below it (function-level imports count too), only
the cloud backend (wfgen/backends/cloud*.py) imports google.cloud (serve's gRPC front takes the
APIs' message types from it), no two modules import each other, however
indirectly (a cycle is named module by module), and importing the CLI loads no
google.* module (so `generate` and `validate` start fast)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "wfgen"

# layer of each part of wfgen, bottom first; a part may import its own layer and below
LAYERS = {
    "errors": 0, "limits": 0, "output": 0, "yamlload": 0, "__init__": 0, "__main__": 6,
    "engine": 1,
    "job": 2,
    "local": 3,
    "backends": 4,
    "server": 5,
    "cli": 6,
}


def _part(module: str) -> str:
    """'wfgen.engine.parse' -> 'engine'; 'wfgen' -> '__init__'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        out.append((".".join(rel.parts), path))
    return out


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every module an import statement in the file names, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno))
            if node.module == "wfgen":  # from wfgen import limits
                found += [(f"wfgen.{alias.name}", node.lineno) for alias in node.names]
    return found


def test_every_part_has_a_layer() -> None:
    parts = {_part(name) for name, _ in _modules()}
    assert parts <= set(LAYERS), parts - set(LAYERS)


def test_imports_go_down_the_layers_only() -> None:
    wrong = []
    for name, path in _modules():
        mine = LAYERS[_part(name)]
        for imported, line in _imports(path):
            if not imported.startswith("wfgen.") or imported == "wfgen.__version__":
                continue
            theirs = LAYERS.get(_part(imported))
            if theirs is not None and theirs > mine:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {imported}")
    assert wrong == []


def _module_graph() -> dict[str, set[str]]:
    """Module -> the wfgen modules it imports (any import statement, function-level and
    TYPE_CHECKING ones too; `from wfgen.job import machines` names wfgen.job.machines).
    A module importing its own package's __init__ is not an edge (Python allows it)."""
    names = {name.removesuffix(".__init__"): path for name, path in _modules()}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        found = set()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
        graph[name] = {m for m in found if m in names and m != name
                       and not name.startswith(m + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (depth-first, deterministic)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_find_cycle_names_the_modules_of_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_cycles() -> None:
    cycle = find_cycle(_module_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_engine_imports_nothing_of_wfgen_above_it() -> None:
    for name, path in _modules():
        if _part(name) != "engine":
            continue
        for imported, line in _imports(path):
            if imported.startswith("wfgen."):
                assert _part(imported) in {"engine", "errors", "limits", "yamlload"}, (
                    path, line, imported)


def test_only_the_cloud_backend_imports_google_cloud() -> None:
    importers = sorted(str(path.relative_to(PACKAGE.parent)) for _, path in _modules()
                       if any(m.startswith("google.cloud") for m, _ in _imports(path)))
    assert all(re.fullmatch(r"wfgen/backends/cloud(_[a-z]+)?\.py", name) for name in importers)


def test_importing_the_cli_loads_no_google_module() -> None:
    probe = ("import sys, wfgen.cli; wfgen.cli.build_parser(); "
             "print(sorted(m for m in sys.modules if m.split('.')[0] == 'google'))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
