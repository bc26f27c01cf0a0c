"""Piano audio from notes: an additive synthesizer written here, or FluidSynth.

The additive piano (:func:`render_notes`) models each note as a sum of damped
partials of a stiff string:

- partial frequencies ``f_n = n f0 sqrt(1 + B n^2)`` with an inharmonicity
  coefficient ``B`` rising from about 1.3e-4 (A0) to 6e-3 (C8);
- two slightly detuned unison strings above the bass (slow beating);
- partial amplitudes ``n^-(1.6 - 0.6 v + 1.2 bass)`` (``v = velocity / 127``,
  ``bass`` rising from 0 at pitch 56 to 1 at pitch 26) times a mild hammer-position
  comb ``0.7 + 0.3 |sin(pi n / 8)|`` times a low-pass whose cutoff rises with
  velocity, so loud notes are brighter; the fundamental is boosted by
  :data:`FUNDAMENTAL_BOOST` so that transcription finds the right octave; each
  note has unit RMS over its partials times the level ``v^2``;
- exponential decay per partial, slower for low pitches (fundamental time
  constant ``6 s * 2^(-(pitch - 21) / 15)``) and faster for upper partials, times
  a shared two-stage envelope ``0.3 + 0.7 exp(-t / 0.4 s)`` (prompt sound, then
  after-sound);
- a 3 ms raised-cosine attack and, at note end, a damper release of
  :data:`RELEASE_SECONDS` (exponential, faded to zero).

Notes are summed, multiplied by the fixed :data:`OUTPUT_GAIN` and passed through a
soft limiter (identity below :data:`LIMITER_KNEE`), so velocity keeps its meaning
across files (no per-file peak normalisation). Rendering is deterministic.

Each note's partial sum is one matrix product: the damped phasor
``z_n^t`` is factored as ``z_n^(b*S) * z_n^j`` (block start ``b*S`` plus in-block
offset), so ``sum_n a_n Im(z_n^t)`` over a note is a ``(blocks x K) @ (K x S)``
product (BLAS) instead of ``K x samples`` sines.
"""

from __future__ import annotations

import contextlib
import functools
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import RenderError
from ..notes import Note


SYNTH_NAME = "copdata-additive-piano"
SYNTH_VERSION = 1
RELEASE_SECONDS = 0.15
ATTACK_SECONDS = 0.003
OUTPUT_GAIN = 0.3
LIMITER_KNEE = 0.7
FUNDAMENTAL_BOOST = 1.4  # a clear fundamental keeps transcription octave-correct
_BLOCK = 256
_MAX_PARTIALS = 40
_MAX_PARTIAL_HZ = 12000.0


def _pitch_hz(pitch: int) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12.0)


@functools.lru_cache(maxsize=1024)
def _partials(pitch: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(freq_hz, decay_per_s, string_weight)`` of every partial of ``pitch``."""
    f0 = _pitch_hz(pitch)
    inharm = 10.0 ** (-3.9 + 1.7 * (pitch - 21) / 87.0)
    n = np.arange(1, _MAX_PARTIALS + 1, dtype=np.float64)
    freq = n * f0 * np.sqrt(1.0 + inharm * n * n)
    keep = freq < min(0.45 * sample_rate, _MAX_PARTIAL_HZ)
    keep[0] = True
    n, freq = n[keep], freq[keep]
    tau0 = 6.0 * 2.0 ** (-(pitch - 21) / 15.0)
    decay = (1.0 / tau0) * (1.0 + 0.12 * (n - 1)) + 3e-7 * freq * freq
    if pitch >= 34:  # two unison strings, +-0.35 cent
        detune = 2.0 ** (0.35 / 1200.0)
        freq = np.concatenate([freq / detune, freq * detune])
        decay = np.concatenate([decay, decay * 1.07])
        n = np.concatenate([n, n])
        weight = np.full(freq.shape, 0.5)
    else:
        weight = np.ones(freq.shape)
    return freq, decay, np.stack([n, weight])


def _partial_amplitudes(pitch: int, velocity: int, sample_rate: int) -> np.ndarray:
    freq, _, nw = _partials(pitch, sample_rate)
    n, weight = nw
    loud = min(max(velocity, 1), 127) / 127.0
    cutoff = _pitch_hz(pitch) * (1.5 + 6.0 * loud ** 1.5) + 400.0 + 3500.0 * loud ** 2
    comb = (0.7 + 0.3 * np.abs(np.sin(np.pi * n / 8.0))) / (0.7 + 0.3 * math.sin(np.pi / 8.0))
    bass = min(max((56.0 - pitch) / 30.0, 0.0), 1.0)  # steeper roll-off in the bass
    shape = n ** -(1.6 - 0.6 * loud + 1.2 * bass) * comb / (1.0 + (freq / cutoff) ** 2)
    shape[n == 1] *= FUNDAMENTAL_BOOST
    # unit RMS per note: the unison copies of one partial add coherently
    shape /= math.sqrt(float(np.sum(weight * shape * shape)))
    return loud ** 2 * shape * weight


@functools.lru_cache(maxsize=256)
def _block_phasors(pitch: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``log z`` per partial and the in-block phasors ``z^j`` (real, imag parts)."""
    freq, decay, _ = _partials(pitch, sample_rate)
    log_z = (-decay + 2j * np.pi * freq) / sample_rate
    inblock = np.exp(np.outer(log_z, np.arange(_BLOCK)))
    return log_z, np.ascontiguousarray(inblock.real), np.ascontiguousarray(inblock.imag)


def _note_envelope(length: int, hold: int, sample_rate: int) -> np.ndarray:
    """Shared envelope: attack ramp, prompt/after-sound, damper release after ``hold``."""
    t = np.arange(length) / sample_rate
    env = 0.3 + 0.7 * np.exp(-t / 0.4)
    attack = max(int(ATTACK_SECONDS * sample_rate), 1)
    a = min(attack, length)
    env[:a] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(a) / attack)
    if hold < length:
        tr = np.arange(length - hold) / sample_rate
        release = np.exp(-tr / (RELEASE_SECONDS / 5.0))
        fade = max(int(0.02 * sample_rate), 1)
        release[-fade:] *= np.linspace(1.0, 0.0, fade) if len(release) >= fade else 0.0
        env[hold:] *= release
    return env


