"""Transcription of a stream of audio blocks in bounded memory.

:func:`transcribe_blocks` gives the notes :meth:`BasicPitchTranscriber.transcribe` gives
for the whole signal, while holding only a few seconds of audio and a few
minutes of model output at a time:

1. **Model pass.** Blocks are resampled to 22050 Hz with soxr's streaming
   resampler (HQ, the same filter as the one-shot call, so the samples are
   identical), cut into basic-pitch's windows on the whole signal's grid
   (3840 leading zeros, 43844 samples every 36164) and run through the model
   in batches as they fill. The ``note`` and ``onset`` posteriors of every
   frame are appended to a temporary file (4 bytes x 176 per frame: 3.6 MB
   per minute of audio, on disk, not in memory); the pitch contour, which
   only feeds pitch bends, is dropped.
2. **Global onset scale.** basic-pitch's inferred onsets rescale frame
   differences by the maxima of the *whole* signal's onsets and frame
   differences; both maxima are read off the spooled posteriors.
3. **Note passes.** Notes are created (basic-pitch's
   ``output_to_notes_polyphonic`` with the melodia trick, on the inferred
   onsets computed with the global scale) on overlapping chunks of
   ``chunk_seconds`` plus ``context_seconds`` each side; a chunk keeps the
   notes that start inside it. Note times come from the global frame index
   (basic-pitch's ``model_frames_to_time``).

Seams give the same notes as a whole-file pass whenever no note, and no chain
of notes that claim each other's energy, runs longer than
``context_seconds`` (20 s by default); ``tests/test_transcribe_stream.py``
checks equality on rendered piano across many seams.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

import numpy as np

from ..errors import MediaError, SilentInputError, TooShortError
from ..notes import Note, snap_notes
from .base import SILENT_PEAK_DBFS
from .basic_pitch_grid import (FRAMES_PER_SECOND, HOP_SAMPLES, MODEL_SAMPLE_RATE, OVERLAP_FRAMES,
                               OVERLAP_SAMPLES, WINDOW_SAMPLES, WINDOWS_PER_CALL)

if TYPE_CHECKING:  # the streaming pass runs basic-pitch's model; no import at run time
    from .basic_pitch import BasicPitchTranscriber as Transcriber

CHUNK_SECONDS = 30.0
CONTEXT_SECONDS = 20.0
KEYS = 88
_ROW = 2 * KEYS  # spooled floats per frame: note posteriors, then onset posteriors
_HOLD_BACK = 64  # 22050 Hz samples kept back until the stream's length is known


@dataclass
class AudioSummary:
    """Facts of the whole stream gathered while transcribing it."""

    samples: int  # at the input sample rate
    peak: float
    sum_squares: float

    @property
    def rms_dbfs(self) -> float:
        rms = math.sqrt(self.sum_squares / self.samples) if self.samples else 0.0
        return 20 * math.log10(rms) if rms > 0 else -math.inf


class _PosteriorSpool:
    """``(T, 176)`` float32 rows in an unnamed temporary file (deleted on close)."""

    def __init__(self, folder: str | Path | None):
        self.file = tempfile.TemporaryFile(dir=folder, prefix="copdata-posteriors-")
        self.frames = 0

    def append(self, rows: np.ndarray) -> None:
        self.file.seek(self.frames * _ROW * 4)
        self.file.write(np.ascontiguousarray(rows, dtype=np.float32).tobytes())
        self.frames += rows.shape[0]

    def read(self, lo: int, hi: int) -> np.ndarray:
        self.file.seek(lo * _ROW * 4)
        data = np.fromfile(self.file, dtype=np.float32, count=(hi - lo) * _ROW)
        return data.reshape(hi - lo, _ROW)

    def close(self) -> None:
        self.file.close()


class _ModelPass:
    """Stage 1: blocks -> 22050 Hz -> windows -> model -> spooled posteriors."""

    def __init__(self, transcriber: Transcriber, sample_rate: int, spool: _PosteriorSpool):
        self.transcriber = transcriber
        self.sample_rate = int(sample_rate)
        self.spool = spool
        self.resampler = None
        if self.sample_rate != MODEL_SAMPLE_RATE:
            import soxr

            self.resampler = soxr.ResampleStream(self.sample_rate, MODEL_SAMPLE_RATE, 1,
                                                 dtype="float32", quality="HQ")
        # padded 22050 Hz signal: 3840 zeros, then the audio
        self.buffer = np.zeros(OVERLAP_SAMPLES // 2, np.float32)
        self.buffer_start = 0  # padded index of buffer[0]
        self.produced = OVERLAP_SAMPLES // 2  # padded samples received
        self.next_window = 0
        self.windows: list[np.ndarray] = []
        self.batch = max(1, transcriber.threads) * WINDOWS_PER_CALL

    def feed(self, block: np.ndarray) -> None:
        out = block if self.resampler is None else self.resampler.resample_chunk(block)
        self._append(np.asarray(out, dtype=np.float32))
        self._cut(final=False)

    def finish(self, input_samples: int) -> int:
        """Flush; returns the number of model frames of the whole signal."""
        if self.resampler is not None:
            self._append(np.asarray(self.resampler.resample_chunk(np.zeros(0, np.float32),
                                                                  last=True), np.float32))
        # the one-shot length: ceil(n * 22050 / sr) samples, zero-padded or trimmed
        n_model = int(math.ceil(input_samples * MODEL_SAMPLE_RATE / self.sample_rate))
        total = OVERLAP_SAMPLES // 2 + n_model
        if self.produced > total:
            keep = total - self.buffer_start
            self.buffer = self.buffer[:max(keep, 0)]
        self.produced = total
        n_windows = int(math.ceil(total / HOP_SAMPLES))
        pad = (n_windows - 1) * HOP_SAMPLES + WINDOW_SAMPLES - self.buffer_start - len(self.buffer)
        if pad > 0:
            self.buffer = np.concatenate([self.buffer, np.zeros(pad, np.float32)])
        self._cut(final=True, n_windows=n_windows)
        self._run()
        return int(math.floor(n_model * (FRAMES_PER_SECOND / MODEL_SAMPLE_RATE)))

    def _append(self, samples: np.ndarray) -> None:
        if samples.size:
            self.buffer = np.concatenate([self.buffer, samples])
            self.produced += samples.size

    def _cut(self, final: bool, n_windows: int | None = None) -> None:
        while True:
            k = self.next_window
            lo = k * HOP_SAMPLES
            hi = lo + WINDOW_SAMPLES
            if final:
                if k >= n_windows:
                    break
            elif hi > self.produced - _HOLD_BACK:
                break
            a = lo - self.buffer_start
            self.windows.append(self.buffer[a:a + WINDOW_SAMPLES].copy())
            self.next_window += 1
            if len(self.windows) >= self.batch:
                self._run()
        # keep only what later windows need
        drop = self.next_window * HOP_SAMPLES - self.buffer_start
        if drop > 0:
            self.buffer = self.buffer[drop:].copy()
            self.buffer_start += drop

    def _run(self) -> None:
        if not self.windows:
            return
        windows = np.stack(self.windows)[:, :, None]
        self.windows = []
        out = self.transcriber.run_windows(windows)
        half = OVERLAP_FRAMES // 2
        note = out["note"][:, half:-half, :].reshape(-1, KEYS)
        onset = out["onset"][:, half:-half, :].reshape(-1, KEYS)
        self.spool.append(np.concatenate([note, onset], axis=1))


def _frame_diff(frames64: np.ndarray) -> np.ndarray:
    """basic-pitch's ``get_infered_onsets`` frame difference (n_diff = 2) for
    rows 2.. of ``frames64`` (the first two rows are history)."""
    d1 = frames64[2:] - frames64[1:-1]
    d2 = frames64[2:] - frames64[:-2]
    diff = np.min([d1, d2], axis=0)
    diff[diff < 0] = 0
    return diff


def _rows_with_history(spool: _PosteriorSpool, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Note and onset rows ``[lo, hi)``; note rows as float64 with two rows of
    history before ``lo`` (zeros before frame 0, as basic-pitch pads)."""
    first = max(lo - 2, 0)
    rows = spool.read(first, hi)
    note, onset = rows[:, :KEYS], rows[:, KEYS:]
    history = np.zeros((2 - (lo - first), KEYS))
    note64 = np.concatenate([history, note.astype(np.float64)])
    return note64, onset[lo - first:]


