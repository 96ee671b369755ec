"""The layer map of docs/architecture.md, enforced over the import graph.

Every ``import`` in ``src/trialkit`` counts, including imports inside functions: a
lazy import is still a dependency, and a cycle through one is still a cycle.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "trialkit"

# Each layer may import only from the layers before it; packages in one layer are
# independent of each other. Keep in step with docs/architecture.md.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "_version"),
    ("_io", "methods", "_settings"),
    ("store", "plotting"),
    ("protocol",),
    ("data", "models"),
    ("randomise", "simulate", "power", "fidelity"),
    ("feasibility",),
    ("analyse",),
    ("report",),
    ("pipeline",),
    ("cli", "testing"),
    ("__main__",),
)
# the package itself (curated lazy public API) sits above everything
TOP = "trialkit"


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        mods[name] = path
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[str]:
    """Modules of trialkit that ``name`` imports (anywhere in the file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "trialkit":
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > 1:
                    base = base[: -(node.level - 1)]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.split(".")[0] != "trialkit":
                continue
            submodules = [
                f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES
            ]
            if submodules and len(submodules) == len(node.names):
                yield from submodules  # `from trialkit import _io`: the submodule only
            else:
                yield target
                yield from submodules


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        targets = set()
        for target in _imports(name, path):
            while target not in MODULES and "." in target:
                target = target.rsplit(".", 1)[0]
            if target in MODULES and target != name:
                targets.add(target)
        graph[name] = targets
    return graph


GRAPH = _graph()


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else TOP


def _layer_of(package: str) -> int:
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(
        f"package or module trialkit.{package} is not on the layer map; add it to LAYERS in "
        "tests/test_architecture.py and to docs/architecture.md"
    )


def test_every_top_level_package_is_on_the_map() -> None:
    for module in MODULES:
        top = _top(module)
        if top != TOP:
            _layer_of(top)


def test_layers_import_only_downwards() -> None:
    bad = []
    for module, targets in GRAPH.items():
        src = _top(module)
        for target in targets:
            dst = _top(target)
            if src == dst or src == TOP:
                continue
            if dst == TOP:
                bad.append(f"{module} imports the package root (import the defining module)")
            elif _layer_of(dst) >= _layer_of(src):
                bad.append(f"{module} -> {target}")
    assert not bad, "imports against the layer map:\n" + "\n".join(sorted(bad))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = itertools.count()

    def visit(v: str) -> None:
        index[v] = low[v] = next(counter)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_import_cycles() -> None:
    assert _cycles(GRAPH) == []


def test_no_package_import_cycles() -> None:
    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        packages.setdefault(_top(module), set()).update(
            _top(t) for t in targets if _top(t) != _top(module)
        )
    packages.pop(TOP, None)
    assert _cycles(packages) == []


def _distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def test_package_names_differ_by_more_than_two_letters() -> None:
    names = sorted({_top(m) for m in MODULES} - {TOP})
    close = [(a, b) for a, b in itertools.combinations(names, 2) if _distance(a, b) <= 2]
    assert not close


@pytest.mark.parametrize("package", sorted({_top(m) for m in MODULES} - {TOP}))
def test_submodules_do_not_import_their_own_package_root(package: str) -> None:
    root = f"trialkit.{package}"
    offenders = [m for m, targets in GRAPH.items() if m.startswith(root + ".") and root in targets]
    assert not offenders, f"import the defining module instead of {root}: {offenders}"
