"""The ``synth`` source: rendered piano performances with a keyboard video.

Items are either procedural performances (:mod:`copdata.render.performance`),
``synth-<seed>-<k:04d>`` for k = 0..num_items-1, each ``item_seconds`` long, or,
with ``midi_dir``, the user's MIDI files (``*.mid``/``*.midi``, sorted by name;
the id is the sanitized file stem; the item lasts until the last note ends).

Audio is the additive piano of :mod:`copdata.render.piano` (or FluidSynth with
``soundfont``); video is the top-down keyboard of
:mod:`copdata.render.keyboard`. The notes are the ground truth (snapped to the
MIDI tick grid before audio and video are rendered from them).

Splits are per item and depend only on ``(seed, source id)``: an item is
``test`` when ``sha256(f"{seed}:{source_id}")`` read as a fraction in [0, 1) is
below ``test_fraction``. With two or more items and ``0 < test_fraction < 1``
at least one item is test and one is train (the item with the lowest / highest
fraction is moved when needed).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from ..errors import MidiError
from ..ids import sanitize_source_id
from ..notes import read_midi, snap_notes
from ..options import MAX_ITEM_SECONDS, MAX_NOTES_PER_ITEM, number
from ..render.keyboard import DEFAULT_HEIGHT, DEFAULT_WIDTH, KeyboardRenderer
from ..render.performance import GENERATOR_VERSION, generate_performance
from ..render.piano import engine_name, render_audio
from .base import BuildSettings, Performance, Source, SourceItem, assign_splits

NAME = "synth"
HELP = "rendered MIDI (offline, default)"
MIDI_SUFFIXES = (".mid", ".midi")


def item_generator_seed(seed: int, index: int) -> int:
    """Seed of the performance generator for item ``index`` of a build seeded ``seed``."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0])


@functools.lru_cache(maxsize=8)
def _keyboard(width: int, height: int) -> KeyboardRenderer:
    return KeyboardRenderer(width=width, height=height)


