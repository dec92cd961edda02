"""The package's shape, checked from the source: no import cycles, small modules, typed specs below the
entry layer (``DictConfig`` only in ``imblab.app`` and ``imblab.config``)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "imblab"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str) -> str | None:
    """The imblab module an import names (``from imblab.a import b`` is module ``a.b`` or ``a``)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module -> imblab modules it imports, at module level or inside functions (every Import node)."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        is_pkg = path.name == "__init__.py"
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = module.split(".") if is_pkg else module.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                names = [f"{base}.{a.name}" for a in node.names] or [base]
            for name in names:
                if name.split(".")[0] == "imblab":
                    target = _resolve(name)
                    if target and target != module:
                        edges.add(target)
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_cycle_finder_finds_a_planted_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_import_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    # imblab.experiment imports tuning lazily, inside a function: it must still be an edge.
    assert "imblab.tuning.run" in graph["imblab.experiment"]


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_over_the_size_limit() -> None:
    sizes = {m: len(p.read_text().splitlines()) for m, p in MODULES.items()}
    too_big = {m: n for m, n in sizes.items() if n > MAX_LINES}
    assert not too_big, f"modules over {MAX_LINES} lines: {too_big}"


def test_dictconfig_only_in_the_entry_and_config_layers() -> None:
    allowed = ("imblab.app", "imblab.config")
    offenders = [m for m, p in MODULES.items() if "DictConfig" in p.read_text() and not m.startswith(allowed)]
    assert not offenders, f"DictConfig below the entry layer in {offenders}"


def test_instantiate_only_in_config() -> None:
    offenders = [
        m for m, p in MODULES.items() if "hydra.utils" in p.read_text() and not m.startswith("imblab.config")
    ]
    assert not offenders, f"hydra instantiate outside imblab.config in {offenders}"


def test_no_imports_of_other_modules_private_names() -> None:
    offenders = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("imblab"):
                private = [a.name for a in node.names if a.name.startswith("_") and not a.name.endswith("__")]
                if private:
                    offenders.append(f"{module}: from {node.module} import {private}")
    assert not offenders, offenders
