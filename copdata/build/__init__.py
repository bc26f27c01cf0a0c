"""The build pipeline: source items -> fetch -> (transcribe) -> clips -> writer.

:func:`build_dataset` is what ``copdata build`` runs. Items are independent and
processed by :func:`~copdata.build.item.process_item` in worker processes
(``executor="local"``) or on a Ray cluster (``executor="ray"``; both in
:mod:`~copdata.build.executors`); the same function runs either way, so the
output is identical. Each finished item leaves a state file under ``.state/``
(written after its clips are renamed into place; :mod:`~copdata.build.state`),
so killing a build at any moment and rerunning it resumes where it stopped.
``clips.jsonl`` and ``report.json`` are rewritten from the state files at the
end of every run (:mod:`~copdata.build.run`).

One item goes through named stages: :func:`~copdata.build.item.item_notes`
(fetch; ground-truth notes or a streamed transcription),
:func:`~copdata.build.plan.plan_clips` (the clip spans) and
:meth:`~copdata.build.cut.ClipCutter.submit` (one clip: frames, audio, MIDI,
roll, steps, row; a clip's QA and views are finished on a background thread
while the next clip's frames are encoded). A recorded source's audio is never held whole: it is read as
a block stream once to transcribe (:mod:`copdata.transcription.stream`) and
once more while the clips are cut, so a worker's memory does not grow with the
source's length.
"""

from .run import BuildSummary, build_dataset, check_settings

__all__ = ["BuildSummary", "build_dataset", "check_settings"]
