"""The data, model and distributed sections of a run's configuration, each field declared once
with :func:`~.declare.setting` (see :mod:`.declare`), and the shorthand options of the
built-in parts' keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from ..checks import Problems
from .capabilities import dataset_pixels_problem
from .constraints import (
    MAX_INT,
    Boolean,
    DataSource,
    Integer,
    JSONObject,
    ListOf,
    OneOf,
    PartName,
    PositiveNumber,
    Text,
)
from .datasets import DATA_KINDS
from .declare import Shorthand, field_problems, setting
from .names import ACTIVATION_NAMES, PART_KINDS
from .pixels import PIXEL_SCHEMES, pixels_help

MAX_JSON_DEPTH = 8
"""How deeply a part's keyword arguments may nest."""
ENCODER_INPUTS = ("as-is", "log1p")
"""What a guide's network may see of x (``--encoder-input``)."""


@dataclass
class DataConfig:
    """The data set and how its grey levels become observations (``--dataset`` ...)."""

    GROUP: ClassVar[str] = "data"

    dataset: str = setting(
        "digits",
        DataSource(),
        "named data set ({choices}), or your own data: a .npy/.npz array, a CSV/TSV table, "
        "an IDX file or a folder of PNG/JPEG images (a path with a / or a data file's ending; "
        "recorded with its SHA-256)",
        default_words="%(default)s, embedded, no network",
        metavar="NAME|PATH",
    )
    data_dir: str | None = setting(
        None,
        Text(path=True),
        "directory holding MNIST/Fashion-MNIST IDX files (.gz or not)",
        default_words=None,
        metavar="DIR",
    )
    download: bool = setting(
        True,
        Boolean(),
        "never try to download a missing data set",
        default_words=None,
        flag="--no-download",
        action="store_false",
    )
    label_column: str | None = setting(
        None,
        Text(),
        "a CSV/TSV data file's column of labels (its name, or its number from 0), left out of "
        "the data and used to colour the figures",
        default_words="none",
        metavar="COLUMN",
    )
    data_kind: str | None = setting(
        None,
        OneOf(DATA_KINDS),
        "what a data file holds: {choices}",
        default_words="inferred from its values",
    )
    test_file: str | None = setting(
        None,
        Text(path=True),
        "a data file of test examples (same shape and kind) instead of a seeded 20%% of "
        "--dataset's",
        default_words=None,
        metavar="PATH",
    )
    split_seed: int = setting(0, Integer(0, 2**32 - 1), flag=None, label="split_seed")
    data_sha256: str | None = setting(None, Text(), flag=None, label="data_sha256")
    test_sha256: str | None = setting(None, Text(), flag=None, label="test_sha256")
    data_shape: list[int] = setting(
        [], ListOf(Integer(1), "list", "data_shape entry"), flag=None, label="data_shape"
    )
    pixels: str | None = setting(
        None,
        OneOf(PIXEL_SCHEMES),
        pixels_help(),
        default_words="the likelihood's own: grey for bernoulli, dequantized for gaussian and "
        "gaussian-learned",
    )

    def problems(self) -> Problems:
        found = field_problems(self)
        mismatch = dataset_pixels_problem(self.dataset, self.pixels)
        if mismatch and not found:
            found.append(mismatch)
        return found


def _part(kind: str, default: str, words: str) -> Any:
    return setting(default, PartName(kind=kind), words + ": {choices}", metavar="NAME")


def _kwargs(words: str) -> Any:
    return setting({}, JSONObject(MAX_JSON_DEPTH), words, default_words=None, metavar="JSON")