def _render_note(note: Note, sample_rate: int, max_samples: int | None) -> tuple[int, np.ndarray]:
    """Start sample and waveform of one note (not yet gain-scaled)."""
    start = int(round(note.start * sample_rate))
    hold = max(int(round(note.end * sample_rate)) - start, 1)
    length = hold + int(round(RELEASE_SECONDS * sample_rate))
    if max_samples is not None:
        length = min(length, max_samples - start)
    if length <= 0:
        return start, np.zeros(0)
    log_z, in_re, in_im = _block_phasors(int(note.pitch), sample_rate)
    amp = _partial_amplitudes(int(note.pitch), int(note.velocity), sample_rate)
    blocks = -(-length // _BLOCK)
    starts = np.exp(np.outer(log_z, np.arange(blocks) * _BLOCK)) * amp[:, None]
    # Im(s * u) = Re(s) Im(u) + Im(s) Re(u), summed over partials.
    wave = starts.real.T @ in_im + starts.imag.T @ in_re
    wave = wave.reshape(-1)[:length]
    return start, wave * _note_envelope(length, hold, sample_rate)


def _single_thread_blas():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only a speed-up
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def soft_limit(audio: np.ndarray, knee: float = LIMITER_KNEE) -> np.ndarray:
    """Identity for ``|x| <= knee``, then ``knee + (1-knee) tanh((|x|-knee)/(1-knee))``:
    continuous slope, output strictly inside (-1, 1)."""
    mag = np.abs(audio)
    over = mag > knee
    if np.any(over):
        head = 1.0 - knee
        audio = audio.copy()
        audio[over] = np.sign(audio[over]) * (knee + head * np.tanh((mag[over] - knee) / head))
    return audio


def _num_samples(notes: Sequence[Note], sample_rate: int, seconds: float | None) -> int:
    if seconds is not None:
        return int(round(seconds * sample_rate))
    end = max((n.end for n in notes), default=0.0)
    return int(round((end + RELEASE_SECONDS) * sample_rate)) if notes else 0


def render_notes(notes: Sequence[Note], sample_rate: int = 44100,
                 seconds: float | None = None) -> np.ndarray:
    """Render notes with the additive piano to float32 mono in ``[-1, 1]``.

    The output has ``round(seconds * sample_rate)`` samples (release tails are cut
    there), or when ``seconds`` is None lasts until the last release ends.
    """
    total = _num_samples(notes, sample_rate, seconds)
    mix = np.zeros(total, dtype=np.float64)
    # The per-note products are small: BLAS threads only add contention.
    with _single_thread_blas():
        for note in notes:
            if note.end <= note.start:
                continue
            start, wave = _render_note(note, sample_rate, total)
            if len(wave):
                mix[start:start + len(wave)] += wave
    return soft_limit(mix * OUTPUT_GAIN).astype(np.float32)


def fluidsynth_available() -> bool:
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth)
    except Exception:  # ImportError, or OSError when libfluidsynth is missing
        return False
    return True


def render_with_fluidsynth(notes: Sequence[Note], sample_rate: int, seconds: float | None,
                           soundfont: str | Path) -> np.ndarray:
    """Render with FluidSynth through ``pretty_midi.PrettyMIDI.fluidsynth``.

    Fixed gain (no peak normalisation) and the same soft limiter as the additive
    piano; length as in :func:`render_notes`. Raises :class:`RenderError` when
    pyfluidsynth/libfluidsynth or the SoundFont is missing.
    """
    from ..notes import notes_to_midi

    sf2 = Path(soundfont)
    if not sf2.is_file():
        raise RenderError("SoundFont file not found; pass an existing .sf2 file", item=str(sf2))
    if not fluidsynth_available():
        raise RenderError("FluidSynth is not installed: install the FluidSynth library "
                          "(e.g. `apt install fluidsynth` or `brew install fluid-synth`) and "
                          "`pip install pyfluidsynth`, or drop --soundfont to use the built-in "
                          "piano", item=str(sf2))
    try:
        audio = notes_to_midi(notes).fluidsynth(fs=sample_rate, sf2_path=str(sf2))
    except Exception as exc:
        raise RenderError(f"FluidSynth failed ({type(exc).__name__}: {exc}); check that the "
                          "SoundFont is a valid .sf2 file", item=str(sf2)) from exc
    total = _num_samples(notes, sample_rate, seconds)
    out = np.zeros(total, dtype=np.float64)
    n = min(total, len(audio))
    out[:n] = audio[:n]
    return soft_limit(out * 0.5).astype(np.float32)


def render_audio(notes: Sequence[Note], sample_rate: int, seconds: float | None,
                 soundfont: str | Path | None = None) -> np.ndarray:
    """FluidSynth with ``soundfont`` when given, otherwise the additive piano."""
    if soundfont is not None:
        return render_with_fluidsynth(notes, sample_rate, seconds, soundfont)
    return render_notes(notes, sample_rate, seconds)


def engine_name(soundfont: str | Path | None = None) -> str:
    """Name recorded in metadata for the engine :func:`render_audio` uses."""
    if soundfont is not None:
        return f"fluidsynth:{Path(soundfont).name}"
    return f"{SYNTH_NAME}-v{SYNTH_VERSION}"
