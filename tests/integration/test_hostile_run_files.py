"""A run directory from someone else discloses nothing outside it, writes nothing outside it,
and injects nothing into what the user reads (issue 24: "a run directory discloses or writes
files outside it", "injection into what the user reads").

Each test is one attempt of that campaign: a link planted in the run (to a file, or a
directory, outside it), a file that is not a regular one or is huge, a config.json that names
a directory to download into, a run name or configuration string carrying Markdown, HTML or
terminal control sequences."""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
import time
from pathlib import Path

import markdown
import pytest
from helpers import make_idx_files, tiny, train_tiny

from pyro_vae.app import run_files
from pyro_vae.app.config import RunConfig
from pyro_vae.app.escape import (
    html_text,
    markdown_code,
    markdown_text,
    terminal_text,
)
from pyro_vae.app.run_data import load_run_data
from pyro_vae.cli import main
from pyro_vae.data import datasets as ds_module
from pyro_vae.data.datasets import default_data_dir

TINY = tiny(latent_dim=2)
SECRET = "SECRET-4f1c9e-do-not-share"
PNG = b"\x89PNG\r\n\x1a\n" + SECRET.encode() * 4


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("base")
    train_tiny(root, "base", TINY)
    assert main(["evaluate", str(root / "base"), "--num-samples", "3", "--quiet"]) == 0
    return root / "base"


@pytest.fixture
def run(base_run, tmp_path) -> Path:
    """A fresh copy of a trained and evaluated run (no figures), in ``tmp_path/runs``."""
    copy = tmp_path / "runs" / "r"
    shutil.copytree(base_run, copy)
    return copy


@pytest.fixture
def outside(tmp_path) -> Path:
    """A directory of the user's, outside every run: a secret picture and a secret JSON."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "photo.png").write_bytes(PNG)
    (home / "notes.json").write_text(json.dumps({"password": SECRET, "note": SECRET}))
    return home


def _code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def _intact_copy(run: Path) -> Path:
    """Another run, evaluated alike (compare is given two different runs)."""
    copy = run.parent.parent / "intact"
    shutil.copytree(run, copy, symlinks=True)
    return copy


def _refused(capsys, *names: str) -> str:
    """The one-line message of a refusal; it names the file and says why."""
    out, err = capsys.readouterr()
    assert "Traceback" not in err and err.count("\n") == 1, err
    for name in names:
        assert name in err, (name, err)
    assert SECRET not in out + err
    return err


def _no_secret_anywhere(run: Path) -> None:
    """Nothing of the user's secret file reached any file of the run (the report included)."""
    encoded = base64.b64encode(PNG).decode("ascii")
    for path in run.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert SECRET.encode() not in data and encoded.encode() not in data, path


def _baseline_and_interpolation(run: Path) -> None:
    """Result files that make the report show gmm_vs_vae.png and interpolation.png."""
    row = {
        "model": "BernoulliMixture(K=1)",
        "n_components": 1,
        "log_px": -40.0,
        "log_px_se": 0.5,
        "val_log_px": -41.0,
        "bits_per_dim": 0.9,
        "num_parameters": 64,
    }
    baseline = {
        "dataset": "digits",
        "vae": {
            "log_px": -30.0,
            "log_px_se": 0.4,
            "bits_per_dim": 0.7,
            "num_parameters": 1000,
            "generative_parameters": 500,
            "num_samples": 3,
        },
        "mixtures": [row],
        "best_mixture": row["model"],
        "vae_minus_best_mixture": {"mean": 10.0, "se": 0.3},
    }
    (run / "baseline.json").write_text(json.dumps(baseline))
    judge = {"vae_minus_autoencoder": 0.5, "vae_minus_autoencoder_se": 0.1}
    interp = {"frames": "decoded", "judges": {"VAE": judge}, "pairs": 2, "classes": [0, 1]}
    (run / "interpolation.json").write_text(json.dumps(interp))


# ----------------------------------------------------------------- A: no read through a link