def _global_scale(spool: _PosteriorSpool, n_frames: int, step: int) -> tuple[np.float32, np.float64]:
    """Maxima over the whole signal of the onsets and of the frame differences."""
    max_onset = None
    max_diff = None
    for lo in range(0, n_frames, step):
        hi = min(lo + step, n_frames)
        note64, onset = _rows_with_history(spool, lo, hi)
        diff = _frame_diff(note64)
        diff[:max(0, 2 - lo)] = 0  # frame_diff[:n_diff] = 0
        m_on, m_diff = onset.max(), diff.max()
        max_onset = m_on if max_onset is None else max(max_onset, m_on)
        max_diff = m_diff if max_diff is None else max(max_diff, m_diff)
    return max_onset, max_diff


def _chunk_notes(transcriber: Transcriber, spool: _PosteriorSpool, lo: int, hi: int,
                 max_onset, max_diff) -> list[tuple[int, int, int, float]]:
    note64, onset = _rows_with_history(spool, lo, hi)
    frames = note64[2:].astype(np.float32)
    diff = _frame_diff(note64)
    diff[:max(0, 2 - lo)] = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        diff = max_onset * diff / max_diff
    inferred = np.max([onset, diff], axis=0)
    return transcriber._note_creation.output_to_notes_polyphonic(
        frames, inferred, onset_thresh=transcriber.onset_threshold,
        frame_thresh=transcriber.frame_threshold, min_note_len=transcriber.min_note_frames,
        infer_onsets=False, max_freq=None, min_freq=None, melodia_trick=True)


