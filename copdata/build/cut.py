"""Stage 3 of an item: cut one clip (frames, audio, MIDI, roll, steps, row) and write it."""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np

from ..dataset.integrity import view_hashes
from ..dataset.rows import ClipRow, ClipStats
from ..dataset.store import ClipWriter, derive_views
from ..ids import clip_id
from ..media.blocks import AudioCursor
from ..media.encode import as_written, full_scale_gain
from ..qa.stage import ClipObserver, audio_margin, clip_qa
from ..sources.base import BuildSettings, SourceItem
from .plan import ClipSpan, ItemNotes, clip_meta


def _fill_clip(frames: Iterator[np.ndarray], count: int, encoder, observer=None) -> tuple[int, tuple]:
    shape = ()
    written = 0
    for _ in range(count):
        try:
            rgb = next(frames)
        except StopIteration:
            break
        shape = (rgb.height, rgb.width, 3) if hasattr(rgb, "height") else rgb.shape
        if encoder is not None:
            encoder.write(rgb)
        if observer is not None:
            observer(rgb)
        written += 1
    return written, shape


def fit_full_scale(audio: np.ndarray, gain: float = 1.0) -> tuple[np.ndarray, float]:
    """``audio`` times ``gain`` (the item's :func:`~copdata.media.encode.full_scale_gain`),
    and lower still if the clip would still peak above full scale (a safety net:
    the 16-bit file never hard-clips); returns the audio and the gain applied."""
    peak = float(np.max(np.abs(audio))) * gain if len(audio) else 0.0
    gain *= full_scale_gain(peak)
    if gain == 1.0:
        return audio, 1.0
    return (audio * np.float32(gain)).astype(np.float32), gain