@dataclass
class ModelConfig:
    """The model: sizes shared by the parts, and each part as a name plus keyword arguments."""

    GROUP: ClassVar[str] = "model"

    latent_dim: int = setting(20, Integer(1), "dimension of z", metavar="K")
    hidden: list[int] = setting(
        [400],
        ListOf(Integer(1), "list of layer widths", "hidden width", nonempty=True),
        "hidden layer widths of the encoder; the decoder mirrors them",
        metavar="H",
    )
    activation: str = setting("relu", OneOf(tuple(sorted(ACTIVATION_NAMES))))
    prior: str = _part("prior", "mog", "p(z)")
    prior_kwargs: dict[str, Any] = _kwargs("keyword arguments of the prior, a JSON object")
    guide: str = _part("guide", "diagonal", "q(z|x)")
    guide_kwargs: dict[str, Any] = _kwargs("keyword arguments of the guide")
    likelihood: str = _part("likelihood", "bernoulli", "p(x|z)")
    likelihood_kwargs: dict[str, Any] = _kwargs("keyword arguments of the likelihood")
    decoder: str = _part("decoder", "mlp", "f(z)")
    decoder_kwargs: dict[str, Any] = _kwargs("keyword arguments of the decoder")
    encoder_input: str | None = setting(
        None,
        OneOf(ENCODER_INPUTS),
        "what the guide's network sees of x: as-is, or log1p = log(1 + x) for counts (only "
        "the proposal q(z|x) changes, not the model or log p(x))",
        default_words="log1p when the likelihood observes counts, else as-is; as-is for a run "
        "that recorded none",
    )

    def part(self, kind: str) -> tuple[str, dict[str, Any]]:
        """The name and keyword arguments of the part of ``kind`` (prior, guide, ...)."""
        return getattr(self, kind), getattr(self, f"{kind}_kwargs")

    def problems(self) -> Problems:
        return field_problems(self)


SHORTHANDS: tuple[Shorthand, ...] = (
    Shorthand("components", "prior", 10, Integer(1), "components of --prior mog", "K"),
    Shorthand(
        "pseudo_inputs",
        "prior",
        100,
        Integer(1),
        "pseudo-inputs of --prior vamp, two-layer-vamp or hierarchical-vamp",
        "K",
    ),
    Shorthand("flows", "guide", 2, Integer(1), "transforms of --guide flow", "T"),
    Shorthand(
        "flow_type",
        "guide",
        "iaf",
        OneOf(("iaf", "planar")),
        "inverse autoregressive (iaf) or planar flows",
    ),
    Shorthand(
        "encoder",
        "guide",
        "mlp",
        OneOf(("mlp", "conv")),
        "the built-in guides' network: an MLP on the flat pixels, or strided convolutions on "
        "the images then the --hidden layers (image data only; with --decoder conv: a "
        "convolutional VAE)",
    ),
    Shorthand("sigma", "likelihood", 0.1, PositiveNumber(), "pixel noise of --likelihood gaussian"),
    Shorthand(
        "min_sigma",
        "likelihood",
        0.001,
        PositiveNumber(),
        "lower bound of the scale of --likelihood gaussian-learned",
    ),
)
"""Options of ``run`` and ``train`` that set one keyword argument of a built-in part (an
explicit ``--KIND-kwargs`` entry wins over them); their defaults are the parts' own."""
assert {s.kind for s in SHORTHANDS} <= set(PART_KINDS)


@dataclass
class DistributedConfig:
    """How many processes trained the run (its latest epochs): a record, not an option;
    torchrun's ``--nproc_per_node`` and ``--nnodes`` choose it. With several processes,
    process r draws its random numbers in epoch e from ``derived_seed(process_seeds[r], e)``,
    ``process_seeds[r] = derived_seed(seed, r)`` (:mod:`pyro_vae.infer.distributed`); one
    process draws from ``seed`` as it always did."""

    GROUP: ClassVar[str] = "distributed"

    processes: int = setting(1, Integer(1), flag=None, label="distributed processes")
    backend: str | None = setting(  # gloo or nccl with several processes
        None, OneOf(("gloo", "nccl")), flag=None, label="distributed backend"
    )
    process_seeds: list[int] = setting(
        [], ListOf(Integer(0, MAX_INT), "list", "process seed"), flag=None, label="process_seeds"
    )

    def problems(self) -> Problems:
        return field_problems(self)
