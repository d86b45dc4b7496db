"""What the printouts, the report and ``compare`` call a run's examples (issue 27): images for
image data, "examples" for a table's rows or a count matrix's; never "images" of a CSV."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from helpers import exit_code

TINY = ["--epochs", "1", "--hidden", "8", "--latent-dim", "2", "--batch-size", "16"]
COMMON = [*TINY, "--device", "cpu", "--threads", "1", "--quiet"]
IMAGE_WORDS = re.compile(r"\bimages?\b")


def table(path: Path) -> Path:
    """120 rows of 4 continuous measurements with a header."""
    rng = np.random.default_rng(0)
    lines = ["a,b,c,d"] + [",".join(f"{v:.4f}" for v in row) for row in rng.normal(size=(120, 4))]
    path.write_text("\n".join(lines) + "\n")
    return path


def binary_images(path: Path) -> Path:
    """120 binary 6x6 images."""
    rng = np.random.default_rng(0)
    np.save(path, (rng.random((120, 6, 6)) < 0.3).astype(np.uint8))
    return path


def _two_runs(root: Path, data: Path, *extra: str) -> tuple[Path, Path]:
    """Two evaluated runs of ``data`` (IS with K = 60, so that k-hat is computed; the first
    also by AIS, so that the report's table of estimators shows)."""
    base = ["train", "--dataset", str(data), *extra, *COMMON, "--runs-dir", str(root)]
    for name in ("a", "b"):
        assert exit_code([*base, "--name", name]) == 0
        assert exit_code(["evaluate", str(root / name), "--num-samples", "60", *COMMON[-5:]]) == 0
    ais = ["--method", "ais", "--steps", "3", "--chains", "2", "--leapfrog", "2"]
    assert exit_code(["evaluate", str(root / "a"), *ais, *COMMON[-5:]]) == 0
    return root / "a", root / "b"


def _said(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert exit_code(argv) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "kind,write,extra",
    [
        ("table", table, ("--likelihood", "gaussian")),
        ("images", binary_images, ()),
    ],
)
def test_evaluate_report_and_compare_name_the_examples(tmp_path, capsys, kind, write, extra):
    data = write(tmp_path / ("data.csv" if kind == "table" else "data.npy"))
    a, b = _two_runs(tmp_path / "runs", data, *extra)
    evaluate = _said(capsys, ["evaluate", str(a), "--num-samples", "60", "--device", "cpu"])
    compare = _said(capsys, ["compare", str(a), str(b)])
    assert exit_code(["report", str(a), "--device", "cpu", "--quiet"]) == 0
    report = (a / "report.md").read_text()
    test_examples = 24  # 20 % of 120
    if kind == "table":
        assert f"{test_examples} test examples" in evaluate and "(nats per example)" in evaluate
        assert "k-hat <= 0.7 for all" in evaluate or "k-hat > 0.7 for" in evaluate
        assert "nats per example" in compare and f"same {test_examples} test examples" in compare
        assert "nats per example" in report and f"{test_examples} examples)" in report
        assert "| examples |" in report  # the table of estimators
        for name, text in (("evaluate", evaluate), ("compare", compare), ("report", report)):
            found = IMAGE_WORDS.findall(text)
            assert not found, f"{name} calls a table's rows images: {text}"
    else:
        assert f"{test_examples} test images" in evaluate and "(nats per image)" in evaluate
        assert "nats per image" in compare and f"same {test_examples} test images" in compare
        assert "nats per image" in report and f"{test_examples} images)" in report
        assert "| images |" in report
        assert "example" not in evaluate and "example" not in compare


def test_the_images_option_says_it_counts_examples(tmp_path, capsys):
    data = table(tmp_path / "data.csv")
    run = tmp_path / "r"
    argv = ["train", "--dataset", str(data), "--likelihood", "gaussian", *COMMON]
    assert exit_code([*argv, "--runs-dir", str(tmp_path), "--name", "r"]) == 0
    assert exit_code(["evaluate", str(run), "--images", "500", *COMMON[-5:]]) != 0
    err = capsys.readouterr().err
    assert "--images 500: the test split has 24 examples" in err
    assert exit_code(["evaluate", str(run), "--examples", "5", "--num-samples", "5"]) == 0
    assert "5 test examples" in capsys.readouterr().out  # --examples: another name for it
    assert exit_code(["evaluate", "--help"]) == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "only the split's first N examples" in help_text
