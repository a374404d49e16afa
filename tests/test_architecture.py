"""The package's shape: packages by lifecycle, each importing only the rooms below it, and no
import cycles inside `advisor/`, counting every import statement (module level, under
TYPE_CHECKING, inside functions) and the lazy imports of `__init__`."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "advisor"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every advisor module that `path` imports, wherever the import statement stands."""
    out: set[str] = set()
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]

    def add(name: str) -> None:
        while name and name not in modules:  # `from advisor.policies.rules import x`: the package
            name = name.rpartition(".")[0]
        if name and name != this:
            out.add(name)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([package.rsplit(".", node.level - 1)[0], base]).strip(".")
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in modules else base)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and node.value in modules
            and path.name == "__init__.py"
        ):
            add(node.value)  # the lazy `_LAZY = {"name": "advisor.module"}` tables
    return out


def import_graph() -> dict[str, set[str]]:
    files = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(f) for f in files}
    return {module_name(f): imports_of(f, modules) for f in files}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first repeated at the end), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


# The lifecycle, bottom to top: what each package may import besides itself. A lower package
# never imports a higher one; `advisor/__init__.py` (the public names) may import any.
MAY_IMPORT: dict[str, set[str]] = {
    "core": set(),
    "stats": {"core"},
    "policies": {"core", "stats"},
    "rules": {"policies"},  # the public name of the rule lists, `advisor.rules`
    "analysis": {"core", "stats", "policies"},
    "report": {"core"},  # the one money format
    "artefacts": {"core", "stats", "policies", "analysis", "report"},
    "ship": {"core", "stats", "policies", "artefacts"},
    "serve": {"core", "stats", "policies", "analysis", "artefacts"},
    "monitor": {"core", "stats", "artefacts", "report"},
    "track": {"core", "stats", "policies", "artefacts", "ship"},
    "api": {"core", "stats", "policies", "analysis", "artefacts", "serve", "track"},
    "cli": {
        "core", "stats", "policies", "rules", "analysis", "report", "artefacts",
        "ship", "serve", "monitor", "track", "api",
    },
}  # fmt: skip


def package_of(module: str) -> str:
    """`advisor.analysis.drift` -> `analysis`; the root package is `advisor`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "advisor"


def layering_violations(graph: dict[str, set[str]]) -> list[str]:
    out = []
    for module, deps in sorted(graph.items()):
        home = package_of(module)
        if home == "advisor":
            continue
        for dep in sorted(deps):
            there = package_of(dep)
            if there != home and there not in MAY_IMPORT.get(home, set()):
                out.append(f"{module} -> {dep}")
    return out


def test_the_import_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert "advisor.cli.console" in graph["advisor.cli.rules"]  # module level
    assert "advisor.api" in graph["advisor"]  # TYPE_CHECKING and the lazy table
    assert "advisor.policies.rules.policy" in graph["advisor.analysis.pipeline"]
    assert "advisor.track.tracking" in graph["advisor.api"]  # inside a function
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycles_inside_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_lives_in_a_room():
    """Only `advisor/__init__.py` stands outside the lifecycle packages."""
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    assert loose == []
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())
    assert packages == sorted(MAY_IMPORT)


def test_each_package_imports_only_the_rooms_below_it():
    assert layering_violations(import_graph()) == []


def test_the_layering_rule_catches_an_upward_import():
    graph = {"advisor.core.case": {"advisor.analysis.maintenance"}, "advisor.cli.main": set()}
    assert layering_violations(graph) == ["advisor.core.case -> advisor.analysis.maintenance"]
