"""``pyro_vae.config``: every setting declared once (default, help, constraint, command-line
spelling), torch-free (tests/integration/test_config_torch_free.py imports it in a fresh
interpreter); the options of ``run``/``train`` and the per-field checks are generated
from the declarations, and the presets name declared settings."""

from __future__ import annotations

import argparse
import ast
import dataclasses
from pathlib import Path

import pytest

from pyro_vae.app.config import RunConfig
from pyro_vae.app.options import OPTIONS, SECTIONS, add_setting, config_from_args
from pyro_vae.config import (
    PRESETS,
    SHORTHANDS,
    DataConfig,
    DistributedConfig,
    Integer,
    ModelConfig,
    OneOf,
    PositiveNumber,
    TrainConfig,
    declared,
    field_problems,
    preset_sections,
    setting,
)
from pyro_vae.config.constraints import nonnegative_int

CONFIG_DIR = Path(__file__).resolve().parents[2] / "pyro_vae" / "config"
ALL_SECTIONS = (DataConfig, ModelConfig, TrainConfig, DistributedConfig)
HEAVY = ("torch", "pyro", "matplotlib", "numpy")


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.py")), ids=lambda p: p.name)
def test_no_config_module_imports_a_heavy_package(path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        assert not any(n.split(".")[0] in HEAVY for n in names), (path.name, names)


def test_every_field_of_every_section_is_declared():
    for section in ALL_SECTIONS:
        names = [d.name for d in declared(section)]
        assert names == [f.name for f in dataclasses.fields(section)], section


def test_an_undeclared_field_is_refused():
    @dataclasses.dataclass
    class Loose:
        size: int = 3

    with pytest.raises(TypeError, match="Loose.size is not declared"):
        list(declared(Loose))


def test_each_option_is_generated_from_its_declaration():
    by_flag = {o.flag: o for o in OPTIONS}
    for name, cls in SECTIONS.items():
        for d in declared(cls):
            if d.flag is None:  # a record (a data file's SHA-256, ...), not an option
                continue
            option = by_flag[d.flag]
            assert (option.section, option.field, option.default) == (name, d.name, d.default)
            assert option.argparse == d.setting.argparse_settings()
    assert [o.flag for o in OPTIONS if o.shorthand] == [s.flag for s in SHORTHANDS]
    assert len(by_flag) == len(OPTIONS)  # one option per setting


def test_the_parser_defaults_are_the_declared_defaults():
    parser = argparse.ArgumentParser()
    from pyro_vae.app.options import add_config_options

    add_config_options(parser)
    cfg = config_from_args(parser.parse_args([]))
    assert cfg == RunConfig()
    again = config_from_args(parser.parse_args([]))
    again.model.hidden.append(7)
    again.model.prior_kwargs["x"] = 1
    assert RunConfig().model.hidden == [400] and config_from_args(parser.parse_args([])) == cfg


class _Odd:
    """A value no constraint accepts (not JSON at all)."""

    def __repr__(self) -> str:
        return "<odd>"


@pytest.mark.parametrize(
    "section,name",
    [(s, d.name) for s in ALL_SECTIONS for d in declared(s)],
    ids=lambda x: getattr(x, "__name__", x),
)
def test_every_field_refuses_a_value_of_no_type_naming_the_setting(section, name):
    cfg = section()
    assert not field_problems(cfg)
    setattr(cfg, name, _Odd())
    (problem,) = field_problems(cfg)
    label = {d.name: d.label for d in declared(section)}[name]
    assert problem.startswith(label) and "<odd>" in problem


@pytest.mark.parametrize(
    "cfg,message",
    [
        (TrainConfig(batch_size=0), "batch-size must be a positive integer, got 0"),
        (TrainConfig(seed=-1), "seed must be an integer >= 0 <= 9223372036854775807, got -1"),
        (TrainConfig(kl_warmup=-2), "kl-warmup must be an integer >= 0, got -2"),
        (TrainConfig(lr=float("nan")), "lr must be a positive number, got nan"),
        (TrainConfig(device="tpu"), "device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
        (
            TrainConfig(elbo="x"),
            "elbo 'x' is not one of: compiled, iwae, iwae-dreg, meanfield, trace",
        ),
        (ModelConfig(hidden=[]), "hidden must be a list of layer widths, got []"),
        (ModelConfig(hidden=[4, -3]), "each hidden width must be a positive integer, got -3"),
        (ModelConfig(prior_kwargs=[1]), "prior-kwargs must be a JSON object, got [1]"),
        (DataConfig(download="yes"), "download must be true or false, got 'yes'"),
        (DataConfig(data_dir=""), "data-dir must be a non-empty string, got ''"),
        (DistributedConfig(backend="mpi"), "distributed backend 'mpi' is not one of: gloo, nccl"),
        (DistributedConfig(process_seeds="x"), "process_seeds must be a list, got 'x'"),
    ],
)
def test_the_generated_checks_keep_their_sentences(cfg, message):
    assert cfg.problems() == [message]


def _cli_reads(option, text: str) -> bool:
    parser = argparse.ArgumentParser(exit_on_error=False)
    parser.add_argument(option.flag, dest=option.dest, **option.argparse)
    try:
        parser.parse_args([option.flag, text])
    except (argparse.ArgumentError, SystemExit):
        return False
    return True


NUMERIC = [
    o
    for o in OPTIONS
    if not o.shorthand
    and isinstance(
        {d.name: d.setting.constraint for d in declared(SECTIONS[o.section])}[o.field],
        Integer | PositiveNumber,
    )
]


@pytest.mark.parametrize("option", NUMERIC, ids=lambda o: o.flag)
def test_the_command_line_and_the_json_checks_agree_at_the_bounds(option):
    cls = SECTIONS[option.section]
    constraint = {d.name: d.setting.constraint for d in declared(cls)}[option.field]
    low = constraint.low if isinstance(constraint, Integer) else 0
    inside, outside = (low, low - 1) if isinstance(constraint, Integer) else (0.5, 0)
    for value, ok in ((inside, True), (outside, False)):
        assert _cli_reads(option, str(value)) is ok, (option.flag, value)
        assert (not field_problems(cls(**{option.field: value}))) is ok, (option.field, value)


def test_choices_on_the_command_line_are_the_declared_ones():
    for option in OPTIONS:
        if option.shorthand:
            continue
        constraint = {d.name: d.setting.constraint for d in declared(SECTIONS[option.section])}
        if isinstance(constraint[option.field], OneOf):
            assert option.argparse["choices"] == list(constraint[option.field].options)


def test_every_preset_sets_declared_options_to_values_they_accept():
    flags = {o.field for o in OPTIONS}
    for name, preset in PRESETS.items():
        assert set(preset) <= flags, name
        sections = preset_sections(name)
        assert sorted(k for v in sections.values() for k in v) == sorted(preset)
        for section, values in sections.items():
            assert not field_problems(SECTIONS[section](**values)), (name, section)


def test_a_config_json_written_by_the_previous_version_loads_and_writes_back_the_same():
    written = {  # pyro-vae 0.1.0's RunConfig.to_dict(), field order and all
        "format": 2,
        "data": {"dataset": "digits", "data_dir": None, "pixels": None, "download": True},
        "model": {
            "latent_dim": 20,
            "hidden": [400],
            "activation": "relu",
            "prior": "vamp",
            "prior_kwargs": {"pseudo_inputs": 50},
            "guide": "diagonal",
            "guide_kwargs": {},
            "likelihood": "bernoulli",
            "likelihood_kwargs": {},
            "decoder": "mlp",
            "decoder_kwargs": {},
        },
        "train": {
            "epochs": 3,
            "batch_size": 128,
            "lr": 0.003,
            "lr_schedule": "constant",
            "seed": 0,
            "device": "auto",
            "elbo": "trace",
            "particles": 1,
            "jit": False,
            "eval_particles": 10,
            "beta": 1.0,
            "kl_warmup": 0,
        },
        "distributed": {"processes": 2, "backend": "gloo", "process_seeds": [1, 2]},
    }
    cfg = RunConfig.from_dict(written)
    assert not cfg.problems()
    assert cfg.model.prior_kwargs == {"pseudo_inputs": 50} and cfg.distributed.processes == 2
    assert cfg.to_dict() == written


def test_adding_a_setting_is_one_declaration():
    """What a new setting costs: one field; its option and its check follow."""

    @dataclasses.dataclass
    class Extra:
        GROUP = "training"
        warmup_steps: int = setting(0, Integer(0), "steps of learning-rate warm-up", metavar="S")

    (d,) = declared(Extra)
    assert d.flag == "--warmup-steps" and d.default == 0
    assert d.setting.argparse_settings() == {
        "type": nonnegative_int,
        "metavar": "S",
        "help": "steps of learning-rate warm-up (default: %(default)s)",
    }
    assert field_problems(Extra(warmup_steps=-1)) == [
        "warmup-steps must be an integer >= 0, got -1"
    ]


def test_a_script_takes_a_setting_with_its_own_default():
    parser = argparse.ArgumentParser()
    add_setting(parser, "train", "epochs", default=10)
    add_setting(parser, "data", "dataset", default="fashion-mnist")
    add_setting(parser, "train", "seed")
    help_text = parser.format_help()
    assert "passes over the training set (default: 10)" in help_text
    assert "(default: fashion-mnist)" in help_text and "embedded" not in help_text
    args = parser.parse_args([])
    assert (args.epochs, args.dataset, args.seed) == (10, "fashion-mnist", 0)
    with pytest.raises(SystemExit):
        parser.parse_args(["--epochs", "0"])  # the declared constraint


def test_a_flag_spelled_otherwise_than_its_field_sets_that_field():
    from pyro_vae.app.options import parse_with_preset
    from pyro_vae.cli import build_parser

    args, _ = parse_with_preset(build_parser(), ["train", "--no-download", "--no-jit"])
    cfg = config_from_args(args)
    assert cfg.data.download is False and cfg.train.jit is False
    assert RunConfig().data.download is True and RunConfig().train.jit is None