@pytest.mark.parametrize("figure", ["samples.png", "gmm_vs_vae.png", "interpolation.png"])
def test_a_figure_linked_to_a_file_outside_is_refused_not_embedded(run, outside, capsys, figure):
    _baseline_and_interpolation(run)
    (run / "figures").mkdir()
    (run / "figures" / figure).symlink_to(outside / "photo.png")
    assert _code(["report", str(run), "--no-figures"]) == 1
    _refused(capsys, f"figures/{figure}", "symbolic link")
    assert not (run / "report.html").exists()
    _no_secret_anywhere(run)


def test_a_figures_directory_linked_outside_is_refused_not_embedded(run, outside, capsys):
    _baseline_and_interpolation(run)
    for figure in ("samples.png", "gmm_vs_vae.png", "interpolation.png"):
        shutil.copy(outside / "photo.png", outside / figure)
    (run / "figures").symlink_to(outside, target_is_directory=True)
    assert _code(["report", str(run), "--no-figures"]) == 1
    _refused(capsys, "figures", "symbolic link")
    _no_secret_anywhere(run)


@pytest.mark.parametrize("name", ["config.json", "baseline.json", "interpolation.json"])
def test_a_json_file_linked_outside_is_refused_its_strings_never_shown(run, outside, capsys, name):
    _baseline_and_interpolation(run)
    if name == "config.json":  # a valid configuration, carrying the secret
        cfg = json.loads((run / "config.json").read_text())
        cfg["data"]["data_dir"] = SECRET
        (outside / "notes.json").write_text(json.dumps(cfg))
    (run / name).unlink()
    (run / name).symlink_to(outside / "notes.json")
    assert _code(["report", str(run), "--no-figures"]) == 1
    _refused(capsys, name, "symbolic link")
    _no_secret_anywhere(run)


@pytest.mark.parametrize("command", ["list", "evaluate", "figures", "compare"])
def test_a_linked_config_json_is_refused_by_every_command(run, outside, capsys, command):
    intact = _intact_copy(run)
    cfg = json.loads((run / "config.json").read_text())
    cfg["data"]["data_dir"] = SECRET
    (outside / "config.json").write_text(json.dumps(cfg))
    (run / "config.json").unlink()
    (run / "config.json").symlink_to(outside / "config.json")
    argv = {
        "list": ["list", str(run.parent)],
        "evaluate": ["evaluate", str(run), "--num-samples", "2", "--quiet"],
        "figures": ["figures", str(run), "--quiet"],
        "compare": ["compare", str(run), str(intact)],
    }[command]
    if command == "list":  # the run is listed as unreadable, with the reason
        assert _code(argv) == 0
        out = capsys.readouterr().out
        assert "unreadable" in out and "config.json: refused: a symbolic link" in out
        assert SECRET not in out
    else:
        assert _code(argv) == 1
        _refused(capsys, "config.json", "symbolic link")


@pytest.mark.parametrize(
    "name", ["checkpoint.pt", "evaluation.json", "evaluation_is-K3_points.pt", "metrics.jsonl"]
)
def test_every_other_file_of_a_run_linked_outside_is_refused(run, tmp_path, capsys, name):
    """A link to a file of the same kind (another run's): refused all the same."""
    intact = _intact_copy(run)
    other = tmp_path / "other-run-file"
    shutil.copy(run / name, other)
    (run / name).unlink()
    (run / name).symlink_to(other)
    if name.endswith("_points.pt"):
        command = ["compare", str(intact), str(run)]
    else:
        command = ["report", str(run), "--no-figures"]
    assert _code(command) == 1
    _refused(capsys, name, "symbolic link")


def test_a_linked_autoencoder_is_refused_when_drawing_figures(run, tmp_path, capsys):
    from pyro_vae.app.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "ae.pt", {"model": {}, "binary": True})
    (run / "autoencoder.pt").symlink_to(tmp_path / "ae.pt")
    assert _code(["figures", str(run), "--quiet"]) == 1
    _refused(capsys, "autoencoder.pt", "symbolic link")


def test_a_link_at_the_evaluation_file_is_replaced_by_evaluate_never_read(run, outside, capsys):
    (run / "evaluation.json").unlink()
    (run / "evaluation.json").symlink_to(outside / "notes.json")
    assert _code(["evaluate", str(run), "--num-samples", "2", "--quiet"]) == 0
    assert not (run / "evaluation.json").is_symlink()
    assert SECRET not in (run / "evaluation.json").read_text()
    assert json.loads((outside / "notes.json").read_text())["password"] == SECRET


