"""Post-processing of transcribed notes: octave doublings and note ends.

Both steps target basic-pitch's two measured faults on real piano (OMAPS
development pieces 001-025, ``benchmarks/bench_transcribe_real.py``): its
matched notes last a median 1.66x the labelled key-down time, and 37% of its
false positives sit an octave from a labelled note with the same onset, most
of them (58%) an octave *below* it.

* ``octave``: drop a note when another note an octave away starts within
  ``ONSET_TOLERANCE`` (50 ms, mir_eval's onset tolerance) and is louder: an
  octave above it and the note's velocity <= ``BELOW_RATIO`` (0.7) x its
  velocity, or an octave below it and the note's velocity <= ``ABOVE_RATIO``
  (0.6) x its velocity. Played octaves are common in piano music, so only
  clearly weaker partners go; the ratios were chosen on 001-025.
* ``ends``: every note keeps its onset and lasts ``END_SCALE`` (0.5) x its
  transcribed duration.
* ``floor``: a note shorter than ``MIN_DURATION`` (0.1 s) is lengthened to it,
  but never past the next onset of the same pitch; longer notes are unchanged.
  This targets Transkun on webcam-microphone audio: labelled notes of 0.1-0.2 s
  end too early in 44% of matches. ``MIN_DURATION`` was chosen on the odd
  pieces of 001-025 (0.06-0.12 s tried) and checked on the even ones.

Measured on 001-025 (basic-pitch raw: onset F1 0.692, with-offset F1 0.156):
``octave`` 0.696 / 0.157, ``ends`` 0.692 / 0.202, both 0.696 / 0.203: what
post-processing can fix is small; a piano-specific transcriber (Transkun) is
the fix (see docs/transcription.md). Neither step is on by default: ``--note-post``
turns them on and ``dataset.json`` records which ran.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from ..errors import TranscriberError
from ..notes import Note, snap_notes

ONSET_TOLERANCE = 0.05
BELOW_RATIO = 0.7  # a note with a louder partner an octave above it
ABOVE_RATIO = 0.6  # a note with a louder partner an octave below it
END_SCALE = 0.5
MIN_DURATION = 0.1
STEPS = ("octave", "ends", "floor")
POSTPROCESSINGS = ("raw", "octave", "ends", "octave+ends", "floor")  # the benchmark's variants


def drop_octave_doublings(notes: Sequence[Note], below_ratio: float = BELOW_RATIO,
                          above_ratio: float = ABOVE_RATIO,
                          tolerance: float = ONSET_TOLERANCE) -> list[Note]:
    """``notes`` without the weaker note of each octave pair with one onset (see
    the module docstring); order kept."""
    by_pitch: dict[int, list[Note]] = {}
    for n in notes:
        by_pitch.setdefault(n.pitch, []).append(n)

    def louder_partner(n: Note, pitch: int, ratio: float) -> bool:
        return any(abs(m.start - n.start) <= tolerance and n.velocity <= ratio * m.velocity
                   for m in by_pitch.get(pitch, ()))

    return [n for n in notes if not (louder_partner(n, n.pitch + 12, below_ratio)
                                     or louder_partner(n, n.pitch - 12, above_ratio))]


def shorten_ends(notes: Iterable[Note], scale: float = END_SCALE) -> list[Note]:
    """Each note with its onset kept and its duration times ``scale`` (0 < scale <= 1)."""
    if not 0.0 < scale <= 1.0:
        raise TranscriberError(f"end scale must be in (0, 1], got {scale}")
    return [Note(n.start, n.start + (n.end - n.start) * scale, n.pitch, n.velocity) for n in notes]


def floor_ends(notes: Iterable[Note], minimum: float = MIN_DURATION) -> list[Note]:
    """Each note lasting at least ``minimum`` seconds, cut at the next onset of
    its pitch (never shortened below its own duration); onsets kept, sorted."""
    if not minimum > 0.0:
        raise TranscriberError(f"minimum duration must be positive, got {minimum}")
    ordered = sorted(notes, key=lambda n: (n.pitch, n.start, n.end))
    out = []
    for i, n in enumerate(ordered):
        end = max(n.end, n.start + minimum)
        following = ordered[i + 1] if i + 1 < len(ordered) else None
        if following is not None and following.pitch == n.pitch:
            end = max(n.end, min(end, following.start))
        out.append(Note(n.start, end, n.pitch, n.velocity))
    return sorted(out)


def check_steps(steps: Iterable[str]) -> tuple[str, ...]:
    """Validated, ordered post-processing steps (``octave``, then ``ends``, then
    ``floor``)."""
    steps = tuple(dict.fromkeys(s for s in steps if s and s != "raw"))
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise TranscriberError(f"unknown note post-processing {unknown}; choose from "
                               f"{', '.join(STEPS)}", item=",".join(unknown))
    return tuple(s for s in STEPS if s in steps)


def apply_steps(notes: Sequence[Note], steps: Iterable[str]) -> list[Note]:
    """``notes`` with the post-processing ``steps`` applied (see :func:`check_steps`)."""
    out = list(notes)
    for step in check_steps(steps):
        out = _STEP_FUNCTIONS[step](out)
    return snap_notes(out)


_STEP_FUNCTIONS = {"octave": drop_octave_doublings, "ends": shorten_ends, "floor": floor_ends}


def postprocess(notes: Sequence[Note], variant: str) -> list[Note]:
    """The benchmark's variant (``raw``, ``octave``, ``ends``, ``octave+ends``, ``floor``)."""
    return apply_steps(notes, variant.split("+"))
