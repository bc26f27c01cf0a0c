"""What every source gives the build pipeline.

A source lists :class:`SourceItem` (cheap, picklable metadata, one per video or
MIDI file) and turns one item into a :class:`Performance` (decoded audio, notes
when they are known, and a frame stream at the build fps). The pipeline does the
rest: transcription when notes are unknown, segmentation into clips, the five
views and the writer. Adding a source never touches the others.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np

from ..errors import ManifestError
from ..ids import check_split_name
from ..notes import Note


@dataclass(frozen=True)
class BuildSettings:
    """Settings shared by every item of a build (recorded in ``dataset.json``)."""

    fps: float = 25.0
    sample_rate: int = 44100
    clip_seconds: float = 10.0
    seed: int = 0
    # Optional output frame size (width, height) after cropping; None keeps the
    # cropped size (rounded down to even numbers for H.264).
    frame_size: tuple[int, int] | None = None
    # Transcription (recorded sources only): the transcriber (copdata.transcription
    # registry; "auto" is resolved by the CLI), its device (Transkun; a runtime
    # choice, not recorded), note post-processing steps, basic-pitch's thresholds.
    transcriber: str = "basic-pitch"
    transcriber_device: str | None = None
    note_post: tuple[str, ...] = ()
    onset_threshold: float = 0.5
    frame_threshold: float = 0.3
    min_note_ms: float = 127.7
    # Keep at most this many clips per item (None: all that fit).
    max_clips_per_item: int | None = None
    # H.264 encoding of video.mp4: x264 preset (speed vs size) and CRF (quality).
    video_preset: str = "superfast"
    video_crf: int = 20
    # Quality thresholds (copdata.qa.stage; None: not applied) and actions.
    qa_min_piano: float | None = None
    qa_min_keyboard: float | None = None
    qa_max_offset: float | None = None  # seconds
    qa_correct_offset: bool = False  # shift audio by the measured offset before cutting
    # How recorded sources' frames relate to time (synth is always "rendered"):
    # "camera" (a snapshot at i/fps) or "rendered" (the roll's convention)
    video_timing: str = "camera"
    auto_crop: bool = False  # local/youtube: detect the keyboard box when a row has none

    @property
    def frames_per_clip(self) -> int:
        return int(round(self.clip_seconds * self.fps))

    @property
    def samples_per_clip(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))


@dataclass(frozen=True)
class SourceItem:
    """One source item: a video, a MIDI file or a generated performance."""

    source_id: str  # sanitized ([A-Za-z0-9_-]), unique within the build
    label: str  # the raw name for reports: path, URL, manifest id
    split: str = "train"
    meta: dict = field(default_factory=dict)  # JSON-serializable metadata
    crop: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 in source pixels
    start: float | None = None  # seconds within the source (None: 0)
    end: float | None = None  # seconds within the source (None: its end)


@dataclass
class Performance:
    """A fetched item, aligned at t = 0 (= ``item.start`` in the source).

    ``frames()`` yields uint8 ``(H, W, 3)`` RGB frames (or ``av.VideoFrame``,
    which the encoder takes without colour conversion) at the build fps from
    t = 0: frame i shows time ``i / fps``. It yields at least
    ``floor(duration * fps)`` frames and may be called once.

    The audio (float32 mono at ``settings.sample_rate`` from t = 0) is either
    held in ``audio`` (rendered sources) or streamed by ``audio_stream()``,
    which yields it in blocks and may be called more than once (recorded
    sources: the build reads it once to transcribe and once to cut clips, so
    a long source never sits in memory whole). :meth:`audio_blocks` gives
    blocks either way.
    """

    duration: float  # usable seconds (audio and video both present, as declared)
    frames: Callable[[], Iterator[np.ndarray]]
    audio: np.ndarray | None = None
    audio_stream: Callable[[], Iterator[np.ndarray]] | None = None
    notes: list[Note] | None = None  # ground truth; None: the pipeline transcribes
    midi_origin: str = "ground_truth"  # or "transcription"
    meta: dict = field(default_factory=dict)  # merged into every clip row

    def __post_init__(self):
        if (self.audio is None) == (self.audio_stream is None):
            raise ValueError("a Performance needs exactly one of audio and audio_stream")

    def audio_blocks(self) -> Iterator[np.ndarray]:
        """The audio as consecutive float32 blocks (a fresh stream on every call)."""
        if self.audio is not None:
            from ..media.blocks import array_blocks

            return array_blocks(self.audio)
        return self.audio_stream()


class Source(ABC):
    """A source of performances. Must be picklable (sent to worker processes)."""

    name: str = "base"

    @abstractmethod
    def items(self) -> list[SourceItem]:
        """All items, in a stable order, with sanitized unique ids and splits."""

    @abstractmethod
    def fetch(self, item: SourceItem, settings: BuildSettings) -> Performance:
        """Decode/render one item; raise a ``copdata.errors.CopDataError`` on bad input."""

    def describe(self) -> dict:
        """Source settings recorded in ``dataset.json``."""
        return {"name": self.name}

    @property
    def transcribes(self) -> bool:
        """True when the MIDI view is a transcription of recorded audio."""
        return False


def split_fraction(seed: int, source_id: str) -> float:
    """Deterministic number in [0, 1) from ``(seed, source_id)``."""
    digest = hashlib.sha256(f"{int(seed)}:{source_id}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def assign_splits(ids: list[str], seed: int, test_fraction: float) -> dict[str, str]:
    """``{source_id: "train" | "test"}``: an id is ``test`` when its
    :func:`split_fraction` is below ``test_fraction``; with two or more ids and
    ``0 < test_fraction < 1`` there is always at least one of each split. A
    performance is never split across train and test."""
    fractions = {i: split_fraction(seed, i) for i in ids}
    splits = {i: "test" if u < test_fraction else "train" for i, u in fractions.items()}
    if len(ids) >= 2 and 0.0 < test_fraction < 1.0:
        if "test" not in splits.values():
            splits[min(ids, key=fractions.__getitem__)] = "test"
        if "train" not in splits.values():
            splits[max(ids, key=fractions.__getitem__)] = "train"
    return splits


# ------------------------------------------------------------ manifest checks
# Small checks every CSV-reading source calls (local CSV, youtube manifest), so
# a shared manifest parser keeps them.

def read_manifest_text(path) -> str:
    """The text of a CSV manifest: UTF-8, a leading byte-order mark removed.

    A file in another encoding raises :class:`ManifestError` naming the byte
    offset (instead of a ``UnicodeDecodeError`` traceback); an unreadable file
    raises it with the OS error.
    """
    try:
        data = open(path, "rb").read()
    except OSError as exc:
        raise ManifestError(f"cannot read ({exc.strerror or exc})", item=str(path)) from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(f"is not UTF-8 text (byte {exc.start}: {data[exc.start:exc.start + 1]!r}); "
                            "save it as UTF-8 CSV", item=str(path)) from None


def split_problem(split: str) -> str | None:
    """Why ``split`` cannot be a split name (it would become a file name), or None."""
    try:
        check_split_name(split)
    except ValueError as exc:
        return str(exc)
    return None


def cross_split_problem(key: str, split: str, first_split: dict, where: str) -> str | None:
    """Leakage check: the same input (``key``, e.g. a resolved file path) must not
    be listed in two splits. Records the first split of ``key`` in ``first_split``
    and returns the problem of a later row that names another split."""
    earlier = first_split.setdefault(key, (split, where))
    if earlier[0] != split:
        return (f"the same input is already listed in split {earlier[0]!r} ({earlier[1]}); "
                f"listing it in {split!r} too would leak it between splits")
    return None
