"""The layers of docs/architecture.md, enforced: each package imports only
from the layers below it (function-level imports count too), only
the cloud backend (wfgen/backends/cloud*.py) imports google.cloud (serve's gRPC front takes the
APIs' message types from it), and importing the CLI loads no google.* module
(so `generate` and `validate` start fast)."""

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
