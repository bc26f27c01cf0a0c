"""The dataset folder: reader (:func:`open_dataset`) and clip writer.

Layout::

    DIR/dataset.json   schema version, fps, sample rate, clip seconds, source, transcriber
    DIR/clips.jsonl    one row per clip (id, split, source id, start/end, per-view stats)
    DIR/report.json    one row per source item (ok / failed with error class and message)
    DIR/clips/<clip_id>/video.mp4 audio.flac notes.mid roll.npy steps.json

A clip folder is written under ``clips/.tmp-*`` and renamed into place when
complete, so a folder with a clip id as its name is always whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import DatasetError, UnsafePathError
from ..ids import is_valid_clip_id, path_under
from ..media import decode, encode
from ..notes import Note, midi_bytes, read_midi
from ..roll import render_roll
from ..steps import caption as steps_caption, make_steps
from .rows import ClipRow

SCHEMA_VERSION = 1
VIEW_FILES = ("video.mp4", "audio.flac", "notes.mid", "roll.npy", "steps.json")
TMP_PREFIX = ".tmp-"


def write_json_atomic(path: str | Path, obj, *, lines: bool = False) -> None:
    """Write JSON (or JSON lines from a list) to a temp file, then rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        if lines:
            for row in obj:
                fh.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")
        else:
            json.dump(obj, fh, indent=2, sort_keys=True, ensure_ascii=False)
            fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# ---------------------------------------------------------------- writing

@dataclass
class ClipViews:
    """The derived views of one clip, computed from its notes (clip time)."""

    notes: list[Note]
    midi: bytes
    roll: np.ndarray
    steps: list[dict]


def derive_views(notes: Sequence[Note], clip_seconds: float, fps: float, num_frames: int,
                 meta: dict | None = None, claims: dict | None = None) -> ClipViews:
    """MIDI bytes, then the notes as read back from them, then roll and steps.

    Deriving from the read-back notes makes the roll and steps equal to what
    ``copdata validate`` recomputes from ``notes.mid``.
    """
    data = midi_bytes(notes)
    back = read_midi(data)
    roll = render_roll(back, num_frames, fps)
    return ClipViews(back, data, roll, make_steps(back, clip_seconds, fps, meta, claims))


