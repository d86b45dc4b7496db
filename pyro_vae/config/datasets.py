"""The named data sets, declared once (torch-free): what the command line, the configuration's
checks and the loader know of each without loading it.

``--dataset``'s choices (:data:`.names.DATASET_NAMES`), the pixels per image
(:data:`.names.DATA_DIMS`), the default epochs (:data:`.train.DEFAULT_EPOCHS`) and the loaders
of :data:`pyro_vae.data.datasets.DATASETS` are all read from :data:`DATA_SETS`. A data set in
the MNIST format (four IDX files, which torchvision downloads) is one entry here; one in a
format of its own also needs its loader in :mod:`pyro_vae.data.datasets`."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .pixels import AS_IS, SCHEMES

TEN_DIGITS: tuple[str, ...] = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class DataSet:
    """A named data set (``--dataset NAME``)."""

    name: str
    data_dim: int
    """Pixels per image."""
    epochs: int
    """``--epochs`` when not given."""
    classes: tuple[str, ...]
    """The names of its classes, in label order (for plots)."""
    torchvision: str = ""
    """Its class in ``torchvision.datasets`` when its files are the four IDX files of the
    MNIST format (found in ``--data-dir``, else downloaded); ``""``: a loader of its own."""
    system_dirs: tuple[str, ...] = ()
    """Directories searched for its files after ``--data-dir`` (a system package's)."""
    install_hint: str = ""
    """How to install its files, said when they cannot be found."""
    shape: tuple[int, ...] = ()
    """The shape of one image (``[H, W]``; ``data_dim`` values), for the convolutional parts."""


DATA_SETS: dict[str, DataSet] = {
    d.name: d
    for d in (
        DataSet(
            "digits", 64, 500, TEN_DIGITS, shape=(8, 8)
        ),  # scikit-learn's, always available offline
        DataSet("mnist", 784, 50, TEN_DIGITS, torchvision="MNIST", shape=(28, 28)),
        DataSet(
            "fashion-mnist",
            784,
            50,
            (
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ),
            torchvision="FashionMNIST",
            shape=(28, 28),
            system_dirs=("/usr/share/datasets/fashion-mnist",),  # Debian's dataset-fashion-mnist
            install_hint="On Debian/Ubuntu: apt-get install dataset-fashion-mnist (installs them "
            "in /usr/share/datasets/fashion-mnist, found automatically).",
        ),
    )
}
"""Every named data set (``--dataset``), the default first."""


# ------------------------------------------------------------------ a user's own data file
DATA_KINDS: tuple[str, ...] = ("binary", "levels", "counts", "continuous")
"""What a user's data file holds (``--data-kind``), from the narrowest to the widest (the
readers' :data:`pyro_vae.data.files.KINDS`)."""

FILE_ENDINGS: tuple[str, ...] = (".csv", ".tsv", ".tab", ".npy", ".npz", ".idx", "-ubyte", ".gz")
"""The endings that make a ``--dataset`` value a data file's path without a ``/``."""


def is_file_source(dataset: object) -> bool:
    """Whether ``--dataset`` names a user's data file or image folder rather than a named data
    set: a value that is not a named data set and holds a ``/`` (``./photos``, ``data/x.csv``)
    or ends as a data file does (``x.csv``). Anything else is a misspelt name."""
    if not isinstance(dataset, str) or not dataset or "\0" in dataset or dataset in DATA_SETS:
        return False
    return "/" in dataset or dataset.lower().endswith(FILE_ENDINGS)


def image_shape(dataset: str, data_shape: list[int], data_sha256: str | None) -> tuple[int, ...]:
    """The shape of one example as the convolutional parts see it, from a run's data settings
    (a named data set's, or the recorded shape of a data file, ``data_sha256`` set):
    ``(C, H, W)`` for images (a ``[H, W]`` shape has one channel), ``()`` for data whose
    examples are not images (a table's rows, a count matrix's)."""
    named = DATA_SETS.get(dataset)
    shape = tuple(data_shape) if data_sha256 is not None or named is None else named.shape
    if len(shape) == 2:
        return (1, *shape)
    return shape if len(shape) == 3 else ()


def data_pixels(
    kind: str | None,
    *,
    dataset: str,
    likelihood: str,
    observes: str,
    pixels: str | None,
    preferred: str,
    alternatives: dict[str, tuple[str, ...]],
) -> str:
    """The pixel scheme for data of ``kind`` (None: a named data set's integer levels) under a
    likelihood that observes ``observes`` and prefers ``preferred``, or a
    :class:`~pyro_vae.errors.ConfigError` saying why the two do not fit and naming the
    likelihoods that do (``alternatives``: the built-in ones by what they observe). Counts and
    continuous values are observed as they are (``as-is``); the schemes of integer levels do
    not apply to them."""
    if kind in (None, "binary", "levels"):
        if pixels == AS_IS:
            raise ConfigError(
                f"--pixels {AS_IS} is for counts and continuous data; {dataset} holds integer "
                "levels: choose one of " + ", ".join(s for s in SCHEMES if s != AS_IS)
            )
        return pixels or preferred
    fits = ("continuous",) if kind == "continuous" else ("counts", "continuous")
    if observes not in fits:
        names = [n for o in fits for n in alternatives.get(o, ())]
        raise ConfigError(
            f"{dataset} holds {kind} data, which the likelihood {likelihood!r} cannot score (it "
            f"observes {observes} values): use --likelihood {' or '.join(names)}"
        )
    if observes == "counts" and "counts" in SCHEMES:  # the counts likelihoods' own scheme
        wanted = "counts"
    else:  # counts under a Gaussian are real values: a density, not comparable with the
        wanted = AS_IS  # log p(x) of a count likelihood (poisson, negative-binomial)
    if pixels not in (None, wanted):
        raise ConfigError(
            f"--pixels {pixels} turns integer levels into observations; {dataset} holds {kind} "
            f"data, observed as they are (--pixels {wanted}, the default for them)"
        )
    return wanted
