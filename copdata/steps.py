"""The text-steps view: a chain video -> keys -> notes -> sound, from the MIDI.

Steps are a pure function of the clip's notes (as read from ``notes.mid``), the
clip length, the fps and the source metadata, so ``copdata validate`` can
recompute them and check that every number they state is true of the clip.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .notes import Note, note_name

MIDDLE_C = 60
STEP_NAMES = ("video", "keys", "notes", "sound")


def _fmt(x: float) -> str:
    return f"{x:g}"


def _count(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def max_polyphony(notes: Sequence[Note]) -> int:
    """Largest number of notes sounding at one instant (ends are exclusive)."""
    events = sorted([(n.start, 1) for n in notes] + [(n.end, -1) for n in notes],
                    key=lambda e: (e[0], e[1]))
    best = cur = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def _dynamics(mean_velocity: float) -> str:
    for limit, word in ((40, "very soft (pp)"), (60, "soft (p)"), (80, "moderate (mf)"),
                        (100, "loud (f)")):
        if mean_velocity < limit:
            return word
    return "very loud (ff)"


def make_steps(notes: Sequence[Note], clip_seconds: float, fps: float,
               meta: dict | None = None, claims: dict | None = None) -> list[dict]:
    """Build the ordered steps ``[{"step": name, "text": ...}, ...]``.

    Every number stated is computed here from ``notes``: the clip length and
    fps, the note count, notes per second, distinct keys, pitch range (note
    names), notes below / from middle C (C4), velocity range, and the largest
    number of simultaneous notes. Source metadata contributes words only (title,
    performer, style), never numbers about the notes.

    ``claims`` (the clip row's ``qa["claims"]``) says what the QA stage
    confirmed: the video step says "a top-down view of a piano keyboard" only
    when ``claims["keyboard"]`` and the sound step says "solo piano" only when
    ``claims["solo_piano"]``; otherwise the wording is neutral ("the
    performance", "the notes heard"). ``claims=None`` (datasets built
    before QA) keeps both statements.
    """
    meta = meta or {}
    notes = sorted(notes)
    keyboard = claims is None or bool(claims.get("keyboard"))
    solo = claims is None or bool(claims.get("solo_piano"))
    what = "a top-down view of a piano keyboard" if keyboard else "the performance"
    title = meta.get("title")
    by = meta.get("uploader") or meta.get("performer")
    style = meta.get("style")
    desc = f"The video shows {what} for {_fmt(clip_seconds)} s at {_fmt(fps)} frames per second"
    if title:
        desc += f", from \"{title}\"" + (f" by {by}" if by else "")
    if style:
        desc += f"; the performance is {style}"
    steps = [{"step": "video", "text": desc + "."}]
    if not notes:
        steps += [
            {"step": "keys", "text": "No keys are pressed during the clip."},
            {"step": "notes", "text": "The clip contains 0 notes, so it has no pitch range."},
            {"step": "sound", "text": "The piano is silent." if solo else "No notes are heard."},
        ]
        return steps
    pitches = np.array([n.pitch for n in notes])
    vels = np.array([n.velocity for n in notes])
    lo, hi = int(pitches.min()), int(pitches.max())
    keys = len(set(pitches.tolist()))
    below = int((pitches < MIDDLE_C).sum())
    above = len(notes) - below
    if below and above:
        hands = (f"{_count(below, 'note')} below middle C (left-hand register) and "
                 f"{above} from middle C up (right-hand register)")
    elif below:
        hands = f"all {_count(below, 'note')} below middle C (left-hand register)"
    else:
        hands = f"all {_count(above, 'note')} at or above middle C (right-hand register)"
    steps.append({"step": "keys", "text": (
        f"{_count(keys, 'distinct key')} pressed, from {note_name(lo)} to {note_name(hi)}; {hands}.")})
    nps = len(notes) / clip_seconds if clip_seconds > 0 else 0.0
    steps.append({"step": "notes", "text": (
        f"The clip contains {_count(len(notes), 'note')} ({nps:.2f} notes per second) with pitches from "
        f"{note_name(lo)} to {note_name(hi)} and velocities from {int(vels.min())} to "
        f"{int(vels.max())}; at most {_count(max_polyphony(notes), 'note')} sounding at once.")})
    steps.append({"step": "sound", "text": (
        ("The result is solo piano, " if solo else "The notes heard are ")
        + f"{_dynamics(float(vels.mean()))} on average, spanning "
        f"{note_name(lo)} to {note_name(hi)}.")})
    return steps


def caption(steps: Sequence[dict]) -> str:
    """The first step's text (used as a text prompt)."""
    return steps[0]["text"] if steps else ""