class ClipCutter:
    """Stage 3: write the clips of one item, in order, from its frame stream.

    :meth:`submit` cuts one span: on the calling thread it skips frames up to
    the span and encodes the span's frames (the QA stage's
    :class:`~copdata.qa.stage.ClipObserver` sees them as they go); the rest,
    *finishing* the clip, runs on one background thread while the caller
    encodes the next span: the QA stage (:func:`copdata.qa.stage.clip_qa` on
    the span's audio with a margin for offset correction), audio, MIDI, roll
    and steps, and the rename into place. At most one clip is finishing at a
    time (``submit`` first waits for the one before), so memory stays bounded
    and clips are finished in order. :meth:`rows` waits for the last one and
    returns the :class:`ClipRow` of every clip written; a clip the QA
    thresholds reject is in ``rejected`` instead. When the video or audio
    ends inside a span, ``ended`` is set and ``warning`` says so. An error
    while finishing a clip is raised by the next :meth:`submit` or by
    :meth:`rows`; :meth:`close` waits for the clip in flight, so the caller
    can remove ``written`` after a failure.
    """

    def __init__(self, item: SourceItem, notes: ItemNotes, settings: BuildSettings, out_dir: str,
                 source_offset: dict | None = None):
        self.item, self.notes, self.settings, self.out_dir = item, notes, settings, out_dir
        self.source_offset = source_offset  # the item's one offset (--qa-correct-offset)
        self.frames = notes.performance.frames()
        self.audio = AudioCursor(notes.performance.audio_blocks())
        self.cursor = 0  # frames consumed
        self.written: list[Path] = []
        self.rejected: list[dict] = []
        self.warning: str | None = None
        self.ended = False
        self._rows: list[ClipRow] = []
        self._pool: ThreadPoolExecutor | None = None
        self._finishing: Future | None = None

    def _end(self, warning: str | None = None) -> None:
        self.ended = True
        if warning:
            self.warning = warning

    def _wait(self) -> None:
        """Wait for the clip being finished; its error, if any, is raised here."""
        pending, self._finishing = self._finishing, None
        if pending is not None:
            row = pending.result()
            if row is not None:
                self._rows.append(row)

    def submit(self, span: ClipSpan) -> None:
        """Encode ``span``'s frames here, then finish the clip in the background
        (after waiting for the clip before it)."""
        settings, perf = self.settings, self.notes.performance
        F, S = settings.frames_per_clip, settings.samples_per_clip
        skipped, _ = _fill_clip(self.frames, span.first_frame - self.cursor, None)
        self.cursor += skipped
        if self.cursor < span.first_frame:
            self._end()
            return
        margin = audio_margin(settings)  # spans move forward, so does the window
        w0 = max(span.first_sample - margin, 0)
        # a copy: the finishing thread reads it while the cursor moves on
        window = np.array(self.audio.take(w0, span.first_sample - w0 + S + margin))
        if len(window) < span.first_sample - w0 + S:
            self._end(f"audio ended at {self.audio.samples_read / settings.sample_rate:.3f}"
                      f" s, inside clip {span.segment}")
            return
        cid = clip_id(self.item.source_id, span.segment)
        observer = ClipObserver(F)
        writer = ClipWriter(self.out_dir, cid)
        try:
            resumed = writer.final.exists()  # finished by an interrupted earlier run
            if resumed:
                n, shape = _fill_clip(self.frames, F, None, observer)
            else:
                with writer.video_encoder(settings.fps, settings.video_preset,
                                          settings.video_crf) as enc:
                    n, shape = _fill_clip(self.frames, F, enc, observer)
            self.cursor += n
            if n < F:
                self._end(f"video ended at {self.cursor / settings.fps:.2f} s, before the "
                          f"{perf.duration:.2f} s the container declares")
                writer.abort()
                return
            self._wait()
        except BaseException:
            writer.abort()
            raise
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="copdata-finish")
        self._finishing = self._pool.submit(self._finish, span, cid, writer, resumed, observer,
                                            window, w0, shape)

    def _finish(self, span: ClipSpan, cid: str, writer: ClipWriter, resumed: bool,
                observer: ClipObserver, window: np.ndarray, w0: int, shape: tuple) -> ClipRow | None:
        """The QA stage and the clip's other views; its row, or None when rejected."""
        settings = self.settings
        try:
            meta = clip_meta(self.notes.performance.meta, span.t0, span.t1)
            checked = clip_qa(observer, window, w0, self.notes.notes, span.t0, settings,
                              recorded=self.notes.midi_origin == "transcription",
                              source_offset=self.source_offset)
            if checked.reasons:
                self.rejected.append({"clip_id": cid, "segment": span.segment, "qa": checked.qa,
                                      "reasons": checked.reasons})
                return None
            views = derive_views(checked.notes, settings.clip_seconds, settings.fps,
                                 settings.frames_per_clip, meta, checked.qa["claims"])
            audio, gain = fit_full_scale(checked.audio, self.notes.audio_gain)
            if not resumed:
                writer.write_views(audio, settings.sample_rate, views)
                writer.commit()
                self.written.append(writer.final)
        finally:
            writer.abort()
        offset = self.item.start or 0.0
        return ClipRow(
            id=cid, split=self.item.split, source_id=self.item.source_id, source=self.item.label,
            segment=span.segment, start=round(offset + span.t0, 6),
            end=round(offset + span.t1, 6), midi_origin=self.notes.midi_origin, meta=meta,
            stats=ClipStats.measure(views.notes, views.roll, as_written(audio), shape,
                                    settings.clip_seconds,
                                    audio_gain_db=round(20 * math.log10(gain), 2)),
            extra={"hashes": view_hashes(writer.final),  # checked by copdata validate
                   "qa": checked.qa})

    def rows(self) -> list[ClipRow]:
        """Wait for the last clip; the rows of the clips written, in order."""
        self._wait()
        return list(self._rows)

    def close(self) -> None:
        """Wait for the clip in flight (its error is left to :meth:`rows` or
        :meth:`submit`) and stop the background thread."""
        if self._pool is not None:  # shutdown(wait=True) lets the clip in flight finish
            self._pool.shutdown(wait=True)
            self._pool = None
