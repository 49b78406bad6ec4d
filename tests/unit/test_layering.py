"""The broker layer's import structure: no module imports ``src.app`` (lower layers never import
upper ones), the runtime imports among ``src.brokers`` modules form no cycle, every module
imports on its own in a fresh interpreter, and no module is over the size budget."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BROKERS = ROOT / "src" / "brokers"
MODULES = sorted(p for p in BROKERS.glob("*.py"))
MAX_LINES = 500


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def runtime_imports(path: Path, *, module_level: bool = False, type_only: bool = False
                    ) -> set[str]:
    """Modules ``path`` imports when it runs (``if TYPE_CHECKING:`` blocks excluded unless
    ``type_only``: then the static dependencies, type-only imports included). With
    ``module_level`` only the imports that run at import time (not those inside functions: the
    package's lazy ``__getattr__`` import of the adapter is deliberate)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node) and not type_only:
            for child in node.orelse:
                visit(child)
            return
        if module_level and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def broker_graph() -> dict[str, set[str]]:
    names = {_module_name(p) for p in MODULES}
    graph: dict[str, set[str]] = {}
    for path in MODULES:
        me = _module_name(path)
        imported = runtime_imports(path, module_level=True, type_only=True)
        # ``from src.brokers import translate`` imports the submodule; the package itself is
        # an edge only for a name that is not a submodule
        graph[me] = {m for m in imported if m in names and m != me and m != "src.brokers"}
        if any(m.startswith("src.brokers.") and m not in names and m.count(".") == 2
               for m in imported):
            graph[me].add("src.brokers")
        graph[me].discard(me)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as a list of modules, or None (depth-first search, three colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if state.get(nxt) is None:
                cycle = dfs(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if state.get(node) is None:
            cycle = dfs(node)
            if cycle:
                return cycle
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_broker_module_imports_the_app_layer(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    offending = sorted(
        m for m in runtime_imports(path) | {
            n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        if m == "src.app" or m.startswith("src.app."))
    assert offending == [], f"{path.name} imports the app layer: {offending}"


def test_the_broker_import_graph_is_acyclic() -> None:
    """Type-only imports count: a service that names the facade's type depends on it."""
    graph = broker_graph()
    assert "src.brokers.ib_client" in graph
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph) or [])}"


def test_each_broker_module_imports_alone_without_the_app_layer() -> None:
    names = [_module_name(p) for p in MODULES]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    for m in [k for k in sys.modules if k.startswith('src')]:\n"
        "        del sys.modules[m]\n"
        "    importlib.import_module(name)\n"
        "    leaked = sorted(k for k in sys.modules\n"
        "                    if k == 'src.app' or k.startswith('src.app.'))\n"
        "    assert not leaked, (name, leaked)\n"
        "    assert 'yaml' not in sys.modules, (name, 'PyYAML loaded')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_broker_module_is_over_the_size_budget(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines (budget {MAX_LINES})"
