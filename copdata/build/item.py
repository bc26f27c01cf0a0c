"""One source item through the build: fetch, notes (stage 1), then its clips.

:func:`process_item` runs in a worker process (or a Ray task): it calls
:func:`item_notes`, :func:`~copdata.build.plan.plan_clips` and
:meth:`~copdata.build.cut.ClipCutter.submit`, and returns the item's report row.
"""

from __future__ import annotations

import logging
import shutil
import time
import traceback
from pathlib import Path


from ..dataset.rows import ClipRow
from ..errors import (CopDataError, ManifestError, QualityRejectedError, SilentInputError,
                      TooShortError)
from ..ids import check_split_name
from ..media.encode import full_scale_gain
from ..qa.stage import measure_source_offset
from ..sources.base import BuildSettings, Source, SourceItem
from .cut import ClipCutter
from .plan import ItemNotes, plan_clips
from .state import STATE_DIR

log = logging.getLogger(__name__)

SILENT_RMS_DBFS = -80.0  # an item whose RMS level is below this is silence


def settings_transcriber(settings: BuildSettings):
    """The worker's transcriber for these settings (loaded once per process)."""
    from ..transcription import transcriber_for

    return transcriber_for(settings.transcriber, onset_threshold=settings.onset_threshold,
                           frame_threshold=settings.frame_threshold,
                           min_note_ms=settings.min_note_ms, device=settings.transcriber_device)


def item_notes(source: Source, item: SourceItem, settings: BuildSettings,
               spool_dir: str | Path | None = None) -> ItemNotes:
    """Stage 1: fetch the item and find its notes: the ground truth, or the
    transcription of its audio, streamed block by block
    (:func:`copdata.transcription.stream.transcribe_blocks`; ``spool_dir`` holds
    its temporary posterior file). Raises :class:`SilentInputError` for
    silent audio."""
    perf = source.fetch(item, settings)
    if perf.notes is not None:
        return ItemNotes(perf, perf.notes, perf.midi_origin)
    from ..transcription.post import apply_steps

    transcriber = settings_transcriber(settings)
    notes, audio = transcriber.transcribe_blocks(perf.audio_blocks(), settings.sample_rate,
                                                 item=item.label, spool_dir=spool_dir)
    if settings.note_post:
        notes = apply_steps(notes, settings.note_post)
    if audio.rms_dbfs < SILENT_RMS_DBFS:
        raise SilentInputError(f"audio is silent (below {SILENT_RMS_DBFS:g} dBFS RMS); nothing "
                               "to transcribe", item=item.label)
    return ItemNotes(perf, notes, "transcription", audio_gain=full_scale_gain(audio.peak))


def process_item(source: Source, item: SourceItem, settings: BuildSettings, out_dir: str) -> dict:
    """Fetch one item and write its clips; returns its report row with clip rows
    (:func:`_process_item`), with numpy's BLAS on one thread.

    Why one: the item's numpy work is many small products (a 4-10 s clip's QA,
    notes, rolls). A multi-threaded OpenBLAS keeps its idle threads spinning
    after each of them: on 2 cores the timbre model's mel step took 4.5 ms of
    CPU for 2.2 ms of wall time, the whole timbre measure 84 ms of CPU for
    42 ms, CPU the frame decoder and the video encoder then lack
    (docs/qa.md, "QA at build speed")."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _process_item(source, item, settings, out_dir)


def _process_item(source: Source, item: SourceItem, settings: BuildSettings, out_dir: str) -> dict:
    """Fetch one item and write its clips; returns its report row with clip rows.

    The stages: :func:`item_notes`, :func:`plan_clips`, then
    :meth:`ClipCutter.submit` for each span
    (each clip finished in the background while the next is encoded). Never raises for bad input: a
    :class:`CopDataError` becomes a failed row with its class and message;
    anything else a failed ``InternalError`` row. A failed item leaves no
    clips behind.
    """
    started = time.perf_counter()
    row = {"source_id": item.source_id, "source": item.label, "split": item.split}
    cutter = None
    try:
        try:
            check_split_name(item.split)
        except ValueError as exc:  # every source's splits, checked before any write
            raise ManifestError(str(exc), item=item.label) from None
        notes = item_notes(source, item, settings, spool_dir=Path(out_dir) / STATE_DIR)
        spans = plan_clips(notes.performance.duration, item, settings)
        source_offset = None
        if settings.qa_correct_offset and spans:  # one offset per item, from all its clips
            source_offset = measure_source_offset(
                notes.performance.frames(), [s.first_frame for s in spans], settings.frames_per_clip,
                settings.fps, notes.notes, key_frames=notes.performance.frames,
                # copdata's renderer shows the keys down during a frame's interval
                frame_timing="rendered" if source.name == "synth" else settings.video_timing)
            row["av_offset_source"] = source_offset
        cutter = ClipCutter(item, notes, settings, out_dir, source_offset)
        for span in spans:
            cutter.submit(span)  # the clip before is finished meanwhile (QA, views)
            if cutter.ended:
                break
        clip_rows: list[ClipRow] = cutter.rows()  # rejected clips: cutter.rejected
        if cutter.warning:
            row["warning"] = cutter.warning
        if cutter.rejected:
            row["rejected"] = cutter.rejected
        if not clip_rows and cutter.rejected:
            raise QualityRejectedError(f"all {len(cutter.rejected)} clips failed the QA thresholds "
                                       f"(first: {'; '.join(cutter.rejected[0]['reasons'])})",
                                       item=item.label)
        if not clip_rows:
            raise TooShortError("no complete clip could be cut (the video stream is shorter "
                                "than one clip)", item=item.label)
        row.update(status="ok", clips=len(clip_rows),
                   seconds=len(clip_rows) * settings.clip_seconds,
                   midi_origin=notes.midi_origin, rows=[c.to_dict() for c in clip_rows])
    except CopDataError as exc:
        row.update(status="failed", error_class=exc.error_class, message=str(exc), clips=0)
    except Exception as exc:  # a bug or an unexpected library error: report, don't crash
        log.debug("item %s failed:\n%s", item.label, traceback.format_exc())
        row.update(status="failed", error_class=f"InternalError.{type(exc).__name__}",
                   message=f"{item.label}: {exc}", clips=0)
    if cutter is not None:
        cutter.close()  # a clip still finishing after a failure lands before the cleanup
    if row["status"] != "ok" and cutter is not None:
        for path in cutter.written:
            shutil.rmtree(path, ignore_errors=True)
    row["wall_seconds"] = round(time.perf_counter() - started, 3)
    return row
