"""The options of ``pyro-vae run`` and ``pyro-vae train``, from one table.

Each :class:`Option` says which configuration field it sets; the parser, the configuration built
from parsed arguments and the ``--resume`` check all read the same table. Nothing here imports
torch, Pyro or matplotlib: ``pyro-vae --help`` and usage errors answer at once. Experiment scripts
reuse the options through :func:`training_parser` as an argparse parent parser.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field, fields
from typing import Any

from ..data.names import DATASET_NAMES, PIXEL_SCHEMES
from ..errors import ConfigError
from ..infer.settings import DEFAULT_EPOCHS, ELBO_NAMES, LR_SCHEDULES, MAX_SEED, parse_device
from ..model.names import ACTIVATION_NAMES
from .config import DataConfig, ModelConfig, RunConfig, TrainConfig
from .names import part_names

MAX_INT = MAX_SEED
"""The largest count an option takes: a tensor's size is a 64-bit integer."""


def _ascii_int(text: str, expected: str) -> int:
    """An integer written in ASCII digits (an optional sign, nothing else: no ``1_000``, no
    other scripts' digits), at most :data:`MAX_INT` in size."""
    digits = text[1:] if text[:1] in ("+", "-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise argparse.ArgumentTypeError(f"expected {expected} in ASCII digits, got {text!r}")
    if len(digits) > 19 or abs(int(text)) > MAX_INT:  # no size or seed is that large
        raise argparse.ArgumentTypeError(f"expected {expected} below 2^63, got {text}")
    return int(text)


def positive_int(text: str) -> int:
    value = _ascii_int(text, "a positive integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    value = _ascii_int(text, "an integer >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def seed_int(text: str) -> int:
    """``--seed``: an integer from 0 to 2^63 - 1 (what ``torch.manual_seed`` takes)."""
    return nonnegative_int(text)  # at most MAX_INT, which is MAX_SEED


def positive_float(text: str) -> float:
    try:
        if not text.isascii():
            raise ValueError
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text}")
    return value


def device_name(text: str) -> str:
    """``--device``: auto, cpu, cuda or cuda:N, N in ASCII digits (whether device N exists is
    checked when the command runs)."""
    try:
        parse_device(text)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--device ")) from None
    return text


def path_text(text: str) -> str:
    """A path option: not empty, no NUL character, and a leading ``~user`` that names a user
    (expanded where the path is used; checked here so that the message comes at once)."""
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"expected a path, got {text!r}")
    if text.startswith("~"):
        try:
            expanded = os.path.expanduser(text)
        except (RuntimeError, KeyError):  # no home directory to be found
            expanded = text
        if expanded.startswith("~"):
            user = text[1:].split("/", 1)[0] or "the current user"
            raise argparse.ArgumentTypeError(
                f"{text!r}: no home directory for {user} (no such user?)"
            )
    return text


def json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object {{...}}, got {text!r}")
    return value


@dataclass(frozen=True)
class Option:
    """One command-line option and the configuration field it sets.

    ``section`` is ``data``, ``model`` or ``train`` (the field of that section), or
    ``prior``/``guide``/``likelihood`` for a shorthand of one keyword argument of that part
    (``--components 5`` is ``--prior-kwargs '{"components": 5}'``)."""

    flag: str
    section: str
    field: str
    group: str
    argparse: dict[str, Any] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.flag[2:].replace("-", "_")

    @property
    def shorthand(self) -> bool:
        return self.section in ("prior", "guide", "likelihood")


_DEFAULTS = {"data": DataConfig(), "model": ModelConfig(), "train": TrainConfig()}


def _part_help(kind: str, words: str) -> str:
    names = ", ".join(part_names(kind))
    return f"{words}: {names}, or an import path module:Class (default: %(default)s)"


