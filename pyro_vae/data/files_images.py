"""A directory of PNG/JPEG images as untrusted input.

Layout: images directly in the directory (no labels), or one level of sub-directories whose
names are the classes (like torchvision's ``ImageFolder``; classes sorted, images sorted within
each). Hidden entries (names starting with ``.``) and files that are not ``.png``/``.jpg``/
``.jpeg`` are skipped unread; a symbolic link, a FIFO or device, or a deeper sub-directory is
refused. Every image's size and mode come from its header, checked before its pixels are
decoded: all images must have one size and one channel count, and no image may declare more
than ``MAX_IMAGE_PIXELS`` pixels (a decompression bomb, refused as well when Pillow itself
warns or refuses). Values are ``uint8`` ``[N, C, H, W]``: 1 channel (greyscale), 2 (grey and
alpha), 3 (RGB) or 4 (RGBA).
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import DataFormatError, DatasetUnavailableError, first_line
from .files_io import Raw, check_bound, open_regular

SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_IMAGE_PIXELS = 1 << 26
"""The most pixels one image may declare (64 Mpixels), whatever Pillow's own global bound."""
MAX_ENTRIES = 1 << 20
"""The most directory entries scanned (all sub-directories together)."""
_MODES = {"1": "L", "L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA", "CMYK": "RGB"}
_MODES |= {"YCbCr": "RGB", "LAB": "RGB", "HSV": "RGB", "P": "RGB", "PA": "RGBA"}
_PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError)


def _entries(directory: Path, counter: list[int]) -> list[os.DirEntry]:
    """The directory's entries, hidden ones left out, a symbolic link or special file refused."""
    out = []
    try:
        with os.scandir(directory) as it:
            for entry in it:
                counter[0] += 1
                if counter[0] > MAX_ENTRIES:
                    raise DataFormatError(
                        f"{directory}: more than {MAX_ENTRIES:,} entries; refused."
                    )
                if entry.name.startswith("."):
                    continue
                if entry.is_symlink():
                    raise DataFormatError(
                        f"{Path(entry.path)}: a symbolic link inside the image directory; "
                        "pyro-vae reads only regular files there (copy the file in instead)."
                    )
                if not (
                    entry.is_dir(follow_symlinks=False) or entry.is_file(follow_symlinks=False)
                ):
                    raise DataFormatError(f"{Path(entry.path)}: not a regular file or directory.")
                out.append(entry)
    except OSError as exc:
        raise DatasetUnavailableError(f"{directory}: cannot be listed ({exc.strerror}).") from None
    return out


def _is_image(entry: os.DirEntry) -> bool:
    return entry.is_file(follow_symlinks=False) and entry.name.lower().endswith(SUFFIXES)


def list_images(directory: Path) -> tuple[list[tuple[str, str]], tuple[str, ...] | None]:
    """The images as sorted (class, name) pairs (class ``""`` without sub-directories), and the
    sorted class names (None without sub-directories)."""
    counter = [0]
    top = _entries(directory, counter)
    files = sorted(e.name for e in top if _is_image(e))
    subdirs = sorted(e.name for e in top if e.is_dir(follow_symlinks=False))
    if files and subdirs:
        raise DataFormatError(
            f"{directory}: holds both images and sub-directories ({subdirs[0]}/); put every "
            "image directly in it (no labels) or every image in a sub-directory named after "
            "its class."
        )
    if files:
        return [("", name) for name in files], None
    found: list[tuple[str, str]] = []
    classes = []
    for name in subdirs:
        inner = _entries(directory / name, counter)
        deeper = [e.name for e in inner if e.is_dir(follow_symlinks=False)]
        if deeper:
            raise DataFormatError(
                f"{directory / name / deeper[0]}: a directory two levels down; class "
                "sub-directories hold images only."
            )
        images = sorted(e.name for e in inner if _is_image(e))
        if images:
            classes.append(name)
            found += [(name, image) for image in images]
    if not found:
        raise DataFormatError(f"{directory}: holds no PNG or JPEG images ({', '.join(SUFFIXES)}).")
    return found, tuple(classes)


