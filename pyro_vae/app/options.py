"""The options of ``pyro-vae run`` and ``pyro-vae train``, generated from the settings'
declarations (:mod:`pyro_vae.config`): nothing here lists a setting.

Each :class:`Option` says which configuration field it sets; the parser, the configuration built
from parsed arguments and the ``--resume`` check all read the same list. Nothing here imports
torch, Pyro or matplotlib: ``pyro-vae --help`` and usage errors answer at once. Experiment scripts
reuse the options through :func:`training_parser` as an argparse parent parser.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from ..config import PRESETS, SHORTHANDS, DataConfig, ModelConfig, TrainConfig, declared
from ..config.constraints import (  # noqa: F401  (re-exported: the readers of option values)
    MAX_INT,
    device_name,
    json_object,
    nonnegative_int,
    path_text,
    positive_float,
    positive_int,
    seed_int,
)
from ..config.declare import DEFAULT_WORDS
from ..errors import ConfigError
from .config import RunConfig


@dataclass(frozen=True)
class Option:
    """One command-line option and the configuration field it sets, generated from the field's
    declaration (:mod:`pyro_vae.config`).

    ``section`` is ``data``, ``model`` or ``train`` (the field of that section), or
    ``prior``/``guide``/``likelihood`` for a shorthand of one keyword argument of that part
    (``--components 5`` is ``--prior-kwargs '{"components": 5}'``)."""

    flag: str
    section: str
    field: str
    group: str
    argparse: dict[str, Any] = field(default_factory=dict)
    default: Any = None

    @property
    def dest(self) -> str:
        return self.field

    @property
    def shorthand(self) -> bool:
        return self.section in ("prior", "guide", "likelihood")


SECTIONS: dict[str, type] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
"""The sections whose fields are options of ``run`` and ``train``, by name."""


def _generate() -> list[Option]:
    """An option for every declared field of :data:`SECTIONS` that has a flag, and one for each
    shorthand (after the model's fields), in declaration order."""
    options = []
    for section, cls in SECTIONS.items():
        for d in declared(cls):
            if d.flag is not None:
                settings = d.setting.argparse_settings()
                options.append(Option(d.flag, section, d.name, cls.GROUP, settings, d.default))
        if cls is ModelConfig:
            options += [
                Option(s.flag, s.kind, s.name, cls.GROUP, s.argparse_settings()) for s in SHORTHANDS
            ]
    return options


OPTIONS: list[Option] = _generate()
"""Every option of ``run`` and ``train`` that sets the configuration."""


_DECLARED = object()


def add_setting(
    parser: argparse.ArgumentParser | Any,
    section: str,
    name: str,
    default: Any = _DECLARED,
    default_words: str | None = None,
) -> None:
    """Add the option of one declared field (``section`` ``data``, ``model`` or ``train``) to
    ``parser`` (or an argument group), as ``run`` has it; with ``default`` in place of the
    declared one, ``--help`` shows that value unless ``default_words`` words it. This is how an
    experiment script takes a setting with its own default."""
    found = {d.name: d for d in declared(SECTIONS[section])}[name]
    words = found.setting.default_words
    if default is _DECLARED:
        default = found.default
    elif default_words is not None:
        words = default_words
    elif default != found.default:
        words = DEFAULT_WORDS
    settings = found.setting.argparse_settings(default_words=words)
    parser.add_argument(found.flag, dest=name, default=_copy(default), **settings)


def _copy(default: Any) -> Any:
    """A fresh list or dict default for each parser (argparse would share one)."""
    return type(default)(default) if isinstance(default, list | dict) else default


def add_config_options(parser: argparse.ArgumentParser) -> None:
    """Add the table's options to ``parser``, in groups, with the configuration's defaults,
    and ``--preset``."""
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default=None,
        help="a tested set of options, which the options given on the command line "
        "override; quality: " + ", ".join(_preset_words(PRESETS["quality"])),
    )
    groups: dict[str, Any] = {}
    for option in OPTIONS:
        group = groups.get(option.group) or parser.add_argument_group(option.group)
        groups[option.group] = group
        group.add_argument(
            option.flag, dest=option.dest, default=_copy(option.default), **option.argparse
        )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    out = parser.add_argument_group("output")
    out.add_argument("--runs-dir", type=path_text, default="runs", help="parent of run directories")
    out.add_argument("--name", default=None, help="run directory name (default: a timestamp)")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    out.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log each epoch's metrics for TensorBoard into RUN_DIR/tensorboard/ (needs "
        "the tensorboard package: pip install tensorboard; remembered on --resume)",
    )
    out.add_argument(
        "--resume",
        type=path_text,
        default=None,
        metavar="RUN_DIR",
        help="continue the run in RUN_DIR from its last completed epoch (its config.json "
        "decides everything; --epochs may raise the target)",
    )


def training_parser(add_help: bool = False) -> argparse.ArgumentParser:
    """A parser with every configuration and output option, for use as a parent parser (as
    torchvision's reference scripts share theirs); parse with :func:`parse_with_preset` so
    that ``--preset`` takes effect."""
    parser = argparse.ArgumentParser(add_help=add_help)
    add_config_options(parser)
    add_output_options(parser)
    return parser


def given_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Option]:
    """The table's options whose value differs from the parser's default."""
    return [o for o in OPTIONS if getattr(args, o.dest) != parser.get_default(o.dest)]


def _preset_words(preset: dict[str, Any]) -> list[str]:
    """``--flag value`` for each option of a preset (for its help)."""
    flags = {o.dest: o.flag for o in OPTIONS}
    return [
        f"{flags[dest]} {value:g}" if isinstance(value, float) else f"{flags[dest]} {value}"
        for dest, value in preset.items()
    ]


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The parsed options as a :class:`RunConfig` (shorthands merged into their part's
    keyword arguments; an explicit ``--KIND-kwargs`` entry wins over a shorthand)."""
    values: dict[str, dict[str, Any]] = {"data": {}, "model": {}, "train": {}}
    shorthands: dict[str, dict[str, Any]] = {}
    for option in OPTIONS:
        value = getattr(args, option.dest)
        if option.shorthand:
            if value is not None:
                shorthands.setdefault(option.section, {})[option.field] = value
        else:
            values[option.section][option.field] = value
    model = values["model"]
    model["hidden"] = list(model["hidden"])
    for kind, extra in shorthands.items():
        model[f"{kind}_kwargs"] = {**extra, **model[f"{kind}_kwargs"]}
    return RunConfig(**{name: SECTIONS[name](**given) for name, given in values.items()})


def parse_with_preset(
    parser: argparse.ArgumentParser, argv: list[str] | None
) -> tuple[argparse.Namespace, list[str]]:
    """Parse ``argv``; when it names ``--preset``, parse it again with the preset's values as
    the command's defaults, so that every option given on the command line (even with its
    default value) wins over the preset."""
    args, unknown = parser.parse_known_args(argv)
    preset = getattr(args, "preset", None)
    if preset:
        getattr(args, "subparser", parser).set_defaults(**PRESETS[preset])
        args, unknown = parser.parse_known_args(argv)
    return args, unknown


def refuse_options_with_resume(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """With ``--resume`` the run's config.json decides; only ``--epochs`` may be given."""
    given = [o.flag for o in given_options(args, parser) if o.field != "epochs"]
    if getattr(args, "preset", None):
        given.append("--preset")
    if given:
        raise ConfigError(
            f"--resume takes the configuration from {args.resume}/config.json; drop "
            f"{', '.join(given)} (only --epochs may raise the target)"
        )
