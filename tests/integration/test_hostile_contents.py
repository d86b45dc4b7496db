"""Issue 24, values inside run files and users' parts: every attempt gives a one-line message
with the documented exit status (2 usage, 1 bad file or data) and writes nothing, and what was
silent (a full disk under --tensorboard, compare on NaN points, figures on NaN ELBOs) is an
error."""

from __future__ import annotations

import errno
import json
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from helpers import exit_code as _exit_code
from helpers import file_stamps as _snapshot
from helpers import make_idx_files, tiny, train_tiny

from pyro_vae import write_idx
from pyro_vae.app.contents import points_problem
from pyro_vae.cli import main
from pyro_vae.store.strict_json import JSONContentError, parse_json

TINY = tiny(epochs=2)
BIG = "9" * 5000  # beyond Python's int-string conversion limit (4,300 digits)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A trained and evaluated run (2 epochs on digits; log p(x) by IS, K = 20)."""
    root = tmp_path_factory.mktemp("base")
    train_tiny(root, "base", TINY)
    assert main(["evaluate", str(root / "base"), "--num-samples", "20", "--quiet"]) == 0
    return root / "base"


def _one_line_error(err: str) -> str:
    assert "Traceback" not in err and "Exception in thread" not in err, err
    lines = [
        line
        for line in err.splitlines()
        if line.startswith("pyro-vae") and not line.startswith("pyro-vae: trusting ")
    ]  # the note that records a user's module as vouched for (tests/test_hostile_parts.py)
    assert len(lines) == 1, err
    return lines[0]


# ---------------------------------------------------------------------- crafted JSON values
def _replace(name: str, pattern: str, value: str, every: bool = False) -> Callable[[Path], None]:
    """Replace the value of ``"pattern": ...`` in RUN/name (the first, or every one)."""

    def edit(run: Path) -> None:
        path = run / name
        text = path.read_text()
        new = re.sub(
            rf'"{pattern}": [^,\n}}]*', f'"{pattern}": {value}', text, count=0 if every else 1
        )
        assert new != text
        path.write_text(new)

    return edit


def _write(name: str, text: str) -> Callable[[Path], None]:
    def edit(run: Path) -> None:
        (run / name).write_text(text)

    return edit


EVALUATE = ["evaluate", "{run}", "--num-samples", "5", "--quiet"]
RESUME = ["train", "--resume", "{run}", "--epochs", "3", "--quiet"]
FIGURES = ["figures", "{run}", "--quiet"]
REPORT = ["report", "{run}", "--no-figures"]
COMPARE = ["compare", "{base}", "{run}"]