def test_a_huge_sparse_config_json_is_refused_at_once(run, capsys):
    with open(run / "config.json", "r+b") as f:
        f.truncate(3 << 30)  # 3 GB, sparse: nothing to read but zeros
    for argv in (["report", str(run), "--no-figures"], ["evaluate", str(run), "--quiet"]):
        start = time.perf_counter()
        assert _code(argv) == 1
        assert time.perf_counter() - start < 20  # reading it would take far longer
        err = _refused(capsys, "config.json", "refused: 3.2 GB, more than a configuration")
        assert "MemoryError" not in err
    assert _code(["list", str(run.parent)]) == 0
    assert "config.json: refused: 3.2 GB" in capsys.readouterr().out


def test_a_huge_sparse_metrics_file_is_refused(run, capsys):
    with open(run / "metrics.jsonl", "r+b") as f:
        f.truncate(1 << 30)
    assert _code(["report", str(run), "--no-figures"]) == 1
    _refused(capsys, "metrics.jsonl", "more than a metrics file")


@pytest.mark.parametrize("name", ["config.json", "metrics.jsonl", "evaluation.json"])
def test_a_fifo_in_a_run_is_refused_without_blocking(run, capsys, name):
    (run / name).unlink()
    os.mkfifo(run / name)
    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(_code(["report", str(run), "--no-figures"])), daemon=True
    )
    worker.start()
    worker.join(timeout=120)
    assert result == [1], "blocked on the FIFO, or not refused"
    _refused(capsys, name, "not a regular file")


