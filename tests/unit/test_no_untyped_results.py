"""Results travel as typed records (:mod:`pyro_vae.store`), read by attribute: outside
``store/`` no code of the package or of the experiments reads a result by its JSON name from a
dict (``summary["log_px"]``, ``row.get("khat_above_0.7")``).

The names are those the records declare (each field's JSON spelling), less the few that also
name something that is not a result (a checkpoint's ``epoch``, an estimator's ``num_chains``
keyword, a model description's ``parts``): those are read by key from what they belong to.
Two functions parse a per-image tensor file (torch, so it cannot live in ``store/``) into
:class:`~pyro_vae.app.run_tensors.Points` and read its raw ``log_px`` to check it."""

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from helpers import REPO

import pyro_vae.store
from pyro_vae.store.fields import Record

SCANNED = [REPO / "pyro_vae", REPO / "experiments"]
STORE = REPO / "pyro_vae" / "store"

NOT_ONLY_RESULTS = {
    # a checkpoint's or a metrics line's bookkeeping, a file's version, config.json's sections
    "epoch", "steps", "wall_seconds", "format", "model", "dataset", "pixels", "seed",
    # an estimator's settings, passed as keywords
    "method", "split", "start", "reverse", "num_steps", "num_chains", "num_leapfrog",
    # a model's description (describe_parts) and the baseline's saved mixtures
    "parts", "generative_parameters", "mixtures", "n_components",
    # generic words of the interpolation and baseline records
    "vae", "mean", "se", "pairs", "classes", "frames", "judges",
}  # fmt: skip
"""Declared names that also spell something other than a result."""

PARSERS = {
    ("pyro_vae/app/run_tensors.py", "checked_points"),
    ("pyro_vae/app/evaluations.py", "load_points"),
}
"""Functions that parse a per-image tensor file into :class:`Points` (they read its raw
``log_px`` to check it)."""


def records() -> list[type[Record]]:
    found = []
    for info in pkgutil.iter_modules(pyro_vae.store.__path__):
        module = importlib.import_module(f"pyro_vae.store.{info.name}")
        found += [
            cls
            for cls in vars(module).values()
            if inspect.isclass(cls)
            and issubclass(cls, Record)
            and cls.__module__ == module.__name__
        ]
    return found


def declared_names() -> set[str]:
    return {spec.key or f.name for cls in records() for f, spec in cls.specs()}


RESULT_KEYS = declared_names() - NOT_ONLY_RESULTS


def reads_by_key(source: str, keys: set[str]) -> list[tuple[int, str, str]]:
    """(line, enclosing function, code) of each read of a ``keys`` name from a dict: a
    subscript by the string (not an assignment to it) or ``.get``/``.pop`` of it."""
    tree = ast.parse(source)
    found = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            key = node.slice.value if isinstance(node.slice, ast.Constant) else None
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get", "pop")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            key = node.args[0].value
        if isinstance(key, str) and key in keys:
            found.append((node.lineno, function, ast.unparse(node)))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "")
    return found


def scanned_files() -> list[Path]:
    return sorted(p for root in SCANNED for p in root.rglob("*.py") if STORE not in p.parents)


def test_the_keys_are_the_records_declared_names():
    declared = declared_names()
    assert NOT_ONLY_RESULTS <= declared, NOT_ONLY_RESULTS - declared  # no stale exclusion
    assert {"log_px", "log_px_se", "khat_above_0.7", "unreliable", "vae_minus_best_mixture"} <= (
        RESULT_KEYS
    )
    assert {"val_elbo", "train_objective", "num_samples", "lower_minus_is"} <= RESULT_KEYS


def test_the_scan_finds_reads_by_key_and_not_by_attribute():
    source = (
        "def table(ev, rows):\n"
        "    a = ev['log_px'] + ev.log_px\n"
        "    rows['khat_above_0.7'] = 1\n"  # an assignment builds a dict: not a read
        "    return rows.get('unreliable'), ev['epoch'], ev[key]\n"
    )
    found = reads_by_key(source, RESULT_KEYS)
    assert [(line, function) for line, function, _ in found] == [(2, "table"), (4, "table")]
    assert [code for *_, code in found] == ["ev['log_px']", "rows.get('unreliable')"]


@pytest.mark.parametrize("path", scanned_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_no_result_is_read_by_key_outside_store(path):
    where = str(path.relative_to(REPO))
    found = [
        f"{where}:{line} in {function or 'the module'}: {code}"
        for line, function, code in reads_by_key(path.read_text(), RESULT_KEYS)
        if (where, function) not in PARSERS
    ]
    assert not found, "a result read by key, not from its record:\n" + "\n".join(found)