class SynthSource(Source):
    """Procedural or user-MIDI piano performances rendered to audio and keyboard video."""

    name = "synth"

    def __init__(self, num_items: int = 8, item_seconds: float = 30.0, seed: int = 0,
                 midi_dir: str | Path | None = None, soundfont: str | Path | None = None,
                 test_fraction: float = 0.25, frame_size: tuple[int, int] | None = None):
        if num_items < 0:
            raise ValueError(f"num_items must be >= 0, got {num_items}")
        if item_seconds <= 0:
            raise ValueError(f"item_seconds must be positive, got {item_seconds}")
        if not 0.0 <= test_fraction <= 1.0:
            raise ValueError(f"test_fraction must be in [0, 1], got {test_fraction}")
        self.num_items = int(num_items)
        self.item_seconds = float(item_seconds)
        self.seed = int(seed)
        self.midi_dir = None if midi_dir is None else Path(midi_dir)
        self.soundfont = None if soundfont is None else str(soundfont)
        self.test_fraction = float(test_fraction)
        self.frame_size = None if frame_size is None else (int(frame_size[0]), int(frame_size[1]))

    # -- items --------------------------------------------------------------
    def _midi_files(self) -> list[Path]:
        assert self.midi_dir is not None
        if not self.midi_dir.is_dir():
            raise MidiError("MIDI folder not found; pass an existing folder to --midi-dir",
                            item=str(self.midi_dir))
        files = sorted(p for p in self.midi_dir.iterdir()
                       if p.is_file() and p.suffix.lower() in MIDI_SUFFIXES)
        if not files:
            raise MidiError("no MIDI files (*.mid, *.midi) in the folder", item=str(self.midi_dir))
        return files

    def items(self) -> list[SourceItem]:
        """Generated items, or one per MIDI file of ``midi_dir`` (``num_items`` and
        ``item_seconds`` then do not apply)."""
        if self.midi_dir is None:
            entries = []
            for k in range(self.num_items):
                sid = sanitize_source_id(f"synth-{self.seed}-{k:04d}")
                entries.append((sid, sid, {"kind": "generated", "index": k,
                                           "generator_seed": item_generator_seed(self.seed, k),
                                           "seconds": self.item_seconds}))
        else:
            entries, seen = [], set()
            for path in self._midi_files():
                sid = sanitize_source_id(path.stem)
                if sid in seen:  # e.g. a.mid and a.midi
                    sid = sanitize_source_id(path.name)
                seen.add(sid)
                entries.append((sid, str(path), {"kind": "midi", "path": str(path)}))
        splits = assign_splits([e[0] for e in entries], self.seed, self.test_fraction)
        return [SourceItem(source_id=sid, label=label, split=splits[sid], meta=meta)
                for sid, label, meta in entries]

    # -- fetch --------------------------------------------------------------
    def _notes(self, item: SourceItem) -> tuple[list, float, dict]:
        if item.meta.get("kind") == "midi":
            path = item.meta["path"]
            notes = read_midi(path)
            if not notes:
                raise MidiError("the MIDI file holds no (non-drum) notes; give a piano MIDI file",
                                item=path)
            duration = max(n.end for n in notes)
            if duration > MAX_ITEM_SECONDS or len(notes) > MAX_NOTES_PER_ITEM:
                raise MidiError(f"the MIDI file lasts {duration:.0f} s with {len(notes)} notes; "
                                f"one item may last at most {MAX_ITEM_SECONDS:g} s with "
                                f"{MAX_NOTES_PER_ITEM} notes (split the file)", item=path)
            return notes, duration, {"style": "user_midi", "midi_file": Path(path).name}
        seconds = float(item.meta.get("seconds", self.item_seconds))
        gen_seed = int(item.meta["generator_seed"])
        notes, perf = generate_performance(gen_seed, seconds)
        meta = {key: perf[key] for key in ("style", "styles", "tempo_bpm", "key", "sections")}
        meta.update({"generator": perf["generator"], "generator_version": perf["version"],
                     "generator_seed": gen_seed})
        return notes, seconds, meta

    def fetch(self, item: SourceItem, settings: BuildSettings) -> Performance:
        """Render one item: snapped ground-truth notes, audio at
        ``settings.sample_rate`` (``round(duration * sr)`` samples) and keyboard
        frames at ``settings.fps`` (``ceil(duration * fps)`` frames)."""
        raw, duration, meta = self._notes(item)
        notes = snap_notes(raw, max_seconds=duration)
        if not notes:
            raise MidiError("no piano notes (MIDI pitch 21..108) in the item", item=item.label)
        audio = render_audio(notes, settings.sample_rate, duration, self.soundfont)
        width, height = self.frame_size or settings.frame_size or (DEFAULT_WIDTH, DEFAULT_HEIGHT)
        keyboard = _keyboard(int(width), int(height))
        num_frames = int(math.ceil(duration * settings.fps - 1e-9))
        fps = settings.fps

        def frames():
            return keyboard.frames(notes, fps, num_frames)

        meta = dict(meta)
        meta.update({"render_engine": engine_name(self.soundfont),
                     "video": f"keyboard-top-{width}x{height}"})
        return Performance(duration=duration, frames=frames, audio=audio, notes=notes,
                           midi_origin="ground_truth", meta=meta)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "num_items": self.num_items,
            "item_seconds": self.item_seconds,
            "seed": self.seed,
            "midi_dir": None if self.midi_dir is None else str(self.midi_dir),
            "soundfont": self.soundfont,
            "test_fraction": self.test_fraction,
            "frame_size": None if self.frame_size is None else list(self.frame_size),
            "render_engine": engine_name(self.soundfont),
            "generator_version": GENERATOR_VERSION,
        }


def add_cli_arguments(group) -> None:
    """Options of ``copdata build --source synth``."""
    group.add_argument("--num-items", type=number(int, 1, 1_000_000), default=8, help="procedural performances to render")
    group.add_argument("--item-seconds", type=number(float, 0.1, MAX_ITEM_SECONDS), default=30.0,
                       help=f"length of each performance (at most {MAX_ITEM_SECONDS:g} s)")
    group.add_argument("--midi-dir", default=None, help="render these MIDI files instead")
    group.add_argument("--soundfont", default=None,
                       help="render audio with FluidSynth and this .sf2")


def source_from_args(args) -> SynthSource:
    return SynthSource(num_items=args.num_items, item_seconds=args.item_seconds, seed=args.seed,
                       midi_dir=args.midi_dir, soundfont=args.soundfont,
                       test_fraction=args.test_fraction)