def test_the_reader_refuses_links_at_any_depth_and_reads_regular_files(tmp_path):
    root = tmp_path / "run"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.json").write_text("{}")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "f.json").write_text('{"secret": 1}')
    (root / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    kind = run_files.RESULTS
    assert run_files.read_text(root / "a" / "b" / "f.json", kind, root=root) == "{}"
    assert run_files.is_run_file(root / "a" / "b" / "f.json", root=root)
    assert not run_files.is_run_file(root / "a" / "missing.json", root=root)
    with pytest.raises(run_files.RunFileRefused, match="link: refused: a symbolic link"):
        run_files.read_text(root / "link" / "f.json", kind, root=root)
    with pytest.raises(run_files.RunFileRefused, match="symbolic link"):
        run_files.is_run_file(root / "link" / "f.json", root=root)
    with pytest.raises(run_files.RunFileRefused, match="not a regular file"):
        run_files.read_bytes(root / "a", kind, root=root)
    with pytest.raises(FileNotFoundError):
        run_files.read_bytes(root / "a" / "missing.json", kind, root=root)
    # the run directory itself may be a link: the user named it
    (tmp_path / "latest").symlink_to(root, target_is_directory=True)
    latest = tmp_path / "latest"
    assert run_files.read_text(latest / "a" / "b" / "f.json", kind, root=latest) == "{}"
    # never more than the kind allows, even should the size change after the check
    small = run_files.FileKind("test file", 2)
    with pytest.raises(run_files.RunFileRefused, match="more than a test file may hold"):
        run_files.read_bytes(root / "a" / "b" / "f.json", run_files.FileKind("test file", 1))
    assert run_files.read_bytes(root / "a" / "b" / "f.json", small) == b"{}"


# ------------------------------------------- B: a run's config never chooses where to write


def _foreign_mnist_config(run: Path, data_dir: Path, download: bool = True) -> None:
    cfg = json.loads((run / "config.json").read_text())
    cfg["data"].update(dataset="mnist", data_dir=str(data_dir), download=download)
    (run / "config.json").write_text(json.dumps(cfg))


@pytest.fixture
def downloads(monkeypatch) -> list[Path]:
    """Where downloads were tried (none can succeed: no network in tests)."""
    tried: list[Path] = []

    def record(source, root):
        tried.append(Path(root))
        raise OSError("no network in tests")

    monkeypatch.setattr(ds_module, "_download", record)
    return tried


@pytest.mark.parametrize("command", ["evaluate", "figures", "report", "resume"])
def test_a_foreign_data_dir_is_never_written_or_downloaded_into(
    run, tmp_path, capsys, downloads, command
):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep")
    _foreign_mnist_config(run, victim)
    argv = {
        "evaluate": ["evaluate", str(run), "--num-samples", "2", "--quiet"],
        "figures": ["figures", str(run), "--quiet"],
        "report": ["report", str(run), "--quiet"],
        "resume": ["train", "--resume", str(run), "--quiet"],
    }[command]
    assert _code(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "not available offline" in err
    assert sorted(p.name for p in victim.iterdir()) == ["keep.txt"]  # no MNIST/raw created
    assert downloads == [default_data_dir()]  # the user's cache, not the config's directory


def test_the_users_data_dir_and_no_download_decide(run, tmp_path, capsys, downloads):
    victim = tmp_path / "victim"
    victim.mkdir()
    _foreign_mnist_config(run, victim)
    mine = tmp_path / "mine"
    mine.mkdir()
    argv = ["evaluate", str(run), "--num-samples", "2", "--quiet"]
    assert _code([*argv, "--data-dir", str(mine)]) == 1
    assert downloads == [mine]
    assert _code([*argv, "--no-download"]) == 1
    assert downloads == [mine]  # not tried again
    assert "--no-download forbids downloading" in capsys.readouterr().err
    assert list(victim.iterdir()) == []


def test_a_runs_data_dir_is_only_read_from(tmp_path, downloads):
    """The files of an existing directory that a run's config names are read (a run of one's
    own, trained with --data-dir, still evaluates); nothing is created there."""
    files = tmp_path / "mnist-files"
    make_idx_files(files, n_train=12, n_test=6)
    before = sorted(p.name for p in files.iterdir())
    cfg = RunConfig.from_dict({"data": {"dataset": "mnist", "data_dir": str(files)}})
    dataset = load_run_data(cfg)
    assert dataset.source == str(files) and len(dataset.test) == 6
    assert sorted(p.name for p in files.iterdir()) == before and downloads == []
    # a directory the config names that is not there (a run from another machine) is skipped
    cfg.data.data_dir = str(tmp_path / "not-here")
    with pytest.raises(Exception, match="not available offline"):
        load_run_data(cfg, download=False)
    assert not (tmp_path / "not-here").exists()


# -------------------------------------------------- C: escaped for the medium it is shown in

INJECTIONS = [
    "[click](javascript:alert(1))",
    "![x](https://evil.example/p.png)",
    "r\n# heading",
    "<img src=x onerror=alert(1)>",
    "a | b `code` *em* _em_ \\[x]",
]


def _rendered(md: str) -> str:
    return markdown.markdown(md, extensions=["tables"])


@pytest.mark.parametrize("text", INJECTIONS)
def test_a_run_name_is_shown_as_written_in_both_reports(run, text, capsys):
    hostile = run.parent / text.replace("/", "%2F")  # a name holds no "/"
    run.rename(hostile)  # a downloaded run: its name is anyone's
    assert _code(["report", str(hostile), "--no-figures"]) == 0
    md = (hostile / "report.md").read_text()
    page = (hostile / "report.html").read_text()
    for rendered in (_rendered(md), page):
        assert "<a " not in rendered and "<img" not in rendered and "<em>" not in rendered
        assert rendered.count("<h1>") == 1 and '="https://evil.example' not in rendered
        assert "<h1>heading" not in rendered and "onerror=alert(1)>" not in rendered
    first = md.splitlines()[0]
    assert first.startswith("# pyro-vae run: ") and "# heading" not in md.splitlines()[1:]
    if "\n" in text:
        assert "r\\\\n# heading" in first  # the line break shown as \n (escaped for Markdown)


@pytest.mark.parametrize("text", INJECTIONS)
def test_a_config_string_is_shown_as_written_in_both_reports(run, text):
    cfg = json.loads((run / "config.json").read_text())
    cfg["data"]["data_dir"] = text  # not used by digits; shown in the configuration table
    (run / "config.json").write_text(json.dumps(cfg))
    assert _code(["report", str(run), "--no-figures"]) == 0
    md = (run / "report.md").read_text()
    for rendered in (_rendered(md), (run / "report.html").read_text()):
        assert "<a " not in rendered and "<img" not in rendered and "<em>" not in rendered
        assert "onerror=alert(1)>" not in rendered
        row = next(r for r in rendered.split("<tr>") if "data_dir" in r)
        assert row.count("<td") == 3  # a "|" did not split the cell


def test_list_and_compare_show_control_characters_visibly(run, capsys):
    hostile = run.parent / "\x1b[2J\x1b]0;pwned\x07\u202eevil\ndone"
    run.rename(hostile)
    other = run.parent / "plain"
    shutil.copytree(hostile, other)
    bad = run.parent / "\x1b[31mbroken"
    bad.mkdir()
    (bad / "config.json").write_text('{"data": {"dataset": "\\u001b[31m"}}')
    shutil.copytree(os.fsencode(other), os.fsencode(run.parent) + b"/\xff-latin1")
    assert _code(["list", str(run.parent)]) == 0
    assert _code(["compare", str(hostile), str(other)]) == 0
    out, err = capsys.readouterr()
    for raw in ("\x1b", "\x07", "\u202e", "\udcff"):
        assert raw not in out + err
    assert "\\x1b[2J\\x1b]0;pwned\\x07\\u202eevil\\ndone" in out
    assert "\\udcff-latin1" in out and "\\x1b[31mbroken" in out
    assert len(out.splitlines()) == 5 + 4  # list: header, four runs; compare: two, two runs
    # a configuration string quoted in an error message reaches the terminal escaped too
    assert _code(["evaluate", str(bad), "--quiet"]) in (1, 2)
    err = capsys.readouterr().err
    assert "\x1b" not in err and "Traceback" not in err


def test_each_medium_has_one_escaper():
    assert terminal_text("a\x1bb\nc\u202e\udcff") == "a\\x1bb\\nc\\u202e\\udcff"
    assert terminal_text("two\nlines\x1b", keep_newlines=True) == "two\nlines\\x1b"
    assert terminal_text("café ok") == "café ok"
    assert markdown_text("[a](b) ![c](d) <e> & *f* `g` \\") == (
        "\\[a\\](b) !\\[c\\](d) &lt;e&gt; &amp; \\*f\\* \\`g\\` \\\\"
    )
    assert markdown_text("# h") == "\\# h" and markdown_text("1. x") == "1\\. x"
    assert markdown_text("a|b", table=True) == "a\\|b"
    assert markdown_code("a`b") == "``a`b``" and markdown_code("`x") == "`` `x ``"
    assert markdown_code("a|b", table=True) == "`a\\|b`"
    assert html_text("<a href='x'>\x1b") == "&lt;a href=&#x27;x&#x27;&gt;\\x1b"
    for text in INJECTIONS:  # rendered, nothing but a paragraph of text
        html = _rendered("Run " + markdown_text(text))
        assert html.startswith("<p>") and html.count("<p>") == 1
        assert "<a " not in html and "<img" not in html and "<h1>" not in html
        code = _rendered("| a |\n|---|\n| " + markdown_code(text, table=True) + " |")
        assert code.count("<td>") == 1 and "<a " not in code


@pytest.mark.parametrize("planted", ["fifo", "link", "huge"])
def test_a_stale_marker_that_is_not_a_small_regular_file_is_refused_deleting_nothing(
    run, outside, capsys, planted
):
    marker = run / ".derived-stale.json"
    if planted == "fifo":
        os.mkfifo(marker)
    elif planted == "link":
        marker.symlink_to(outside / "notes.json")
    else:
        with open(marker, "wb") as f:
            f.truncate(1 << 32)
    before = sorted(p.name for p in run.iterdir())
    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(_code(["evaluate", str(run), "--num-samples", "2"])),
        daemon=True,
    )
    worker.start()
    worker.join(timeout=120)
    assert result == [1], "blocked on the marker, or not refused"
    _refused(capsys, ".derived-stale.json", "nothing was removed")
    assert sorted(p.name for p in run.iterdir()) == before  # evaluations kept


def test_a_run_path_with_control_characters_is_printed_escaped(run, capsys):
    """evaluate's "written:" line shows a run path's control characters visibly (fresh campaign)."""
    hostile = run.parent / "ok\rEVIL\x1b]0;t\x07\u202e"
    run.rename(hostile)
    assert _code(["evaluate", str(hostile), "--num-samples", "2", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "written:" in out and "\\x1b" in out
    for raw in ("\r", "\x1b", "\x07", "\u202e"):
        assert raw not in out + err
