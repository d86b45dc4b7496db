"""No module of the package over 450 lines (issue 26): a module that grows past it is split
along its responsibilities, as ``app/report.py`` (its sections / ``report_render.py``) and
``app/runs.py`` (the run directory / ``run_lock.py``) were."""

from pathlib import Path

from helpers import REPO

PACKAGE = REPO / "pyro_vae"
MAX_LINES = 450


def line_counts(root: Path) -> dict[str, int]:
    """Lines of every Python file below ``root`` (as ``wc -l`` counts them), by path relative
    to the folder above ``root``."""
    return {
        str(path.relative_to(root.parent)): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(root.rglob("*.py"))
    }


def too_long(root: Path) -> dict[str, int]:
    return {path: n for path, n in line_counts(root).items() if n > MAX_LINES}


def test_the_count_sees_every_module():
    counts = line_counts(PACKAGE)
    assert {"pyro_vae/__init__.py", "pyro_vae/app/runs.py", "pyro_vae/cli/parser.py"} <= set(counts)
    assert len(counts) > 50 and counts["pyro_vae/app/runs.py"] > 100


def test_a_module_one_line_over_is_flagged(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "sub" / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (package / "short.py").write_text("x = 1\n" * MAX_LINES)
    assert too_long(package) == {"pkg/sub/long.py": MAX_LINES + 1}


def test_no_module_is_over_450_lines():
    long = too_long(PACKAGE)
    listed = ", ".join(f"{path} ({n} lines)" for path, n in sorted(long.items()))
    assert not long, f"modules over {MAX_LINES} lines (split them by responsibility): {listed}"
