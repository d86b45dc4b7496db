"""The package's layers import one way: cli -> jobs -> app -> infer -> model, with data beside
(imported by any layer, importing none of them), the records of what a run keeps (store:
torch-free plain data, importing only the shared helpers) below app and infer, whose estimators
return them, the settings' declarations (config, torch-free) below data, and the shared helpers
at the bottom; no import cycles, and no package import hidden inside a function, except in the
command line, whose commands import their job module when they run (so that ``--help`` loads no
torch)."""

import ast
from pathlib import Path

import pytest
from helpers import REPO

PACKAGE = REPO / "pyro_vae"
ALLOWED = {
    "base": {"base"},
    "config": {"base", "config"},
    "store": {"base", "store"},
    "data": {"base", "config", "data"},
    "model": {"base", "config", "data", "model"},
    "infer": {"base", "config", "store", "data", "model", "infer"},
    "app": {"base", "config", "store", "data", "model", "infer", "app"},
    "jobs": {"base", "config", "store", "data", "model", "infer", "app", "jobs"},
    "cli": {"base", "config", "store", "data", "model", "infer", "app", "jobs", "cli"},
}


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ALLOWED else "base"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        if name not in ("pyro_vae", "pyro_vae.__main__"):
            found[name] = path
    return found


def package_imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported pyro_vae module, whether the import is inside a function)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = []
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    nested = {id(n) for f in functions for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            targets = [target]
            if not node.module:  # from . import x
                targets = [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            if t.startswith("pyro_vae"):
                found.append((t, id(node) in nested))
    return found


MODULES = modules()
LAZY = {"pyro_vae.cli.commands", "pyro_vae.cli.dispatch"}
"""Modules allowed to import inside functions (the layer rule still holds for them)."""


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_run_one_way_and_sit_at_the_top(name):
    for target, in_function in package_imports(name, MODULES[name]):
        if target == "pyro_vae":  # the package itself: only __version__
            continue
        allowed = ALLOWED[layer(name)]
        assert layer(target) in allowed, f"{name} imports {target}"
        assert name in LAZY or not in_function, f"{name} imports {target} inside a function"


def test_no_import_cycles():
    graph = {
        name: {t for t, _ in package_imports(name, path) if t in MODULES}
        for name, path in MODULES.items()
    }
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError(" -> ".join([*trail, node, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, node])
        state[node] = 2

    for name in graph:
        if name not in state:
            visit(name, [])
