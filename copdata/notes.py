"""Notes and the MIDI view.

A performance is a list of :class:`Note` in seconds. The MIDI view of a clip is
one piano track (program 0, no pitch bends) with every note inside
``[0, clip_seconds]``. Times are snapped to the MIDI tick grid
(:data:`TICKS_PER_SECOND`) before anything else is derived from them, so the roll
and the text steps computed from in-memory notes equal those computed from the
MIDI file read back.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pretty_midi

from .errors import MidiError

PIANO_LOW = 21  # A0
PIANO_HIGH = 108  # C8
NUM_KEYS = 88
# 480 ticks per beat at the default 120 bpm: one tick = 1/960 s.
MIDI_RESOLUTION = 480
MIDI_TEMPO = 120.0
TICKS_PER_SECOND = MIDI_RESOLUTION * MIDI_TEMPO / 60.0


@dataclass(frozen=True, order=True)
class Note:
    """One piano note: start/end in seconds, MIDI pitch 21..108, velocity 1..127."""

    start: float
    end: float
    pitch: int
    velocity: int

    @property
    def duration(self) -> float:
        return self.end - self.start


def note_name(pitch: int) -> str:
    """MIDI pitch -> scientific name, e.g. 60 -> ``C4``."""
    return pretty_midi.note_number_to_name(int(pitch))


def _to_tick(seconds: float) -> int:
    return int(round(seconds * TICKS_PER_SECOND))


def snap_notes(notes: Iterable[Note], max_seconds: float | None = None) -> list[Note]:
    """Snap times to the tick grid, clamp to ``[0, max_seconds]``, clip pitch and
    velocity to the piano, drop notes that end up empty; sorted."""
    max_tick = None if max_seconds is None else int(math.floor(max_seconds * TICKS_PER_SECOND + 1e-6))
    out = []
    for n in notes:
        if not PIANO_LOW <= int(n.pitch) <= PIANO_HIGH:
            continue
        s, e = max(_to_tick(n.start), 0), _to_tick(n.end)
        if max_tick is not None:
            e = min(e, max_tick)
        if e <= s:
            continue
        out.append(Note(s / TICKS_PER_SECOND, e / TICKS_PER_SECOND, int(n.pitch),
                        int(min(max(int(n.velocity), 1), 127))))
    return sorted(out)


def segment_notes(notes: Sequence[Note], start: float, end: float) -> list[Note]:
    """Notes of ``[start, end)`` in clip time: notes crossing an edge are cut at
    it, everything is shifted by ``-start`` and snapped to the tick grid."""
    cut = [Note(max(n.start, start) - start, min(n.end, end) - start, n.pitch, n.velocity)
           for n in notes if n.end > start and n.start < end]
    return snap_notes(cut, max_seconds=end - start)


def notes_to_midi(notes: Iterable[Note]) -> pretty_midi.PrettyMIDI:
    """One piano track, program 0, no pitch bends or control changes."""
    pm = pretty_midi.PrettyMIDI(resolution=MIDI_RESOLUTION, initial_tempo=MIDI_TEMPO)
    piano = pretty_midi.Instrument(program=0, name="Piano")
    for n in sorted(notes):
        piano.notes.append(pretty_midi.Note(velocity=int(n.velocity), pitch=int(n.pitch),
                                            start=float(n.start), end=float(n.end)))
    pm.instruments.append(piano)
    return pm


def midi_bytes(notes: Iterable[Note]) -> bytes:
    buf = io.BytesIO()
    notes_to_midi(notes).write(buf)
    return buf.getvalue()


def write_midi(notes: Iterable[Note], path: str | Path) -> None:
    Path(path).write_bytes(midi_bytes(notes))


def notes_from_pretty_midi(pm: pretty_midi.PrettyMIDI) -> list[Note]:
    """All non-drum notes of every track, merged (pitch bends ignored)."""
    notes = [Note(float(n.start), float(n.end), int(n.pitch), int(n.velocity))
             for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    return sorted(notes)


def read_midi(source: str | Path | bytes) -> list[Note]:
    """Read notes from a MIDI file path or bytes; raises :class:`MidiError`."""
    label = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        if isinstance(source, bytes):
            pm = pretty_midi.PrettyMIDI(io.BytesIO(source))
        else:
            pm = pretty_midi.PrettyMIDI(str(source))
    except Exception as exc:  # pretty_midi/mido raise many types for bad files
        raise MidiError(f"cannot read MIDI ({type(exc).__name__}: {exc}); "
                        "check that the file is a standard MIDI file", item=label) from exc
    return notes_from_pretty_midi(pm)


def notes_to_arrays(notes: Sequence[Note]) -> dict[str, np.ndarray]:
    """Column arrays ``pitch, start, end, velocity`` (for mir_eval, parquet, plots)."""
    return {
        "pitch": np.array([n.pitch for n in notes], dtype=np.int64),
        "start": np.array([n.start for n in notes], dtype=np.float64),
        "end": np.array([n.end for n in notes], dtype=np.float64),
        "velocity": np.array([n.velocity for n in notes], dtype=np.int64),
    }
