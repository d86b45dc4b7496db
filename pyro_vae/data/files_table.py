"""CSV and TSV tables of numbers as untrusted input.

One example per row. The header is optional: the first row is taken as one when a cell of it
is not a number where the second row's is (or when the label column is given by name). The
label column, by name or index, may hold integers (kept as class numbers) or names (coded in
sorted order). The file is streamed, a line at a time of at most ``MAX_LINE`` characters, into a
compact buffer, and refused as soon as it holds more than ``max_values`` numbers; its size is
checked before a byte is read. Every cell must be a finite number: an empty cell, a word, NaN
or infinity is refused, naming its line and column.
"""

from __future__ import annotations

import array
import csv
import io
import math
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import ConfigError, DataFormatError
from .files_io import Raw, file_size, hash_stream

MAX_LINE = 1 << 20
"""The longest line read (characters)."""
DELIMITERS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}


def _lines(path: Path, text: io.TextIOBase) -> Iterator[str]:
    number = 0
    while True:
        try:
            line = text.readline(MAX_LINE + 1)
        except UnicodeDecodeError as exc:
            raise DataFormatError(
                f"{path}: not UTF-8 text near line {number + 1} ({exc.reason})."
            ) from None
        if not line:
            return
        number += 1
        if len(line) > MAX_LINE:
            raise DataFormatError(f"{path}: line {number} is longer than {MAX_LINE:,} characters.")
        yield line


def _number(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def _is_header(first: list[str], second: list[str] | None, label_column: str | int | None) -> bool:
    if isinstance(label_column, str):
        return True
    if second is None:
        return all(_number(c) is None for c in first)
    return any(
        _number(a) is None and _number(b) is not None for a, b in zip(first, second, strict=False)
    )


def _label_index(path: Path, label_column: str | int | None, names: list[str] | None, n: int):
    if label_column is None:
        return None
    if isinstance(label_column, bool) or not isinstance(label_column, str | int):
        raise ConfigError(f"label column {label_column!r}: give a column name or index.")
    if isinstance(label_column, str):
        if names is None or label_column not in names:
            shown = ", ".join(names[:20]) if names else "no header"
            raise ConfigError(
                f"{path}: no column named {label_column!r} (the table has {shown}); give its "
                "name as in the header, or its index from 0."
            )
        return names.index(label_column)
    if not -n <= label_column < n:
        raise ConfigError(
            f"{path}: label column {label_column} out of range: the table has {n} columns "
            f"(indices 0 to {n - 1}, or -1 for the last)."
        )
    return label_column % n


class _Labels:
    """Label cells as int64 codes of the distinct texts, seen in order."""

    def __init__(self) -> None:
        self.codes = array.array("q")
        self.texts: dict[str, int] = {}

    def add(self, text: str) -> None:
        self.codes.append(self.texts.setdefault(text, len(self.texts)))

    def result(self, path: Path) -> tuple[np.ndarray, tuple[str, ...] | None]:
        codes = np.frombuffer(self.codes, dtype=np.int64)
        numbers = [_number(t) for t in self.texts]
        if all(v is not None and abs(v) < 2**53 and v == round(v) for v in numbers):
            lookup = np.array([int(v) for v in numbers], dtype=np.int64)
            return lookup[codes], None
        classes = sorted(self.texts)
        rank = {t: i for i, t in enumerate(classes)}
        order = np.array([rank[t] for t in self.texts], dtype=np.int64)
        return order[codes], tuple(classes)


def _parse(
    path: Path,
    rows: Iterator[tuple[int, list[str]]],
    names: list[str] | None,
    width: int,
    label: int | None,
    max_values: int,
) -> tuple[array.array, _Labels | None, int]:
    """Every data row's numbers into one flat buffer (and its label aside)."""
    values = array.array("d")
    labels = _Labels() if label is not None else None

    def column(j: int) -> str:
        return f"column {j + 1}" + (f" ({names[j]!r})" if names else "")

    def refuse_cell(line: int, row: list[str]) -> None:
        for j, cell in enumerate(row):
            number = _number(cell) if j != label else 0.0
            if number is None or not math.isfinite(number):
                what = "an empty cell" if not cell.strip() else f"{cell.strip()[:40]!r}"
                raise DataFormatError(
                    f"{path}: line {line}, {column(j)}: {what} is not a finite number; remove "
                    "or impute missing values before training."
                )

    count = 0
    for line, row in rows:
        if len(row) != width:
            raise DataFormatError(f"{path}: line {line} has {len(row)} cells, expected {width}.")
        count += 1
        if count * (width - (label is not None)) > max_values:
            raise DataFormatError(
                f"{path}: more than {max_values:,} values (at line {line}); refused without "
                "reading the rest."
            )
        cells = row
        if label is not None:
            text = row[label].strip()
            if not text:
                raise DataFormatError(f"{path}: line {line}, {column(label)}: empty label.")
            labels.add(text)
            cells = row[:label] + row[label + 1 :]
        try:
            numbers = list(map(float, cells))
        except ValueError:
            refuse_cell(line, row)
        if not math.isfinite(sum(numbers)):  # a NaN or infinity (or a sum overflowing)
            refuse_cell(line, row)
        values.extend(numbers)
    return values, labels, count


def read_table(
    path: Path,
    f: BinaryIO,
    *,
    label_column: str | int | None = None,
    header: bool | None = None,
    delimiter: str | None = None,
    max_bytes: int,
    max_values: int,
) -> Raw:
    """A CSV/TSV table ``[N, D]`` (float64, the label column removed), with its labels and
    column names if it has them."""
    size = file_size(path, f, max_bytes)
    sha = hash_stream(f, size)
    delimiter = delimiter or DELIMITERS.get(path.suffix.lower(), ",")
    text = io.TextIOWrapper(f, encoding="utf-8-sig", errors="strict", newline="")
    reader = csv.reader(_lines(path, text), delimiter=delimiter)
    rows = _numbered(reader)
    try:
        head = [row for _, row in zip(range(2), rows, strict=False)]  # never a third
        if not head:
            raise DataFormatError(f"{path}: holds no rows.")
        if header is None:
            second = head[1][1] if len(head) > 1 else None
            header = _is_header(head[0][1], second, label_column)
        first = head[0][1]
        names = [c.strip() for c in first] if header else None
        label = _label_index(path, label_column, names, len(first))
        pending = head[1:] if header else head
        values, labels, n = _parse(
            path, _chain(pending, rows), names, len(first), label, max_values
        )
    except csv.Error as exc:
        raise DataFormatError(
            f"{path}: line {reader.line_num}: not a valid table ({exc})."
        ) from None
    finally:
        text.detach()  # the caller closes the file
    width = len(first) - (label is not None)
    if n == 0:
        raise DataFormatError(f"{path}: holds a header but no rows of numbers.")
    if width == 0:
        raise DataFormatError(f"{path}: holds only the label column, no values.")
    out = np.frombuffer(values, dtype=np.float64).reshape(n, width)
    codes, classes = labels.result(path) if labels is not None else (None, None)
    columns = None
    if names is not None:
        columns = tuple(name for j, name in enumerate(names) if j != label)
    return Raw(out, sha, "table", labels=codes, classes=classes, columns=columns)


def _numbered(reader) -> Iterator[tuple[int, list[str]]]:
    """The non-blank rows, each with the number of the line it ends on."""
    for row in reader:
        if row and not (len(row) == 1 and not row[0].strip()):
            yield reader.line_num, row


def _chain(pending: list, rows: Iterator) -> Iterator:
    yield from pending
    yield from rows
