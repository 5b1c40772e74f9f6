"""The arrows of docs/ARCHITECTURE.md, checked on the source: which module may import which.

Every import counts, also the ones inside functions (lazy imports are still arrows).
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("ohlora", "memory", "training")

# the app layer: it may import everything; nothing below may import it
APP = ("ohlora.cli", "ohlora.tui", "ohlora.chat", "ohlora.guards", "ohlora.conversation", "ohlora.registry", "ohlora.eval_cli",
       "ohlora.evaluation", "ohlora.memory_cli", "ohlora.serve", "ohlora.cards", "ohlora.data_cli")
# what the memory package may use from ohlora
MEMORY_MAY_USE = ("ohlora.errors", "ohlora.db")


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")}


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Modules of ours that `path` imports (resolving `from pkg import submodule`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".")[: -node.level] if not path.name == "__init__.py" else name.split(".")[: len(name.split(".")) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node except those under `if TYPE_CHECKING:` (type-only imports never run)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                todo.extend(child.orelse)
                continue
            todo.append(child)


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(path, name, known) for name, path in mods.items()}


def under(mod: str, prefixes: tuple[str, ...]) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in prefixes)


def test_memory_and_training_never_import_the_app_layer():
    bad = [(m, t) for m, ts in graph().items() if under(m, ("memory", "training")) for t in ts if under(t, APP)]
    assert bad == []


def test_memory_imports_only_errors_and_the_db_helper_from_ohlora_and_nothing_from_training():
    bad = [(m, t) for m, ts in graph().items() if under(m, ("memory",)) for t in ts
           if (under(t, ("ohlora",)) and not under(t, MEMORY_MAY_USE)) or under(t, ("training",))]
    assert bad == []


def test_the_foundation_imports_neither_the_app_nor_the_libraries():
    foundation = [m for m in graph() if under(m, ("ohlora",)) and not under(m, APP)]
    g = graph()
    bad = [(m, t) for m in foundation for t in g[m] if under(t, APP + ("memory", "training"))]
    assert bad == []


def test_no_import_cycles_between_modules():
    g = graph()
    cycles = []
    for a, targets in g.items():
        for b in targets:
            if a in _reach(g, b):
                cycles.append(tuple(sorted((a, b))))
    assert sorted(set(cycles)) == []


def _reach(g: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        m = todo.pop()
        for t in g.get(m, ()):
            if t not in seen:
                seen.add(t)
                todo.append(t)
    return seen


def test_the_checker_sees_a_broken_arrow(tmp_path, monkeypatch):
    """The rule can fail: a memory module importing the app is caught."""
    fake = tmp_path / "memory" / "bad.py"
    fake.parent.mkdir()
    fake.write_text("def f():\n    from ohlora.chat import ChatSession\n", encoding="utf-8")
    found = imports(fake, "memory.bad", set(modules()) | {"memory.bad"})
    assert "ohlora.chat" in found and under("ohlora.chat", APP)
