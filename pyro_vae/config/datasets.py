"""The named data sets, declared once (torch-free): what the command line, the configuration's
checks and the loader know of each without loading it.

``--dataset``'s choices (:data:`.names.DATASET_NAMES`), the pixels per image
(:data:`.names.DATA_DIMS`), the default epochs (:data:`.train.DEFAULT_EPOCHS`) and the loaders
of :data:`pyro_vae.data.datasets.DATASETS` are all read from :data:`DATA_SETS`. A data set in
the MNIST format (four IDX files, which torchvision downloads) is one entry here; one in a
format of its own also needs its loader in :mod:`pyro_vae.data.datasets`."""

from __future__ import annotations

from dataclasses import dataclass

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


DATA_SETS: dict[str, DataSet] = {
    d.name: d
    for d in (
        DataSet("digits", 64, 500, TEN_DIGITS),  # scikit-learn's, always available offline
        DataSet("mnist", 784, 50, TEN_DIGITS, torchvision="MNIST"),
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
            system_dirs=("/usr/share/datasets/fashion-mnist",),  # Debian's dataset-fashion-mnist
            install_hint="On Debian/Ubuntu: apt-get install dataset-fashion-mnist (installs them "
            "in /usr/share/datasets/fashion-mnist, found automatically).",
        ),
    )
}
"""Every named data set (``--dataset``), the default first."""