class ClipWriter:
    """Write one clip folder under a temporary name; :meth:`commit` renames it."""

    def __init__(self, root: str | Path, clip_id: str):
        if not is_valid_clip_id(clip_id):
            raise UnsafePathError(f"clip id {clip_id!r} is not <source_id>.<segment:08d>",
                                  item=str(root))
        self.clips_dir = path_under(root, "clips")
        self.final = path_under(self.clips_dir, clip_id)
        self.tmp = path_under(self.clips_dir, f"{TMP_PREFIX}{clip_id}.{os.getpid()}")
        self.clips_dir.mkdir(parents=True, exist_ok=True)
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir()

    def video_encoder(self, fps: float, preset: str = "superfast", crf: int = 20) -> encode.VideoEncoder:
        return encode.VideoEncoder(self.tmp / "video.mp4", fps, crf=crf, preset=preset)

    def write_views(self, audio: np.ndarray, sample_rate: int, views: ClipViews) -> None:
        encode.write_audio(self.tmp / "audio.flac", audio, sample_rate)
        (self.tmp / "notes.mid").write_bytes(views.midi)
        np.save(self.tmp / "roll.npy", views.roll, allow_pickle=False)
        (self.tmp / "steps.json").write_text(
            json.dumps(views.steps, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    def commit(self) -> None:
        missing = [f for f in VIEW_FILES if not (self.tmp / f).is_file()]
        if missing:
            raise DatasetError(f"clip is incomplete, missing {missing}", item=str(self.tmp))
        if self.final.exists():  # a concurrent or earlier writer finished it first
            shutil.rmtree(self.tmp)
            return
        os.rename(self.tmp, self.final)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def check_ours_to_delete(out: Path, state_dir: str = ".state") -> None:
    """``--force`` deletes only what a CoP build wrote: the folder's
    ``dataset.json`` must be ours (a schema version and the copdata version).
    A folder without it that holds a ``clips/``, ``report.json``, ... of
    someone else is refused, and nothing is deleted."""
    meta = out / "dataset.json"
    if meta.exists():
        try:
            info = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict) and "schema_version" in info and "copdata_version" in info:
            return
        raise DatasetError("--force refuses: dataset.json here was not written by copdata "
                           "build, so the folder may hold someone else's files; choose another "
                           "--out or remove them yourself", item=str(out))
    outputs = ("clips", state_dir, "dataset.json", "clips.jsonl", "report.json")
    present = [name for name in outputs if (out / name).exists()]
    if present:
        raise DatasetError(f"--force refuses: the folder holds {', '.join(present)} but no "
                           "dataset.json of a CoP build, so they are not ours to delete; choose "
                           "another --out or remove them yourself", item=str(out))


def remove_partial_clips(root: str | Path) -> int:
    """Delete leftover temporary clip folders; returns how many."""
    clips_dir = Path(root) / "clips"
    if not clips_dir.is_dir():
        return 0
    stale = [p for p in clips_dir.iterdir() if p.name.startswith(TMP_PREFIX)]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return len(stale)


# ---------------------------------------------------------------- reading

@dataclass
class Clip:
    """One clip of a dataset; views are decoded on demand."""

    id: str
    split: str
    dir: Path
    row: ClipRow
    fps: float
    sample_rate: int
    seconds: float
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def num_frames(self) -> int:
        return int(round(self.seconds * self.fps))

    @property
    def num_samples(self) -> int:
        return int(round(self.seconds * self.sample_rate))

    def audio(self) -> np.ndarray:
        """Mono float32 ``(num_samples,)`` at the dataset sample rate."""
        audio, _ = decode.read_audio(self.dir / "audio.flac", self.sample_rate)
        return audio

    def frames(self) -> np.ndarray:
        """RGB uint8 ``(T, H, W, 3)``."""
        return decode.read_frames(self.dir / "video.mp4")

    def iter_frames(self) -> Iterator[np.ndarray]:
        return decode.decoded_frames(self.dir / "video.mp4")

    def notes(self) -> list[Note]:
        return read_midi(self.dir / "notes.mid")

    def roll(self) -> np.ndarray:
        """uint8 ``(T, 88)``; column k is MIDI pitch 21 + k."""
        return np.load(self.dir / "roll.npy", allow_pickle=False)

    def steps(self) -> list[dict]:
        return json.loads((self.dir / "steps.json").read_text(encoding="utf-8"))

    @property
    def caption(self) -> str:
        return steps_caption(self.steps())


class Dataset:
    """A built CoP dataset folder. Iterating yields :class:`Clip` in row order."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        meta = self.root / "dataset.json"
        rows = self.root / "clips.jsonl"
        if not meta.is_file() or not rows.is_file():
            raise DatasetError("not a CoP dataset folder (dataset.json and clips.jsonl are "
                               "written when a build completes; run `copdata build`)",
                               item=str(self.root))
        self.settings: dict = json.loads(meta.read_text(encoding="utf-8"))
        try:
            self.rows: list[ClipRow] = [ClipRow.from_dict(r) for r in read_jsonl(rows)]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DatasetError(f"clips.jsonl has a malformed row ({exc})", item=str(rows)) from exc
        self._by_id = {r.id: r for r in self.rows}

    @property
    def fps(self) -> float:
        return float(self.settings["fps"])

    @property
    def sample_rate(self) -> int:
        return int(self.settings["sample_rate"])

    @property
    def clip_seconds(self) -> float:
        return float(self.settings["clip_seconds"])

    @cached_property
    def report(self) -> list[dict]:
        path = self.root / "report.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []

    def ids(self, split: str | None = None) -> list[str]:
        return [r.id for r in self.rows if split in (None, "all") or r.split == split]

    def _clip(self, row: ClipRow) -> Clip:
        return Clip(id=row.id, split=row.split, dir=self.root / "clips" / row.id,
                    row=row, fps=self.fps, sample_rate=self.sample_rate,
                    seconds=self.clip_seconds)

    def clips(self, split: str | None = None) -> Iterator[Clip]:
        for row in self.rows:
            if split in (None, "all") or row.split == split:
                yield self._clip(row)

    def __getitem__(self, clip_id: str) -> Clip:
        return self._clip(self._by_id[clip_id])

    def __contains__(self, clip_id: str) -> bool:
        return clip_id in self._by_id

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[Clip]:
        return self.clips()

    def fingerprint(self) -> str:
        """sha256 over dataset.json, clips.jsonl and every clip's audio, MIDI and roll."""
        h = hashlib.sha256()
        h.update((self.root / "dataset.json").read_bytes())
        h.update((self.root / "clips.jsonl").read_bytes())
        for row in self.rows:
            for name in ("audio.flac", "notes.mid", "roll.npy"):
                path = self.root / "clips" / row.id / name
                h.update(name.encode())
                if path.is_file():
                    with open(path, "rb") as fh:
                        for block in iter(lambda: fh.read(1 << 20), b""):
                            h.update(block)
        return h.hexdigest()


    def to_pandas(self):
        """The clip rows as a ``pandas.DataFrame``, one row per clip in file order.

        Top-level keys are columns (``id``, ``split``, ``source_id``, ``start``,
        ...); nested objects are flattened with dotted names: ``stats.notes``,
        ``meta.title``, and quality signals such as ``qa.piano_score`` when the
        build wrote them. Lists stay as Python objects in their cell.
        """
        import pandas as pd

        rows = [r.to_dict() for r in self.rows]
        if not rows:
            return pd.DataFrame(columns=list(ClipRow._KEYS))
        return pd.json_normalize(rows, sep=".")


def open_dataset(root: str | Path) -> Dataset:
    """Open a dataset folder written by ``copdata build``."""
    return Dataset(root)