CRAFTED = [
    # config.json: a usage error of the run's configuration (exit status 2), the file named
    ("5000-digit seed", _replace("config.json", "seed", BIG), EVALUATE, 2, "5000 digits"),
    ("5000-digit seed", _replace("config.json", "seed", BIG), RESUME, 2, "5000 digits"),
    ("lr Infinity", _replace("config.json", "lr", "Infinity"), FIGURES, 2, "Infinity"),
    ("lr 1e308", _replace("config.json", "lr", "1e308"), RESUME, 2, "1e308 is out of range"),
    ("beta NaN", _replace("config.json", "beta", "NaN"), EVALUATE, 2, "NaN is not a finite"),
    ("latent_dim -1e400", _replace("config.json", "latent_dim", "-1e400"), FIGURES, 2, "-1e400"),
    # metrics.jsonl: a bad file (exit status 1), file and line named
    (
        "5000-digit epoch",
        _replace("metrics.jsonl", "epoch", BIG),
        FIGURES,
        1,
        "jsonl:1: an integer",
    ),
    ("5000-digit steps", _replace("metrics.jsonl", "steps", BIG), REPORT, 1, "5000 digits"),
    ("val_elbo 1e308", _replace("metrics.jsonl", "val_elbo", "1e308"), FIGURES, 1, "1e308"),
    ("val_elbo -1e308", _replace("metrics.jsonl", "val_elbo", "-1e308"), REPORT, 1, "-1e308"),
    (
        "train Infinity",
        _replace("metrics.jsonl", "train_objective", "Infinity"),
        FIGURES,
        1,
        "Infinity",
    ),
    (
        "train -Infinity",
        _replace("metrics.jsonl", "train_objective", "-Infinity"),
        REPORT,
        1,
        "-Infinity",
    ),
    (
        "every val_elbo NaN",
        _replace("metrics.jsonl", "val_elbo", "NaN", every=True),
        FIGURES,
        1,
        "NaN",
    ),
    (
        "val_elbo 1e200",
        _replace("metrics.jsonl", "val_elbo", "1e200"),
        FIGURES,
        1,
        "val_elbo must be",
    ),
    ("epoch 0", _replace("metrics.jsonl", "epoch", "0"), FIGURES, 1, "epoch must be an integer"),
    (
        "kl_weight true",
        _replace("metrics.jsonl", "kl_weight", "true"),
        REPORT,
        1,
        "kl_weight must be",
    ),
    # evaluation.json: a bad file (exit status 1)
    (
        "5000-digit count",
        _replace("evaluation.json", "num_examples", BIG),
        COMPARE,
        1,
        "5000 digits",
    ),
    (
        "5000-digit count",
        _replace("evaluation.json", "num_examples", BIG),
        EVALUATE,
        1,
        "5000 digits",
    ),
    ("log_px 1e308", _replace("evaluation.json", "log_px", "1e308"), REPORT, 1, "1e308"),
    ("log_px -1e308", _replace("evaluation.json", "log_px", "-1e308"), COMPARE, 1, "-1e308"),
    ("log_px 1e100", _replace("evaluation.json", "log_px", "1e100"), REPORT, 1, "log_px must be"),
    (
        "log_px_se Infinity",
        _replace("evaluation.json", "log_px_se", "Infinity"),
        COMPARE,
        1,
        "Infinity",
    ),
    ("log_px NaN", _replace("evaluation.json", "log_px", "NaN"), REPORT, 1, "NaN"),
    # baseline.json and interpolation.json, read by the report
    (
        "baseline 1e308",
        _write("baseline.json", '{"vae_minus_best_mixture": 1e308}'),
        REPORT,
        1,
        "baseline.json: the number 1e308",
    ),
    (
        "baseline Infinity",
        _write("baseline.json", '{"mixtures": [-Infinity]}'),
        REPORT,
        1,
        "baseline.json: -Infinity",
    ),
    (
        "interpolation 5000 digits",
        _write("interpolation.json", f'{{"pairs": {BIG}}}'),
        REPORT,
        1,
        "interpolation.json: an integer of 5000 digits",
    ),
    (
        "interpolation nested",
        _write("interpolation.json", "[" * 100_000 + "]" * 100_000),
        REPORT,
        1,
        "nested too deeply",
    ),
]


@pytest.mark.parametrize(
    "what, edit, command, code, words", CRAFTED, ids=[f"{c[0]}-{c[2][0]}" for c in CRAFTED]
)
def test_crafted_values_give_a_message_and_write_nothing(
    tmp_path, base_run, capsys, what, edit, command, code, words
):
    run = tmp_path / "r"
    shutil.copytree(base_run, run)
    edit(run)
    before = _snapshot(run)
    capsys.readouterr()
    argv = [a.format(run=run, base=base_run) for a in command]
    assert _exit_code(argv) == code
    line = _one_line_error(capsys.readouterr().err)
    assert words in line, line
    assert str(run) in line  # the file is named
    assert _snapshot(run) == before


