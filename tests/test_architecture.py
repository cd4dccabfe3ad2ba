"""The packages' imports point one way, down the data flow (docs/architecture.md).

Every import counts, also those inside functions (a lazy import is still a dependency); only
imports under `if TYPE_CHECKING:` are left out, since they never run.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("clipstore", "trainer", "evaluation", "experiment")
# what each package may import, besides itself and third-party libraries
ALLOWED = {
    "clipstore": set(),
    "trainer": {"clipstore"},
    "evaluation": {"clipstore"},
    "experiment": {"clipstore", "trainer", "evaluation"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imports(path: Path, modules: set[str]) -> set[str]:
    """Project modules that `path` imports (resolved to files that exist)."""
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out: set[str] = set()

    def add(name: str) -> None:
        while name and name not in modules:  # `from pkg import mod` or `import pkg.mod.attr`
            name = name.rpartition(".")[0]
        if name and name != me:
            out.add(name)

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                for a in child.names:
                    add(a.name)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - child.level + 1]
                    mod = ".".join(base + ([child.module] if child.module else []))
                else:
                    mod = child.module or ""
                for a in child.names:
                    full = f"{mod}.{a.name}"
                    add(full if full in modules else mod)
            visit(child)

    visit(ast.parse(path.read_text(), filename=str(path)))
    return out


def _graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES if (ROOT / pkg).is_dir() for p in (ROOT / pkg).rglob("*.py")]
    modules = {_module_name(p) for p in files}
    return {_module_name(p): _imports(p, modules) for p in files}


def test_imports_point_down_the_data_flow():
    bad = []
    for mod, deps in sorted(_graph().items()):
        top = mod.split(".")[0]
        for dep in sorted(deps):
            other = dep.split(".")[0]
            if other != top and other not in ALLOWED[top]:
                bad.append(f"{mod} -> {dep}")
    assert not bad, "imports running up the data flow:\n" + "\n".join(bad)


def test_no_import_cycles():
    graph = _graph()
    cycles, state, stack = [], {}, []

    def walk(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]))
            elif d not in state:
                walk(d)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m)
    # a package's __init__ re-exporting its modules is not a circle of files
    cycles = [c for c in cycles if not any(part.count(".") == 0 for part in c.split(" -> ")[:-1])]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


@pytest.mark.parametrize("pkg", ["clipstore"])
def test_library_names_no_app_module_by_string(pkg):
    """A lazy registry string ("trainer.cli:train") is an arrow too: the library holds none."""
    hits = [f"{p.relative_to(ROOT)}: {line.strip()}"
            for p in (ROOT / pkg).rglob("*.py")
            for line in p.read_text().splitlines()
            if any(f'"{up}.' in line or f"'{up}." in line for up in ("trainer", "evaluation", "experiment"))]
    assert not hits, "\n".join(hits)