def _table() -> list[Option]:
    epochs = ", ".join(f"{k} {v}" for k, v in DEFAULT_EPOCHS.items())
    return [
        Option(
            "--dataset",
            "data",
            "dataset",
            "data",
            dict(
                choices=sorted(DATASET_NAMES),
                help="named data set (default: %(default)s, embedded, no network)",
            ),
        ),
        Option(
            "--data-dir",
            "data",
            "data_dir",
            "data",
            dict(
                type=path_text,
                metavar="DIR",
                help="directory holding MNIST/Fashion-MNIST IDX files (.gz or not)",
            ),
        ),
        Option(
            "--no-download",
            "data",
            "download",
            "data",
            dict(action="store_false", help="never try to download a missing data set"),
        ),
        Option(
            "--pixels",
            "data",
            "pixels",
            "data",
            dict(
                choices=PIXEL_SCHEMES,
                help="dynamic: re-binarize every epoch; static: one fixed "
                "binarization; grey: grey levels in [0,1]; dequantized: (level+u)/levels "
                "(default: dynamic for a binary likelihood, else dequantized)",
            ),
        ),
        Option(
            "--latent-dim",
            "model",
            "latent_dim",
            "model",
            dict(type=positive_int, metavar="K", help="dimension of z (default: %(default)s)"),
        ),
        Option(
            "--hidden",
            "model",
            "hidden",
            "model",
            dict(
                type=positive_int,
                nargs="+",
                metavar="H",
                help="hidden layer widths of the "
                "encoder; the decoder mirrors them (default: %(default)s)",
            ),
        ),
        Option(
            "--activation",
            "model",
            "activation",
            "model",
            dict(choices=sorted(ACTIVATION_NAMES), help="(default: %(default)s)"),
        ),
        Option(
            "--prior",
            "model",
            "prior",
            "model",
            dict(metavar="NAME", help=_part_help("prior", "p(z)")),
        ),
        Option(
            "--prior-kwargs",
            "model",
            "prior_kwargs",
            "model",
            dict(
                type=json_object,
                metavar="JSON",
                help="keyword arguments of the prior, a JSON object",
            ),
        ),
        Option(
            "--guide",
            "model",
            "guide",
            "model",
            dict(metavar="NAME", help=_part_help("guide", "q(z|x)")),
        ),
        Option(
            "--guide-kwargs",
            "model",
            "guide_kwargs",
            "model",
            dict(type=json_object, metavar="JSON", help="keyword arguments of the guide"),
        ),
        Option(
            "--likelihood",
            "model",
            "likelihood",
            "model",
            dict(metavar="NAME", help=_part_help("likelihood", "p(x|z)")),
        ),
        Option(
            "--likelihood-kwargs",
            "model",
            "likelihood_kwargs",
            "model",
            dict(type=json_object, metavar="JSON", help="keyword arguments of the likelihood"),
        ),
        Option(
            "--decoder",
            "model",
            "decoder",
            "model",
            dict(metavar="NAME", help=_part_help("decoder", "f(z)")),
        ),
        Option(
            "--decoder-kwargs",
            "model",
            "decoder_kwargs",
            "model",
            dict(type=json_object, metavar="JSON", help="keyword arguments of the decoder"),
        ),
        Option(
            "--components",
            "prior",
            "components",
            "model",
            dict(type=positive_int, metavar="K", help="components of --prior mog (default 10)"),
        ),
        Option(
            "--pseudo-inputs",
            "prior",
            "pseudo_inputs",
            "model",
            dict(
                type=positive_int,
                metavar="K",
                help="pseudo-inputs of --prior vamp or two-layer-vamp (default 100)",
            ),
        ),
        Option(
            "--flows",
            "guide",
            "flows",
            "model",
            dict(type=positive_int, metavar="T", help="transforms of --guide flow (default 2)"),
        ),
        Option(
            "--flow-type",
            "guide",
            "flow_type",
            "model",
            dict(
                choices=["iaf", "planar"],
                help="inverse autoregressive (iaf, default) or planar flows",
            ),
        ),
        Option(
            "--sigma",
            "likelihood",
            "sigma",
            "model",
            dict(type=positive_float, help="pixel noise of --likelihood gaussian (default 0.1)"),
        ),
        Option(
            "--min-sigma",
            "likelihood",
            "min_sigma",
            "model",
            dict(
                type=positive_float,
                help="lower bound of the scale of --likelihood gaussian-learned (default 0.001)",
            ),
        ),
        Option(
            "--epochs",
            "train",
            "epochs",
            "training",
            dict(type=positive_int, help=f"passes over the training set (default: {epochs})"),
        ),
        Option(
            "--batch-size",
            "train",
            "batch_size",
            "training",
            dict(type=positive_int, help="minibatch size (default: %(default)s)"),
        ),
        Option(
            "--lr",
            "train",
            "lr",
            "training",
            dict(type=positive_float, help="Adam learning rate (default: %(default)s)"),
        ),
        Option(
            "--lr-schedule",
            "train",
            "lr_schedule",
            "training",
            dict(
                choices=LR_SCHEDULES,
                help="constant, or cosine: decay the learning rate from --lr towards 0 over "
                "the run's steps, lr (1 + cos(pi t / T)) / 2 (default: %(default)s)",
            ),
        ),
        Option(
            "--seed",
            "train",
            "seed",
            "training",
            dict(type=seed_int, help="random seed (default: %(default)s)"),
        ),
        Option(
            "--device",
            "train",
            "device",
            "training",
            dict(
                type=device_name,
                help="auto (CUDA when present), cpu, cuda or cuda:N (default: auto)",
            ),
        ),
        Option(
            "--elbo",
            "train",
            "elbo",
            "training",
            dict(
                choices=sorted(ELBO_NAMES),
                help="training objective: trace (Trace_ELBO), meanfield "
                "(analytic KL), iwae (importance-weighted bound), iwae-dreg (the same with "
                "doubly reparameterized guide gradients) (default: %(default)s)",
            ),
        ),
        Option(
            "--particles",
            "train",
            "particles",
            "training",
            dict(
                type=positive_int,
                metavar="K",
                help="guide samples per example in the training "
                "objective; the K of --elbo iwae and iwae-dreg (default: %(default)s)",
            ),
        ),
        Option(
            "--beta",
            "train",
            "beta",
            "training",
            dict(
                type=positive_float, help="weight of the KL term (beta-VAE) (default: %(default)s)"
            ),
        ),
        Option(
            "--kl-warmup",
            "train",
            "kl_warmup",
            "training",
            dict(
                type=nonnegative_int,
                metavar="E",
                help="epochs over which the KL weight rises "
                "linearly from beta/E to beta (default: 0, no warm-up)",
            ),
        ),
        Option(
            "--jit",
            "train",
            "jit",
            "training",
            dict(
                action=argparse.BooleanOptionalAction,
                help="JIT-compile the ELBO (Pyro's JitTrace_ELBO: torch.jit.trace, less Python "
                "overhead per step) (default: on for --elbo trace with the library's own parts, "
                "off otherwise)",
            ),
        ),
        Option(
            "--eval-particles",
            "train",
            "eval_particles",
            "training",
            dict(
                type=positive_int,
                help="guide samples per example for the validation ELBO (default: %(default)s)",
            ),
        ),
    ]