def test_list_shows_a_run_with_a_crafted_value_as_unreadable(tmp_path, base_run, capsys):
    shutil.copytree(base_run, tmp_path / "good")
    shutil.copytree(base_run, tmp_path / "bad")
    _replace("config.json", "seed", BIG)(tmp_path / "bad")
    _replace("metrics.jsonl", "val_elbo", "1e308")(tmp_path / "good")
    assert main(["list", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    bad = next(line for line in out.splitlines() if line.startswith("bad "))
    good = next(line for line in out.splitlines() if line.startswith("good "))
    assert "unreadable" in bad and "5000 digits" in bad
    assert "unreadable" in good and "1e308 is out of range" in good


def test_parse_json_bounds_numbers_and_takes_text_or_bytes():
    assert parse_json(b'{"a": [1, -2.5e3, null]}') == {"a": [1, -2500.0, None]}
    assert parse_json('{"seed": 18446744073709551615}') == {"seed": 2**64 - 1}
    for bad, words in [
        ("1" * 31, "31 digits"),
        ("-" + "1" * 4301, "4301 digits"),
        ("1e308", "out of range"),
        ("-1e400", "out of range"),
        ("[NaN]", "NaN"),
        ('{"x": Infinity}', "Infinity"),
        ("[" * 50_000, "nested too deeply"),
        (b"\xff\xfe", "not UTF-8"),
        ("{", "not valid JSON"),
    ]:
        with pytest.raises(JSONContentError, match=words):
            parse_json(bad)
    assert issubclass(JSONContentError, ValueError)


# ---------------------------------------------------------------------- points files
def _points(run: Path) -> Path:
    (path,) = run.glob("evaluation_is-K20_points.pt")
    return path


def _set_log_px(run: Path, log_px: torch.Tensor) -> None:
    path = _points(run)
    points = torch.load(path, weights_only=True)
    points["log_px"] = log_px
    torch.save(points, path)


@pytest.mark.parametrize(
    "what, log_px, words",
    [
        (
            "all NaN",
            lambda n: torch.full((n,), float("nan")),
            "{n} of its {n} per-image values are NaN",
        ),
        (
            "one infinite",
            lambda n: torch.cat([torch.full((n - 1,), -5.0), torch.tensor([-float("inf")])]),
            "1 of its {n}",
        ),
        (
            "zero-stride 10^10 values",
            lambda n: torch.zeros(1).expand(10**10),
            "holds 10000000000 values",
        ),
        ("too few", lambda n: torch.zeros(n - 1), "holds {m} values, not the {n}"),
        ("integers", lambda n: torch.zeros(n, dtype=torch.long), "not a floating-point type"),
        ("a matrix", lambda n: torch.zeros(n, 2), "not a vector"),
    ],
    ids=["all NaN", "one infinite", "zero-stride 10^10", "too few", "integers", "a matrix"],
)
def test_compare_refuses_points_that_are_not_finite_values(
    tmp_path, base_run, capsys, what, log_px, words
):
    run = tmp_path / "r"
    shutil.copytree(base_run, run)
    n = len(torch.load(_points(base_run), weights_only=True)["log_px"])
    _set_log_px(run, log_px(n))
    capsys.readouterr()
    assert _exit_code(["compare", str(base_run), str(run)]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert words.format(n=n, m=n - 1) in line and str(_points(run)) in line, line


def test_points_problem_accepts_what_evaluate_writes(base_run):
    log_px = torch.load(_points(base_run), weights_only=True)["log_px"]
    assert points_problem(log_px, len(log_px)) is None
    assert "per-image values are NaN" in points_problem(log_px * float("nan"), len(log_px))


# ---------------------------------------------------------------------- one class
def test_run_with_test_labels_all_of_one_class_finishes(tmp_path, capsys):
    data = tmp_path / "data"
    make_idx_files(data, n_train=160, n_test=30)
    write_idx(data / "t10k-labels-idx1-ubyte.gz", torch.full((30,), 3, dtype=torch.uint8))
    args = ["--dataset", "mnist", "--data-dir", str(data), "--no-download", "--batch-size", "32"]
    args += ["--epochs", "1", "--hidden", "16", "--latent-dim", "3", "--quiet"]
    args += ["--num-samples", "10", "--baseline-components", "1", "--runs-dir", str(tmp_path)]
    assert main(["run", *args, "--name", "one"]) == 0, capsys.readouterr().err
    run = tmp_path / "one"
    interpolation = json.loads((run / "interpolation.json").read_text())
    assert interpolation["classes"] == [3, 3]
    assert (run / "figures" / "interpolation.png").is_file()
    assert (run / "figures" / "latent_space.png").is_file()
    assert "both of class 3" in (run / "report.md").read_text()


# ---------------------------------------------------------------------- users' parts
PARTS = '''
import pyro.distributions as dist
import torch
from pyro_vae.model.parts import Prior


class WrongSize(Prior):
    def forward(self):
        return dist.Normal(torch.zeros(self.latent_dim + 1), 1.0).to_event(1)


class WrongBatch(Prior):
    def forward(self):
        return dist.Normal(torch.zeros(3, self.latent_dim), 1.0).to_event(1)


class NoToEvent(Prior):
    def forward(self):
        return dist.Normal(torch.zeros(self.latent_dim), 1.0)


class NaNLoc(Prior):
    def __init__(self, latent_dim):
        super().__init__(latent_dim)
        self.loc = torch.nn.Parameter(torch.full((latent_dim,), float("nan")))

    def forward(self):
        return dist.Normal(self.loc, 1.0).to_event(1)


class NaNScale(Prior):
    def forward(self):
        return dist.Normal(torch.zeros(self.latent_dim), -torch.ones(self.latent_dim)).to_event(1)


class FailsInEpoch2(Prior):
    """Raises at its first training step after ``steps`` of them (10 make digits' epoch 1)."""

    steps = 10
    calls = 0

    def __init__(self, latent_dim):
        super().__init__(latent_dim)
        self.loc = torch.nn.Parameter(torch.zeros(latent_dim))

    def forward(self):
        if torch.is_grad_enabled() and self.training and not torch.jit.is_tracing():
            type(self).calls += 1
            if type(self).calls > type(self).steps:
                raise RuntimeError("the prior gave up")
        return dist.Normal(self.loc, 1.0).to_event(1)
'''
MODULE = "hostile_contents_parts"


@pytest.fixture
def parts(tmp_path, monkeypatch):
    """The user's module of hostile priors, importable as from their project."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / f"{MODULE}.py").write_text(PARTS)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    yield
    sys.modules.pop(MODULE, None)


@pytest.mark.parametrize(
    "prior, latent, words",
    [
        (
            "WrongSize",
            3,
            r"WrongSize: p\(z\) has batch shape \(\) and event shape \(4,\), not \(\) and \(3,\)",
        ),
        ("WrongBatch", 3, r"WrongBatch: p\(z\) has batch shape \(3,\).*not a batch"),
        ("NoToEvent", 3, r"NoToEvent: .*event shape \(\).*add \.to_event\(1\)"),
        (
            "NoToEvent",
            2,
            r"NoToEvent: .*event shape \(\).*add \.to_event\(1\)",
        ),  # 2 = the check's batch
        ("NaNLoc", 3, r"NaNLoc: its tensor 'loc' holds 3 NaN or infinite values"),
        ("NaNScale", 3, r"NaNScale: the model's log-density at site 'z' is NaN"),
    ],
    ids=["WrongSize", "WrongBatch", "NoToEvent", "NoToEvent-latent-2", "NaNLoc", "NaNScale"],
)
def test_a_prior_that_breaks_the_contract_is_named_before_any_run_exists(
    tmp_path, capsys, parts, prior, latent, words
):
    args = ["train", "--prior", f"{MODULE}:{prior}", "--latent-dim", str(latent)]
    args += ["--epochs", "1", "--hidden", "16", "--quiet", "--runs-dir", str(tmp_path / "runs")]
    assert _exit_code([*args, "--name", "p"]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert re.search(words, line), line
    assert f"the prior {MODULE}:{prior}" in line and "breaks its contract" in line
    assert not (tmp_path / "runs" / "p").exists()


def test_a_prior_raising_in_epoch_2_is_named_and_the_checkpoint_of_epoch_1_kept(
    tmp_path, capsys, parts
):
    runs = tmp_path / "runs"
    args = ["--prior", f"{MODULE}:FailsInEpoch2", "--epochs", "3", "--hidden", "16"]
    assert _exit_code(["train", *args, "--quiet", "--runs-dir", str(runs), "--name", "p"]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert f"the prior {MODULE}:FailsInEpoch2 failed during epoch 2" in line, line
    assert "RuntimeError: the prior gave up" in line and "holds the model after epoch 1" in line
    run = runs / "p"
    assert f"pyro-vae train --resume {run}" in line
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1
    # the part fixed, the run continues from the checkpoint
    sys.modules[MODULE].FailsInEpoch2.steps = 10**9
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 3


# ---------------------------------------------------------------------- a full disk
def test_a_full_disk_under_tensorboard_stops_with_a_message(tmp_path, capsys, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.summary.writer import record_writer

    write = record_writer.RecordWriter.write

    def full_from_epoch_2(self, data: bytes) -> None:
        if Event.FromString(data).step >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(self, data)

    monkeypatch.setattr(record_writer.RecordWriter, "write", full_from_epoch_2)
    args = ["train", *TINY, "--epochs", "3", "--runs-dir", str(tmp_path), "--name", "tb"]
    assert _exit_code([*args, "--tensorboard"]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "No space left on device" in line and "tensorboard/events.out.tfevents." in line
    run = tmp_path / "tb"
    assert torch.load(run / "checkpoint.pt", weights_only=True)["epoch"] == 2  # kept
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2


def test_points_problem_accepts_a_strided_view_and_refuses_an_expanded_one():
    """What torchrun's gather saves can be a strided view (a column of a matrix): every value is
    stored, so it is accepted; a zero-stride view stores one value for all and is refused."""
    column = torch.arange(12.0).reshape(6, 2)[:, 1]
    assert column.stride(0) == 2
    assert points_problem(column, 6) is None
    assert "not a plain vector" in points_problem(torch.zeros(1).expand(6), 6)
