"""The short names of the built-in parts, read (without importing torch) from where each is
registered: beside its class, in its kind's table in ``pyro_vae/model/`` (``PRIORS`` in
``priors.py``, ...). Adding a built-in part is a change to that one file: its class and its
table entry.

The command line needs the names before it loads torch (``pyro-vae train --help`` lists them),
so this module reads them from the table's source with :mod:`ast` rather than importing it;
each table is therefore a dict literal with string keys (anything else is refused at import),
and a test checks that the names read equal the tables' keys."""

from __future__ import annotations

import ast
from pathlib import Path

MODEL_DIR = Path(__file__).resolve().parent.parent / "model"
REGISTRIES: dict[str, tuple[str, str]] = {
    "prior": ("priors.py", "PRIORS"),
    "guide": ("guides.py", "GUIDES"),
    "likelihood": ("likelihoods.py", "LIKELIHOODS"),
    "decoder": ("decoders.py", "DECODERS"),
}
"""Each kind's table of built-in parts: (its file in ``pyro_vae/model/``, its name)."""


def _table(tree: ast.Module, path: Path, table: str) -> ast.Dict:
    """The module-level dict literal ``table`` of the parsed file ``path``."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if not (isinstance(target, ast.Name) and target.id == table):
            continue
        keys = value.keys if isinstance(value, ast.Dict) else [None]
        if not all(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in keys):
            raise RuntimeError(f"{path}: {table} must be a dict literal with string keys")
        return value  # type: ignore[return-value]
    raise RuntimeError(f"{path}: no table {table}")


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def registered_names(path: Path, table: str) -> tuple[str, ...]:
    """The keys of the module-level dict literal ``table`` in the Python file ``path``."""
    return tuple(k.value for k in _table(_parse(path), path, table).keys)  # type: ignore[union-attr]


def builtin_observes() -> dict[str, str]:
    """What each built-in likelihood observes (its class's ``observes = "..."``, default
    ``binary``) by short name, read from ``likelihoods.py`` as its table registers it."""
    path = MODEL_DIR / REGISTRIES["likelihood"][0]
    tree = _parse(path)
    declared = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            for item in node.body:
                if (
                    isinstance(item, ast.Assign)
                    and [getattr(t, "id", None) for t in item.targets] == ["observes"]
                    and isinstance(item.value, ast.Constant)
                ):
                    declared[node.name] = str(item.value.value)
    table = _table(tree, path, REGISTRIES["likelihood"][1])
    return {
        k.value: declared.get(getattr(v, "id", ""), "binary")  # type: ignore[union-attr]
        for k, v in zip(table.keys, table.values, strict=True)
    }


def builtin_parts() -> dict[str, tuple[str, ...]]:
    """Short names of the built-in parts of each kind, as their tables register them."""
    return {
        kind: registered_names(MODEL_DIR / file, table)
        for kind, (file, table) in REGISTRIES.items()
    }