def _record(digest: hashlib._Hash, relative: str, data: bytes) -> None:
    """Feed one file into the directory's hash: its relative name, a NUL, its length (8 bytes,
    big-endian), its bytes."""
    digest.update(os.fsencode(relative) + b"\0" + len(data).to_bytes(8, "big") + data)


def _mode(where: Path, image: Image.Image) -> str:
    if image.mode == "P" and "transparency" in image.info:
        return "RGBA"
    mode = _MODES.get(image.mode)
    if mode is None:
        raise DataFormatError(
            f"{where}: image mode {image.mode} (16-bit or floating-point pixels) is not read; "
            "save the images as 8-bit greyscale or colour."
        )
    return mode


def _open(where: Path, data: bytes) -> Image.Image:
    """The image's header (its pixels are not decoded yet), a bomb refused."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=["PNG", "JPEG"])
    except (UnidentifiedImageError, Image.DecompressionBombWarning, *_PIL_ERRORS) as exc:
        raise DataFormatError(
            f"{where}: not a readable PNG or JPEG image ({first_line(exc)})."
        ) from None
    w, h = image.size
    if w * h > MAX_IMAGE_PIXELS:
        image.close()
        raise DataFormatError(
            f"{where}: declares {w}x{h} pixels, more than the {MAX_IMAGE_PIXELS:,} pyro-vae "
            "decodes (a decompression bomb?); refused before decoding it."
        )
    return image


def _pixels(where: Path, image: Image.Image, mode: str) -> np.ndarray:
    """The decoded image, ``[C, H, W]`` uint8."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            converted = image if image.mode == mode else image.convert(mode)
            array = np.asarray(converted, dtype=np.uint8)
    except (Image.DecompressionBombWarning, *_PIL_ERRORS) as exc:
        raise DataFormatError(
            f"{where}: a corrupt or truncated image ({first_line(exc)})."
        ) from None
    return array[None] if array.ndim == 2 else np.moveaxis(array, -1, 0)


def read_image_dir(directory: Path, *, max_bytes: int, max_values: int) -> Raw:
    """Every image of ``directory`` as ``uint8`` ``[N, C, H, W]``, with class labels if the
    images lie in sub-directories; the SHA-256 covers the sorted names and bytes."""
    files, classes = list_images(directory)
    digest = hashlib.sha256()
    values: np.ndarray | None = None
    labels = np.empty(len(files), dtype=np.int64)
    index = {name: i for i, name in enumerate(classes or ())}
    total = 0
    first: tuple[tuple[int, int], str, Path] | None = None
    for i, (cls, name) in enumerate(files):
        relative = f"{cls}/{name}" if cls else name
        where = directory / relative
        with open_regular(where, follow_links=False) as f:
            size = os.fstat(f.fileno()).st_size
            total += size
            if total > max_bytes:
                raise DataFormatError(
                    f"{directory}: its images exceed {max_bytes:,} bytes (at {relative}); refused."
                )
            data = f.read(size + 1)
        if len(data) > size:
            raise DataFormatError(f"{where}: the file grew while it was read.")
        _record(digest, relative, data)
        with _open(where, data) as image:
            mode = _mode(where, image)
            if first is None:
                first = (image.size, mode, where)
                w, h = image.size
                shape = (len(files), len(mode), h, w)
                check_bound(directory, shape, max_values)
                values = np.empty(shape, dtype=np.uint8)
            elif (image.size, mode) != first[:2]:
                (w0, h0), mode0, where0 = first
                w, h = image.size
                raise DataFormatError(
                    f"{where}: {w}x{h} {mode}, but {where0.name} (the first image) is "
                    f"{w0}x{h0} {mode0}; all images must have one size and one colour mode."
                )
            values[i] = _pixels(where, image, mode)
        labels[i] = index.get(cls, 0)
    return Raw(
        values=values,
        sha256=digest.hexdigest(),
        format="images",
        labels=labels if classes else None,
        classes=classes,
        levels=256,
    )
