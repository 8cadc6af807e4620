"""scripts/ grouped by job (docs/design.md §1): imports point down the layers only, no module imports
itself back through others, and none is over 400 lines. Read from the source (every import, also those inside functions)."""
import ast
from pathlib import Path

from tests.conftest import ROOT

SCRIPTS = ROOT / "scripts"
# bottom to top; the three modules at scripts/'s top level sit in the layer of their job
LAYERS = ("core", "models", "data", "extraction", "evaluation", "training", "diagnostics")
TOP_LEVEL = {"model": "models", "dataset": "data", "option": "training"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    part = module.split(".")[1]
    return TOP_LEVEL.get(part, part)


def imports(path: Path) -> set[str]:
    """The scripts.* modules a file imports (`from scripts.x.y import z`, `import scripts.x.y`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("scripts"):
            if node.module in ("scripts", *(f"scripts.{p}" for p in LAYERS)):  # from scripts.data import lists
                found |= {f"{node.module}.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("scripts.")}
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in SCRIPTS.rglob("*.py")}


def test_scripts_top_level_is_the_packages_and_three_modules():
    entries = sorted(p.name for p in SCRIPTS.iterdir() if p.name not in ("__init__.py", "__pycache__"))
    assert entries == sorted(["dataset.py", "model.py", "option.py", *LAYERS])
    assert len(entries) <= 10


def test_no_module_over_400_lines():
    """Small modules named after what they hold (issue #18): a module that outgrows 400 lines is split by job."""
    long = {str(p.relative_to(ROOT)): n for p in SCRIPTS.rglob("*.py") if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


def test_imports_point_down_the_layers():
    upward = [f"{m} ({layer(m)}) imports {t} ({layer(t)})" for m, targets in graph().items() if m != "scripts"
              for t in targets if LAYERS.index(layer(t)) > LAYERS.index(layer(m))]
    assert upward == []


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}  # 1 on the path, 2 done
    cycles = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]) if nxt in path else f"{node} -> {nxt}")
            elif nxt in edges and state.get(nxt) is None:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(edges):
        if state.get(start) is None:
            visit(start, [start])
    assert cycles == []


def test_every_benchmark_imports():
    """benchmarks/ are not run by make test, so an import a move broke would go unnoticed: load each one."""
    import importlib.util

    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))  # each guards its main()


def test_no_module_of_models_imports_the_model_module():
    """scripts/model.py builds on scripts/models/ (config, inputs, parts, the published model, the baseline,
    checkpoints), never the other way: the models layer has no import pointing up to its top module."""
    upward = sorted(m for m, targets in graph().items() if m.startswith("scripts.models.") and "scripts.model" in targets)
    assert upward == []
