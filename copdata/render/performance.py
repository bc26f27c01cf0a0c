"""Seeded procedural piano performances (the notes of the ``synth`` source).

A performance is a sequence of back-to-back *sections*. Each section draws a
style, a tempo, a key (tonic and mode), a register and a dynamic level with a
crescendo or diminuendo, then writes notes in that style:

``scale``       runs of eighths/sixteenths up and down the key's scale, one hand
                or both hands in octaves;
``arpeggio``    broken chords of a chord progression over a held bass note;
``chords``      block chords (three or four voices) over a bass octave or root;
``two_hand``    a right-hand melody over a left-hand accompaniment (Alberti
                bass, "oom-pah" bass and chord, or held bass and chord).

Everything is drawn from one :class:`numpy.random.Generator` seeded with the
seed, so one seed always gives the same notes. Velocities lie in 30..120,
pitches in 21..108, and at most :data:`MAX_POLYPHONY` notes sound at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..notes import PIANO_HIGH, PIANO_LOW, Note

GENERATOR_VERSION = 1
STYLES = ("scale", "arpeggio", "chords", "two_hand")
MAX_POLYPHONY = 6
VELOCITY_MIN, VELOCITY_MAX = 30, 120
PITCH_CLASS_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MODES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 11),  # harmonic minor: a real dominant chord
}
# Chord progressions as 0-based scale degrees.
PROGRESSIONS = {
    "major": ((0, 4, 5, 3), (1, 4, 0, 0), (0, 3, 4, 0), (5, 3, 0, 4), (0, 5, 3, 4)),
    "minor": ((0, 3, 4, 0), (0, 5, 2, 4), (0, 3, 0, 4), (0, 5, 3, 4)),
}


@dataclass
class Section:
    """Parameters of one section (times in seconds)."""

    start: float
    end: float
    style: str
    tempo_bpm: float
    tonic: int  # pitch class 0..11
    mode: str
    center: int  # right-hand register centre (MIDI pitch)
    velocity: float  # base velocity
    velocity_slope: float  # velocity change over the section (crescendo > 0)

    @property
    def beat(self) -> float:
        return 60.0 / self.tempo_bpm

    @property
    def key(self) -> str:
        return f"{PITCH_CLASS_NAMES[self.tonic]} {self.mode}"

    def to_json(self) -> dict:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "style": self.style,
                "tempo_bpm": round(self.tempo_bpm, 1), "key": self.key,
                "register_center": self.center, "velocity": round(self.velocity, 1),
                "dynamics": "crescendo" if self.velocity_slope > 0 else "diminuendo"}


class _Writer:
    """Collects notes of one section with velocity shaping and clamping."""

    def __init__(self, section: Section, rng: np.random.Generator):
        self.section = section
        self.rng = rng
        self.notes: list[Note] = []

    def velocity(self, t: float, accent: float = 0.0, offset: float = 0.0) -> int:
        s = self.section
        frac = (t - s.start) / max(s.end - s.start, 1e-6)
        v = s.velocity + s.velocity_slope * (frac - 0.5) + accent + offset + self.rng.normal(0, 4)
        return int(np.clip(round(v), VELOCITY_MIN, VELOCITY_MAX))

    def add(self, start: float, duration: float, pitch: int, accent: float = 0.0,
            offset: float = 0.0) -> None:
        end = min(start + duration, self.section.end)
        if end - start < 0.03:
            return
        self.notes.append(Note(float(start), float(end), _fold(pitch),
                               self.velocity(start, accent, offset)))


def _fold(pitch: int) -> int:
    """Move a pitch by octaves into the piano range."""
    pitch = int(pitch)
    while pitch < PIANO_LOW:
        pitch += 12
    while pitch > PIANO_HIGH:
        pitch -= 12
    return pitch


def _scale_pitch(section: Section, degree: int, base_octave_pitch: int) -> int:
    """Pitch of scale ``degree`` (any integer) counted from the tonic nearest below
    ``base_octave_pitch``."""
    steps = MODES[section.mode]
    root = base_octave_pitch - ((base_octave_pitch - section.tonic) % 12)
    octave, idx = divmod(degree, 7)
    return root + 12 * octave + steps[idx]


def _degree_near(section: Section, pitch: int) -> int:
    """Scale degree (relative to the tonic below C4 = 60) closest to ``pitch``."""
    best, best_d = 0, 1e9
    for d in range(-30, 40):
        dist = abs(_scale_pitch(section, d, 60) - pitch)
        if dist < best_d:
            best, best_d = d, dist
    return best


def _chord_degrees(root_degree: int, size: int = 3) -> list[int]:
    return [root_degree + 2 * i for i in range(size)]


def _progression(section: Section, rng: np.random.Generator) -> tuple[int, ...]:
    options = PROGRESSIONS[section.mode]
    return options[int(rng.integers(len(options)))]


LOW_BASS = 33  # lowest pitch the generator plays: the bottom octave transcribes poorly


def _bass_center(section: Section) -> int:
    return max(section.center - 19, 45)


def _low(pitch: int) -> int:
    """An octave below ``pitch`` when that stays above :data:`LOW_BASS`, else ``pitch``."""
    return pitch - 12 if pitch - 12 >= LOW_BASS else pitch


def _style_scale(w: _Writer) -> None:
    s, rng = w.section, w.rng
    step = s.beat / 4 if s.tempo_bpm < 100 and rng.random() < 0.5 else s.beat / 2
    octaves = int(rng.integers(1, 3))
    both_hands = rng.random() < 0.4
    start_degree = _degree_near(s, s.center - 6)
    run = list(range(0, 7 * octaves + 1)) + list(range(7 * octaves - 1, 0, -1))
    t, i = s.start, int(rng.integers(len(run)))
    while t < s.end - 0.05:
        d = start_degree + run[i % len(run)]
        accent = 10.0 if (i % 4 == 0) else 0.0
        w.add(t, step * 0.9, _scale_pitch(s, d, 60), accent)
        low = _low(_low(_scale_pitch(s, d, 60)))
        if both_hands and low != _scale_pitch(s, d, 60):
            w.add(t, step * 0.9, low, accent, offset=-6)
        t += step
        i += 1


def _style_arpeggio(w: _Writer) -> None:
    s, rng = w.section, w.rng
    step = s.beat / 2 if s.tempo_bpm > 100 or rng.random() < 0.5 else s.beat / 3
    per_chord = int(rng.choice([6, 8])) if step >= s.beat / 2 else 12
    prog = _progression(s, rng)
    bass_c = _bass_center(s)
    low_degree = _degree_near(s, s.center - 10)
    t, c = s.start, 0
    while t < s.end - 0.05:
        root = prog[c % len(prog)]
        dur = per_chord * step
        bass = _scale_pitch(s, root, bass_c)
        w.add(t, min(dur * 0.95, 2 * s.beat), bass, accent=6.0, offset=-8)
        chord = [d + 7 * ((low_degree - root) // 7 + 1) for d in _chord_degrees(root)]
        pattern = chord + [chord[0] + 7] + chord[::-1][1:] if per_chord != 6 else chord + [chord[0] + 7] + chord[1:][::-1]
        pattern = (pattern * 3)[:per_chord]
        for j, d in enumerate(pattern):
            tj = t + j * step
            if tj >= s.end - 0.05:
                break
            w.add(tj, step * 0.95, _scale_pitch(s, d, 60), accent=6.0 if j == 0 else 0.0)
        t += dur
        c += 1


def _style_chords(w: _Writer) -> None:
    s, rng = w.section, w.rng
    beats_per_chord = int(rng.choice([1, 2, 2, 4]))
    dur = beats_per_chord * s.beat
    while dur < 0.35:
        dur *= 2
    size = int(rng.choice([3, 4]))
    prog = _progression(s, rng)
    bass_c = _bass_center(s)
    low_degree = _degree_near(s, s.center - 7)
    octave_bass = rng.random() < 0.5
    t, c = s.start, 0
    while t < s.end - 0.05:
        root = prog[c % len(prog)]
        bass = _scale_pitch(s, root, bass_c)
        w.add(t, dur * 0.9, bass, accent=4.0, offset=-6)
        if octave_bass and bass - 12 >= LOW_BASS:
            w.add(t, dur * 0.9, bass - 12, accent=4.0, offset=-10)
        inv = int(rng.integers(0, 3))
        degrees = _chord_degrees(root, size)
        degrees = degrees[inv:] + [d + 7 for d in degrees[:inv]]
        shift = 7 * ((low_degree - degrees[0]) // 7 + 1)
        legato = float(rng.uniform(0.6, 0.95))
        for d in degrees[:4]:
            w.add(t, dur * legato, _scale_pitch(s, d + shift, 60), accent=8.0 if c % 2 == 0 else 0.0)
        t += dur
        c += 1


_RHYTHMS = ((1.0,), (0.5, 0.5), (1.5, 0.5), (0.5, 0.5, 1.0), (2.0,), (0.75, 0.25))


def _melody(w: _Writer, t0: float, t1: float) -> None:
    s, rng = w.section, w.rng
    degree = _degree_near(s, s.center)
    lo, hi = degree - 6, degree + 7
    t = t0
    while t < t1 - 0.05:
        for beats in _RHYTHMS[int(rng.integers(len(_RHYTHMS)))]:
            if t >= t1 - 0.05:
                break
            degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), lo, hi))
            dur = beats * s.beat
            w.add(t, dur * float(rng.uniform(0.8, 0.98)), _scale_pitch(s, degree, 60), accent=6.0)
            t += dur


def _style_two_hand(w: _Writer) -> None:
    s, rng = w.section, w.rng
    _melody(w, s.start, s.end)
    prog = _progression(s, rng)
    bass_c = _bass_center(s)
    kind = ("alberti", "oompah", "held")[int(rng.integers(3))]
    bar = 4 * s.beat if s.beat < 0.6 else 2 * s.beat
    t, c = s.start, 0
    while t < s.end - 0.05:
        root = prog[c % len(prog)]
        chord = [_scale_pitch(s, d, bass_c) for d in _chord_degrees(root)]
        if kind == "alberti":
            step = s.beat / 2
            order = (0, 2, 1, 2)
            for j in range(int(round(bar / step))):
                w.add(t + j * step, step * 0.95, chord[order[j % 4]], offset=-12)
        elif kind == "oompah":
            for j in range(int(round(bar / s.beat))):
                tj = t + j * s.beat
                if j % 2 == 0:
                    w.add(tj, s.beat * 0.85, _low(chord[0]), accent=4.0, offset=-8)
                else:
                    for p in chord:
                        w.add(tj, s.beat * 0.7, p, offset=-14)
        else:
            w.add(t, min(bar * 0.95, 2 * s.beat), _low(chord[0]), offset=-8)
            for p in chord[1:]:
                w.add(t + s.beat, min(bar * 0.95 - s.beat, 2 * s.beat), p, offset=-14)
        t += bar
        c += 1


_STYLE_FUNCS: dict[str, Callable[[_Writer], None]] = {
    "scale": _style_scale, "arpeggio": _style_arpeggio,
    "chords": _style_chords, "two_hand": _style_two_hand,
}


def _draw_section(rng: np.random.Generator, start: float, seconds: float) -> Section:
    length = float(rng.uniform(4.0, 9.0))
    end = min(start + length, seconds)
    if seconds - end < 2.0:  # no tiny last section
        end = seconds
    mode = "major" if rng.random() < 0.6 else "minor"
    return Section(start=start, end=end, style=STYLES[int(rng.integers(len(STYLES)))],
                   tempo_bpm=float(rng.uniform(66, 150)), tonic=int(rng.integers(12)), mode=mode,
                   center=int(rng.integers(60, 82)), velocity=float(rng.uniform(45, 100)),
                   velocity_slope=float(rng.choice([-1, 1]) * rng.uniform(5, 25)))


def _limit_polyphony(notes: list[Note], limit: int) -> list[Note]:
    """Shorten notes so that at most ``limit`` sound at once (earliest-ending
    sounding note is cut at the new onset)."""
    out: list[Note] = []
    sounding: list[int] = []  # indices into out
    for n in sorted(notes):
        sounding = [i for i in sounding if out[i].end > n.start]
        # a new onset of the same key ends the previous one
        for i in [i for i in sounding if out[i].pitch == n.pitch]:
            out[i] = Note(out[i].start, n.start, out[i].pitch, out[i].velocity)
            sounding.remove(i)
        while len(sounding) >= limit:
            i = min(sounding, key=lambda j: out[j].end)
            out[i] = Note(out[i].start, n.start, out[i].pitch, out[i].velocity)
            sounding.remove(i)
        out.append(n)
        sounding.append(len(out) - 1)
    return sorted(n for n in out if n.end - n.start >= 0.02)


def generate_performance(seed: int, seconds: float) -> tuple[list[Note], dict]:
    """Notes of a ``seconds``-long procedural performance and its metadata.

    Deterministic for ``seed``. Metadata (JSON-serializable): ``generator``,
    ``version``, ``seed``, ``seconds``, ``styles`` (in order of first use),
    ``style`` (the longest section's), ``tempo_bpm`` and ``key`` of the longest
    section, and ``sections`` (start, end, style, tempo, key, register, dynamics).
    """
    if seconds <= 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    rng = np.random.default_rng(np.random.SeedSequence([GENERATOR_VERSION, int(seed) & 0xFFFFFFFF]))
    sections: list[Section] = []
    notes: list[Note] = []
    t = 0.0
    while t < seconds - 1e-6:
        section = _draw_section(rng, t, seconds)
        writer = _Writer(section, rng)
        _STYLE_FUNCS[section.style](writer)
        notes.extend(writer.notes)
        sections.append(section)
        t = section.end
    notes = _limit_polyphony([n for n in notes if n.start < seconds], MAX_POLYPHONY)
    longest = max(sections, key=lambda s: s.end - s.start)
    styles = list(dict.fromkeys(s.style for s in sections))
    meta = {
        "generator": "copdata.render.performance", "version": GENERATOR_VERSION,
        "seed": int(seed), "seconds": float(seconds), "styles": styles,
        "style": longest.style, "tempo_bpm": round(longest.tempo_bpm, 1), "key": longest.key,
        "sections": [s.to_json() for s in sections],
    }
    return notes, meta