PRESETS: dict[str, dict[str, Any]] = {
    "quality": {
        "pixels": "grey",
        "prior": "vamp",
        "elbo": "iwae",
        "particles": 5,
        "lr": 3e-3,
        "lr_schedule": "cosine",
    },
}
"""``--preset NAME``: option values (by destination) that stand in for the options not given.
``quality`` is the recipe the README recommends for the best log p(x) per epoch (the ablation
in ``experiments/recipes.py`` shows what each of its levers buys and costs)."""


OPTIONS: list[Option] = _table()
"""Every option of ``run`` and ``train`` that sets the configuration."""

assert {o.field for o in OPTIONS if not o.shorthand} == {
    f.name for section in _DEFAULTS.values() for f in fields(section)
}, "every configuration field has one option"


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
        default = None if option.shorthand else getattr(_DEFAULTS[option.section], option.field)
        if isinstance(default, list | dict):
            default = type(default)(default)
        group.add_argument(option.flag, dest=option.dest, default=default, **option.argparse)


def add_output_options(parser: argparse.ArgumentParser) -> None:
    out = parser.add_argument_group("output")
    out.add_argument("--runs-dir", type=path_text, default="runs", help="parent of run directories")
    out.add_argument("--name", default=None, help="run directory name (default: a timestamp)")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    out.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log each epoch's metrics for TensorBoard into RUN_DIR/tensorboard/ (needs "
        'the tensorboard package: pip install "pyro-vae[tensorboard]")',
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
    return RunConfig(
        data=DataConfig(**values["data"]),
        model=ModelConfig(**model),
        train=TrainConfig(**values["train"]),
    )


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
