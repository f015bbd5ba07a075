"""Architecture rules of ``ogae_core``, checked on the source (AST), so that regressions fail:

(a) no import cycle among the package's modules — every import counts: top level, inside
    functions, under ``if TYPE_CHECKING:``, and a package ``__init__``'s re-exports;
(b) no private name imported from another module (``from ogae_core.x import _name``);
(c) no code outside ``ogae_core/methods`` decides on a registered method's name: a string
    literal equal to a method name inside a comparison (``== "ogae"``, ``in ("ogae", ...)``),
    a subscript (``d["ogae"]``), a ``.get("ogae")`` or a ``match``/``case`` (data such as
    preset grids — dict literals, call arguments — stays allowed).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ogae_core"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
TREES: dict[str, ast.Module] = {m: ast.parse(p.read_text(encoding="utf-8"), str(p)) for m, p in MODULES.items()}


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if _is_package(module) else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _known(name: str) -> str | None:
    """The ogae_core module ``name`` refers to (its longest known prefix), else None."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        candidate = ".".join(parts[:k])
        if candidate in MODULES:
            return candidate
    return None


def imports_of(module: str) -> list[tuple[str, int]]:
    """(imported ogae_core module, line) for every import statement of ``module``."""
    out = []
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.Import):
            out += [(m, node.lineno) for a in node.names if (m := _known(a.name))]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            for alias in node.names:
                target = _known(f"{source}.{alias.name}") if f"{source}.{alias.name}" in MODULES else _known(source)
                if target:
                    out.append((target, node.lineno))
    return out


def import_graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in imports_of(m) if t != m} for m in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_sees_cycles_and_every_kind_of_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    # function-level and TYPE_CHECKING imports are edges too (known examples of the package)
    graph = import_graph()
    assert "ogae_core.detector" in graph["ogae_core"]  # lazy import inside __getattr__
    assert "ogae_core.experiments.kinds" in graph["ogae_core.experiments"]  # a package's re-export


def test_no_import_cycle():
    found = cycles(import_graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def _private_imports(module: str) -> list[str]:
    bad = []
    for node in ast.walk(TREES[module]):
        if isinstance(node, ast.ImportFrom) and _known(_absolute(module, node)):
            source = _absolute(module, node)
            for alias in node.names:
                private = alias.name.startswith("_") and not alias.name.startswith("__")
                if private and f"{source}.{alias.name}" not in MODULES:
                    bad.append(f"line {node.lineno}: from {source} import {alias.name}")
    return bad


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_name_imported_from_another_module(module):
    bad = _private_imports(module)
    assert not bad, f"{module} imports private names: {bad}"


def _method_names() -> set[str]:
    from ogae_core.methods import method_names

    return set(method_names())


def _literals(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [v for e in node.elts for v in _literals(e)]
    return []


def name_decisions(tree: ast.AST, names: set[str]) -> list[str]:
    """Places where a method-name literal decides behaviour (see the module docstring)."""
    hits = []
    for node in ast.walk(tree):
        used: list[str] = []
        if isinstance(node, ast.Compare):
            for part in [node.left, *node.comparators]:
                used += _literals(part)
        elif isinstance(node, ast.Subscript):
            used += _literals(node.slice)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" and node.args:
            used += _literals(node.args[0])
        elif isinstance(node, ast.MatchValue):
            used += _literals(node.value)
        found = sorted(set(used) & names)
        if found:
            hits.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
    return hits


def test_the_name_check_flags_name_branches():
    names = {"ogae", "ae"}
    src = ('if m.name == "ogae": pass\nif m in ("ae", "x"): pass\nw = d["ogae"]\nv = d.get("ae")\n'
           'match m:\n    case "ogae": pass\n')
    assert len(name_decisions(ast.parse(src), names)) == 5
    assert name_decisions(ast.parse('GRID = {("ogae", "ocsvm"): {}}\nf("ogae")\n'), names) == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if not m.startswith("ogae_core.methods")))
def test_no_branching_on_method_names_outside_methods(module):
    hits = name_decisions(TREES[module], _method_names())
    assert not hits, f"{module} decides on a method's name: {hits}"
