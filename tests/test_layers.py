"""The layer contract of ``iislib`` (README, "Layout"), read from the source with ``ast``.

Every import counts, at module level or inside a function: a lazy import is still a
dependency. Layers, from the bottom: infra (``paths``, ``runtime``, ``atomic``), ``core``, ``models``,
``experiment``, ``training``, ``drawing``, ``apps``; each imports only the layers its row of
``ALLOWED`` names, and the module graph has no cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "iislib"

ALLOWED: dict[str, set[str]] = {
    "root": {"core"},  # iislib/__init__.py: __version__ (in every cache key) and Click
    "infra": {"infra"},
    "core": {"infra", "core"},
    "models": {"root", "infra", "core", "models"},
    "experiment": {"root", "infra", "core", "models", "experiment"},
    "training": {"root", "infra", "core", "models", "experiment", "training"},
    "drawing": {"root", "infra", "core", "experiment", "drawing"},
    "apps": {"root", "infra", "core", "models", "experiment", "training", "drawing", "apps"},
}
"""Which layers each layer may import. Nothing imports ``apps``; ``drawing`` never imports
``models`` or ``training`` (a figure draws what was computed, it never runs a network)."""

FORBIDDEN_THIRD_PARTY: dict[str, set[str]] = {
    "core": {"torch", "matplotlib", "ipywidgets", "IPython", "pandas"},
    "models": {"matplotlib", "ipywidgets", "IPython"},
    "experiment": {"matplotlib", "ipywidgets", "IPython"},
    "training": {"matplotlib", "ipywidgets", "IPython"},
    "drawing": {"torch"},
}

LOOP_NAMES_FOR_DRAWING = {"Trajectory", "make_rng"}
"""What ``drawing`` may take from ``iislib.core.loop``: the record of a run and the seeding
rule, never ``run`` itself."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "root"
    if parts[1] in ("paths", "runtime", "atomic"):
        return "infra"
    if parts[1] == "__main__":
        return "apps"
    return parts[1]


def imports(path: Path) -> list[tuple[str, list[str]]]:
    """(imported module, names) for every import statement of ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [a.name for a in node.names]
            # "from iislib.x import y" imports the module iislib.x.y when y is one; the package
            # iislib.x counts only for the names that are not modules (a submodule's parent
            # package is initialised first in any case, and is not a dependency of its own)
            modules = [n for n in names if _is_module(f"{node.module}.{n}")]
            if len(modules) < len(names):
                out.append((node.module, [n for n in names if n not in modules]))
            out += [(f"{node.module}.{n}", []) for n in modules]
    return out


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:]) if name.startswith("iislib.") else None
    return rel is not None and (
        (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()
    )


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_the_layers_are_the_packages() -> None:
    assert {layer(m) for m in MODULES} == set(ALLOWED)
    assert (PACKAGE / "apps").is_dir() and not (PACKAGE / "notebooks.py").exists()


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_imports_only_the_layers_below_it(module: str) -> None:
    mine = layer(module)
    for target, names in imports(MODULES[module]):
        top = target.split(".")[0]
        if top == "iislib":
            assert layer(target) in ALLOWED[mine], f"{module} ({mine}) imports {target}"
            if mine == "drawing" and target == "iislib.core.loop":
                assert set(names) <= LOOP_NAMES_FOR_DRAWING, f"{module} imports {names} of the loop"
        else:
            assert top not in FORBIDDEN_THIRD_PARTY.get(mine, set()), f"{module} imports {top}"


def test_the_module_graph_has_no_cycle() -> None:
    graph = {m: {t for t, _ in imports(p) if t in MODULES and t != m} for m, p in MODULES.items()}
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycle = stack[stack.index(t) :] + [t] if t in stack else [m, t]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t, [*stack, t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The contract can fail: a core module importing torch or a model is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("import torch\ndef f():\n    from iislib.models import get_model\n")
    found = imports(bad)
    assert ("torch", []) in found and ("iislib.models", ["get_model"]) in found
    assert "torch" in FORBIDDEN_THIRD_PARTY["core"] and "models" not in ALLOWED["core"]


def test_no_module_imports_a_private_name_of_another() -> None:
    """``from iislib.x import _name`` across modules would make ``_name`` an API in disguise
    (the figures once re-derived robots through such helpers): what another module needs is
    public."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("iislib"):
                found += [f"{module_name(path)}: {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]  # fmt: skip
    assert found == []