def transcribe_blocks(transcriber: Transcriber, blocks: Iterable[np.ndarray], sample_rate: int,
                      *, item: str | None = None, spool_dir: str | Path | None = None,
                      chunk_seconds: float = CHUNK_SECONDS,
                      context_seconds: float = CONTEXT_SECONDS) -> tuple[list[Note], AudioSummary]:
    """Notes of the mono float32 stream ``blocks`` at ``sample_rate`` (see the
    module docstring), and the stream's length, peak and energy.

    Raises :class:`MediaError` for NaN/inf samples and
    :class:`SilentInputError` for a stream whose peak is below -80 dBFS, like
    :meth:`BasicPitchTranscriber.transcribe`. ``spool_dir`` holds the temporary
    posterior file (default: the system's temporary folder).
    """
    if chunk_seconds <= 0 or context_seconds < 0:
        raise ValueError("chunk_seconds must be > 0 and context_seconds >= 0")
    spool = _PosteriorSpool(spool_dir)
    try:
        model = _ModelPass(transcriber, sample_rate, spool)
        summary = AudioSummary(0, 0.0, 0.0)
        for block in blocks:
            block = np.asarray(block, dtype=np.float32).reshape(-1)
            if not block.size:
                continue
            if not np.all(np.isfinite(block)):
                raise MediaError(f"audio has {int(np.sum(~np.isfinite(block)))} NaN/inf samples "
                                 f"near {summary.samples / sample_rate:.1f} s; fix the decoder or "
                                 "drop this item", item=item)
            summary.samples += block.size
            summary.peak = max(summary.peak, float(np.max(np.abs(block))))
            summary.sum_squares += float(np.dot(block.astype(np.float64), block))
            model.feed(block)
        if summary.samples == 0:
            raise TooShortError("audio has no samples", item=item)
        if summary.peak <= 10 ** (SILENT_PEAK_DBFS / 20):
            level = "-inf" if summary.peak == 0 else f"{20 * math.log10(summary.peak):.1f}"
            raise SilentInputError(f"audio peak is {level} dBFS (silence threshold "
                                   f"{SILENT_PEAK_DBFS:.0f} dBFS); nothing to transcribe",
                                   item=item)
        n_frames = model.finish(summary.samples)
        if n_frames < 2:
            return [], summary
        chunk = max(1, int(round(chunk_seconds * FRAMES_PER_SECOND)))
        context = int(round(context_seconds * FRAMES_PER_SECOND))
        max_onset, max_diff = _global_scale(spool, n_frames, chunk)
        times = transcriber._note_creation.model_frames_to_time(n_frames)
        events = []
        for a in range(0, n_frames, chunk):
            b = min(a + chunk, n_frames)
            lo, hi = max(0, a - context), min(n_frames, b + context)
            for s, e, pitch, amplitude in _chunk_notes(transcriber, spool, lo, hi,
                                                      max_onset, max_diff):
                if a <= lo + s < b:
                    events.append((lo + s, lo + e, pitch, amplitude))
    finally:
        spool.close()
    notes = [Note(float(times[s]), float(times[e]), int(p), int(np.round(127 * a)))
             for s, e, p, a in events]
    return snap_notes(notes, max_seconds=summary.samples / sample_rate), summary

