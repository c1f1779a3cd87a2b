"""The package has no import cycles: module-level `tandem.*` imports form a DAG.

Imports inside functions (kept there so `tandem --help` stays instant) count too: a cycle
through one still means two modules that cannot be understood apart.
"""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import tandem

PACKAGE = Path(tandem.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The tandem modules `path` imports (`from tandem.x import y` names x.y if it is one)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(paths)
    graph = {name: _imports(path, modules) - {name} for name, path in paths.items()}
    for name in graph:  # a package's __init__ runs before its modules: not an edge back
        graph[name] = {dep for dep in graph[name] if not name.startswith(f"{dep}.")}
    return graph


def test_the_import_graph_finds_the_package() -> None:
    graph = import_graph()
    assert "tandem.answering.turn" in graph and "tandem.errors" in graph["tandem.answering.turn"]


def test_no_import_cycles() -> None:
    try:
        tuple(TopologicalSorter(import_graph()).static_order())
    except CycleError as error:
        raise AssertionError(f"import cycle: {' -> '.join(error.args[1])}") from None
