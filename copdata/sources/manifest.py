"""One parser for the per-row rules every CSV manifest shares.

The ``local`` CSV and the ``youtube`` manifest differ only in how a row names
its media (``path`` vs ``youtube_id``/``url``); everything else is parsed here,
with the same rules and the same error messages:

* the file is UTF-8 (a byte-order mark is fine; another encoding is an error
  naming the byte); lines starting with ``#`` and blank lines are skipped
  (line numbers in errors are the file's own);
* ``split``: a word of ``[A-Za-z0-9_-]`` (:func:`copdata.ids.check_split_name`;
  empty: the source decides);
* crop box ``crop_x0, crop_y0, crop_x1, crop_y1``: source pixels, all four or
  none, whole numbers, ``0 <= x0 < x1`` and ``0 <= y0 < y1`` (x1/y1
  exclusive);
* ``start``, ``end``: seconds, ``start >= 0``, ``end > start``;
* ``max_segments``: keep only the first N clips of the item (N >= 1);
* ``id``: a source id to use instead of the derived one (sanitized);
* any other non-empty column is kept as metadata of the item.

A malformed row does not stop a build: :func:`parse_common` raises
:class:`RowError` and the source turns it into an item whose
``meta["manifest_error"]`` names the file and line; fetching that item raises
:class:`ManifestError`, which the build reports as a failed row.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ManifestError
from ..ids import sanitize_source_id
from .base import read_manifest_text, split_problem

CROP_COLUMNS = ("crop_x0", "crop_y0", "crop_x1", "crop_y1")
COMMON_COLUMNS = frozenset({"split", "start", "end", "max_segments", "id", *CROP_COLUMNS})


class RowError(ValueError):
    """A malformed manifest row (the message says what is wrong with it)."""


@dataclass(frozen=True)
class ManifestRow:
    """One data line of a manifest: its 1-based line number and its cells."""

    path: Path
    line: int
    cells: dict

    @property
    def where(self) -> str:
        return f"{self.path.name}:{self.line}"


@dataclass(frozen=True)
class CommonFields:
    """The validated columns every manifest shares (see the module docstring)."""

    split: str | None = None  # None: not given
    crop: tuple[int, int, int, int] | None = None
    start: float | None = None
    end: float | None = None
    max_segments: int | None = None
    source_id: str | None = None  # sanitized explicit ``id``; None: derive one
    extra: dict = field(default_factory=dict)  # other non-empty columns


def read_rows(path: str | Path, required_any: tuple[str, ...],
              no_rows: str | None = None) -> tuple[list[str], list[ManifestRow]]:
    """The header and data rows of a CSV manifest (UTF-8, a byte-order mark is fine).

    Raises :class:`ManifestError` when the file cannot be read, is not UTF-8,
    is empty, its header has none of ``required_any``, or (with ``no_rows``,
    the advice to give) it has a header but no rows.
    """
    path = Path(path)
    text = read_manifest_text(path)
    lines = [(n, line) for n, line in enumerate(text.splitlines(keepends=True), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ManifestError("manifest is empty; it needs a header row", item=str(path))
    reader = csv.DictReader([line for _, line in lines])
    columns = [c.strip() for c in (reader.fieldnames or [])]
    reader.fieldnames = columns
    if not set(columns) & set(required_any):
        wanted = (f"no {required_any[0]!r} column" if len(required_any) == 1 else
                  "neither " + " nor ".join(repr(c) for c in required_any) + " column")
        raise ManifestError(f"header {columns} has {wanted}; see manifests/README.md",
                            item=str(path))
    rows = [ManifestRow(path, line_no, cells) for (line_no, _), cells in zip(lines[1:], reader)]
    if not rows and no_rows:
        raise ManifestError(f"the CSV has a header but no rows; {no_rows}", item=str(path))
    return columns, rows


def cell(row: ManifestRow, key: str) -> str:
    return str(row.cells.get(key) or "").strip()


def _number(row: ManifestRow, key: str) -> float | None:
    raw = cell(row, key)
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise RowError(f"{key}={raw!r} is not a number") from None
    if not math.isfinite(value):
        raise RowError(f"{key}={raw!r} is not a finite number")
    return value


def _whole(row: ManifestRow, key: str) -> int | None:
    value = _number(row, key)
    if value is None:
        return None
    if value != int(value):
        raise RowError(f"{key}={cell(row, key)!r} is not a whole number")
    return int(value)


def parse_crop(row: ManifestRow) -> tuple[int, int, int, int] | None:
    values = [_whole(row, k) for k in CROP_COLUMNS]
    if all(v is None for v in values):
        return None
    if any(v is None for v in values):
        raise RowError("a crop box needs all of crop_x0, crop_y0, crop_x1, crop_y1")
    x0, y0, x1, y1 = values
    if min(values) < 0 or x1 <= x0 or y1 <= y0:
        raise RowError(f"crop box {tuple(values)} must have 0 <= x0 < x1, 0 <= y0 < y1 "
                       "(source pixels, x1/y1 exclusive)")
    return x0, y0, x1, y1


def parse_common(row: ManifestRow, own_columns: frozenset | set = frozenset()) -> CommonFields:
    """Validate the shared columns of ``row``; raises :class:`RowError`.

    ``own_columns`` are the source's own columns (kept out of ``extra``).
    """
    if None in row.cells:
        raise RowError(f"row has {len(row.cells[None])} more fields than the header")
    split = cell(row, "split") or None
    if split is not None and split_problem(split):
        raise RowError(split_problem(split))
    crop = parse_crop(row)
    start, end = _number(row, "start"), _number(row, "end")
    if start is not None and start < 0:
        raise RowError(f"start={start:g} is negative")
    if end is not None and end <= (start or 0.0):
        raise RowError(f"end={end:g} must be after start={start or 0.0:g}")
    max_segments = _whole(row, "max_segments")
    if max_segments is not None and max_segments < 1:
        raise RowError(f"max_segments={max_segments} must be at least 1")
    explicit = cell(row, "id")
    extra = {k: v for k, v in row.cells.items()
             if k is not None and k not in COMMON_COLUMNS and k not in own_columns
             and v not in (None, "")}
    return CommonFields(split=split, crop=crop, start=start, end=end, max_segments=max_segments,
                        source_id=sanitize_source_id(explicit) if explicit else None, extra=extra)


def item_meta(fields: CommonFields) -> dict:
    """Metadata every source records for a row: its extra columns and max_segments."""
    meta = dict(fields.extra)
    if fields.max_segments is not None:
        meta["max_segments"] = fields.max_segments
    return meta
