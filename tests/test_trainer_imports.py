"""The trainer package's imports form no circle (issue 15: train.py <-> predict.py was one), point
only down to `clipstore`, and no module grows past ~450 lines. Read from the source (AST), so
lazy imports inside functions count too."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "trainer"


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PKG.glob("*.py"):
        mod = path.stem
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1:
                    deps |= {node.module.split(".")[0]} if node.module else \
                        {a.name for a in node.names}
                elif node.module and node.module.startswith("trainer."):
                    deps.add(node.module.split(".")[1])
                elif node.module and node.module.split(".")[0] == "evaluation":
                    deps.add("evaluation!")
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("trainer."):
                        deps.add(a.name.split(".")[1])
                    elif a.name.split(".")[0] == "evaluation":
                        deps.add("evaluation!")
        graph[mod] = deps - {mod}
    return graph


def test_no_import_circles_in_trainer():
    graph = _imports()
    assert "train" not in graph["predict"] and "train" not in graph["storage"]
    seen: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        if seen.get(m) == 1:
            raise AssertionError(f"import circle: {' -> '.join(stack + [m])}")
        if seen.get(m) == 2 or m not in graph:
            return
        seen[m] = 1
        for d in sorted(graph[m]):
            visit(d, stack + [m])
        seen[m] = 2

    for m in sorted(graph):
        visit(m, [])


def test_trainer_never_imports_evaluation_and_modules_stay_small():
    graph = _imports()
    assert not [m for m, deps in graph.items() if "evaluation!" in deps]
    sizes = {p.name: len(p.read_text().splitlines()) for p in PKG.glob("*.py")}
    assert max(sizes.values()) <= 450, sizes
