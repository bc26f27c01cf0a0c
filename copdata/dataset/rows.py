"""The typed records of ``clips.jsonl``: :class:`ClipRow` and its :class:`ClipStats`.

A row is written by the build, read by :class:`copdata.Dataset`, checked by
``copdata validate``, summarised by ``copdata stats`` and exported by
``copdata export``, always through these classes. ``to_dict`` gives exactly the
``clips.jsonl`` keys; ``from_dict`` takes a row of any copdata version: keys
this version does not know (quality signals, content hashes, future fields)
are kept in ``extra`` and written back unchanged, top-level, by ``to_dict``.
"""

from __future__ import annotations

import math

from dataclasses import dataclass, field, fields
from typing import Any, Iterator, Sequence

import numpy as np

from ..media.decode import db_full_scale
from ..notes import Note


_OPTIONAL = ("audio_gain_db", "audio_peak_dbfs")  # absent from older rows


@dataclass
class ClipStats:
    """Per-view facts of one clip, computed when it is written."""

    frames: int
    width: int
    height: int
    samples: int
    audio_rms_dbfs: float | None  # None: digital silence
    notes: int
    notes_per_second: float
    pitch_min: int | None
    pitch_max: int | None
    velocity_min: int | None
    velocity_max: int | None
    active_frames: int  # roll frames with at least one key down
    # Level of the written audio.flac (rows before these were recorded lack them):
    # the gain applied to fit full scale (copdata.build.cut.fit_full_scale; 0.0: none)
    # and the written file's peak (None: silence).
    audio_gain_db: float | None = None
    audio_peak_dbfs: float | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def measure(cls, notes: Sequence[Note], roll: np.ndarray, audio: np.ndarray,
                frame_shape: Sequence[int], clip_seconds: float,
                audio_gain_db: float | None = None) -> "ClipStats":
        """Stats of a clip from its notes, roll, audio *as written* (see
        :func:`copdata.media.encode.as_written`) and frame shape ``(H, W, ...)``.
        ``audio_gain_db`` is the gain applied to fit full scale."""
        peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
        return cls(audio_gain_db=None if audio_gain_db is None else round(float(audio_gain_db), 2),
                   audio_peak_dbfs=round(20 * math.log10(peak), 2) if peak > 0 else None,
            frames=int(roll.shape[0]), width=int(frame_shape[1]), height=int(frame_shape[0]),
            samples=int(len(audio)),
            audio_rms_dbfs=round(db_full_scale(audio), 2) if np.any(audio) else None,
            notes=len(notes), notes_per_second=round(len(notes) / clip_seconds, 4),
            pitch_min=min((n.pitch for n in notes), default=None),
            pitch_max=max((n.pitch for n in notes), default=None),
            velocity_min=min((n.velocity for n in notes), default=None),
            velocity_max=max((n.velocity for n in notes), default=None),
            active_frames=int(roll.any(axis=1).sum()))

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)
               if f.name != "extra" and not (f.name in _OPTIONAL and getattr(self, f.name) is None)}
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "ClipStats":
        """Stats from their ``clips.jsonl`` object; unknown keys go to ``extra``.
        Raises ``KeyError`` naming a missing key (nothing is filled in)."""
        known = [f.name for f in fields(cls) if f.name != "extra"]
        missing = [k for k in known if k not in data and k not in _OPTIONAL]
        if missing:
            raise KeyError(f"clip stats have no {missing[0]!r}")
        return cls(**{k: data[k] for k in known if k in data},
                   extra={k: v for k, v in data.items() if k not in known})


@dataclass
class ClipRow:
    """One line of ``clips.jsonl``.

    ``start``/``end`` are seconds in the source; ``meta`` is source metadata
    (it also feeds the text steps); ``extra`` holds keys written by other
    stages or versions (e.g. ``qa``, ``hashes``), kept as they are.
    """

    id: str
    split: str
    source_id: str
    source: str  # the source item's label (path, URL, manifest id)
    segment: int
    start: float
    end: float
    midi_origin: str  # "ground_truth" or "transcription"
    meta: dict
    stats: ClipStats
    extra: dict = field(default_factory=dict)

    _KEYS = ("id", "split", "source_id", "source", "segment", "start", "end", "midi_origin",
             "meta", "stats")

    def to_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self._KEYS}
        out["stats"] = self.stats.to_dict()
        out.update(self.extra)
        return out

    _REQUIRED = ("id", "split", "source_id", "segment", "start", "end", "stats")

    @classmethod
    def from_dict(cls, data: dict) -> "ClipRow":
        """A row from its ``clips.jsonl`` dict; unknown keys go to ``extra``.

        Raises ``KeyError`` naming the first missing required key (``id``,
        ``split``, ``source_id``, ``segment``, ``start``, ``end``, ``stats``):
        nothing is filled in. ``source``, ``midi_origin`` and ``meta`` may be
        absent (empty).
        """
        for key in cls._REQUIRED:
            if key not in data:
                raise KeyError(f"clip row {data.get('id', '?')!r} has no {key!r}")
        return cls(id=str(data["id"]), split=str(data["split"]),
                   source_id=str(data["source_id"]), source=str(data.get("source") or ""),
                   segment=int(data["segment"]), start=float(data["start"]),
                   end=float(data["end"]), midi_origin=str(data.get("midi_origin") or ""),
                   meta=dict(data.get("meta") or {}),
                   stats=ClipStats.from_dict(dict(data["stats"])),
                   extra={k: v for k, v in data.items() if k not in cls._KEYS})

    @property
    def seconds(self) -> float:
        return self.end - self.start

    # Read-only mapping access to the clips.jsonl keys, for code written
    # against the dict rows (``row["split"]``, ``row.get("qa")``).
    def __getitem__(self, key: str) -> Any:
        if key in self._KEYS:
            return self.stats.to_dict() if key == "stats" else getattr(self, key)
        return self.extra[key]

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: object) -> bool:
        return key in self._KEYS or key in self.extra

    def keys(self) -> Iterator[str]:
        return iter(self.to_dict())
