"""The transcriber registry: choose a transcriber by name, transcribe a file.

``basic-pitch`` (:mod:`copdata.transcription.basic_pitch`), ``transkun``
(:mod:`copdata.transcription.transkun`) and ``auto`` (Transkun when a CUDA GPU
is visible, else basic-pitch); one loaded model per process and settings.
"""

from __future__ import annotations

import inspect
import os
import threading
from pathlib import Path
from typing import Any

from ..errors import MediaError, MissingStreamError, TranscriberError
from ..notes import Note, write_midi

DEFAULT_TRANSCRIBER = "basic-pitch"
TRANSCRIBERS = {
    "basic-pitch": "basic-pitch 0.4.0's ONNX model: fast (~25x realtime on 2 busy CPU "
                   "cores), weak on real piano (OMAPS onset F1 0.69, with offsets 0.16)",
    "transkun": "Transkun 2.0.1, a piano-specific semi-CRF transformer: accurate (OMAPS "
                "onset F1 ~0.95) but slow on CPU (0.2-0.4x realtime on 2 busy cores); "
                "--device cuda on a GPU",
}
# Note F1 on real piano (OMAPS development pieces 001-025, mir_eval: onsets within
# 50 ms; with offsets, ends within 20 % or 50 ms), per transcriber and
# post-processing; `benchmarks/bench_transcribe_real.py ... --files 1-25`,
# docs/transcription.md. Keys: the note_post steps in their applied order.
MEASURED_ACCURACY = {
    "basic-pitch": {(): (0.692, 0.156), ("octave",): (0.696, 0.157), ("ends",): (0.692, 0.202),
                    ("octave", "ends"): (0.696, 0.203), ("floor",): (0.692, 0.156)},
    "transkun": {(): (0.963, 0.419), ("octave",): (0.956, 0.417), ("ends",): (0.963, 0.226),
                 ("octave", "ends"): (0.956, 0.224), ("floor",): (0.963, 0.439)},
}
ACCURACY_SOURCE = ("OMAPS 001-025 (real upright/digital piano, webcam microphone, hand-aligned "
                   "labels), benchmarks/bench_transcribe_real.py")


def measured_accuracy(name: str | None, note_post=()) -> str:
    """One line stating the MIDI view's measured accuracy for this transcriber
    and post-processing, or that it was not measured."""
    from .post import check_steps

    try:
        steps_done = check_steps(note_post if isinstance(note_post, (list, tuple)) else [note_post])
    except (TranscriberError, TypeError):
        steps_done = None
    figures = None if steps_done is None else MEASURED_ACCURACY.get(str(name), {}).get(steps_done)
    steps = "unknown" if steps_done is None else "+".join(steps_done) or "none"
    if figures is None:
        return (f"MIDI view accuracy: not measured for transcriber {name!r} with post-processing "
                f"{steps}.")
    return (f"MIDI view accuracy ({name}, post-processing {steps}) on {ACCURACY_SOURCE}: "
            f"note F1 {figures[0]:.3f} on onsets, {figures[1]:.3f} with note ends.")


_SETTINGS = {  # the keyword arguments each transcriber accepts
    "basic-pitch": ("onset_threshold", "frame_threshold", "min_note_ms", "model_path",
                    "num_threads"),
    "transkun": ("device", "num_threads", "weights_path"),
}
_CACHE: dict[tuple, Any] = {}
_CACHE_PID = os.getpid()
_CACHE_LOCK = threading.Lock()


def check_transcriber_name(name: str) -> str:
    """``name`` if it is a known transcriber, else :class:`TranscriberError`
    listing the choices."""
    if name not in TRANSCRIBERS:
        raise TranscriberError(f"unknown transcriber {name!r}; choose one of "
                               f"{', '.join(sorted(TRANSCRIBERS))}", item=str(name))
    return name


def get_transcriber(name: str = DEFAULT_TRANSCRIBER, **settings: Any):
    """The process's transcriber ``name`` for these ``settings`` (loaded once
    per process; a forked child loads its own). basic-pitch takes
    ``onset_threshold``, ``frame_threshold``, ``min_note_ms``, ``model_path``,
    ``num_threads``; transkun takes ``device``, ``num_threads``,
    ``weights_path``. Settings left as None take their defaults; settings the
    transcriber does not have raise :class:`TranscriberError` unless None."""
    global _CACHE_PID
    check_transcriber_name(name)
    extra = {k: v for k, v in settings.items() if k not in _SETTINGS[name] and v is not None}
    if extra:
        raise TranscriberError(f"transcriber {name!r} has no setting(s) {sorted(extra)}",
                               item=name)
    if name == "transkun":
        from .transkun import TranskunTranscriber as cls
    else:
        from .basic_pitch import BasicPitchTranscriber as cls
    settings = {k: v for k, v in settings.items() if v is not None and k in _SETTINGS[name]}
    bound = inspect.signature(cls).bind(**settings)
    bound.apply_defaults()  # the same model for settings given or defaulted
    settings = dict(bound.arguments)
    for k in ("model_path", "weights_path"):
        if settings.get(k) is not None:
            settings[k] = str(Path(settings[k]).resolve())
    key = (name,) + tuple(sorted((k, float(v) if isinstance(v, float) else v)
                                 for k, v in settings.items()))
    with _CACHE_LOCK:
        if _CACHE_PID != os.getpid():
            _CACHE.clear()
            _CACHE_PID = os.getpid()
        if key not in _CACHE:
            _CACHE[key] = cls(**settings)
        return _CACHE[key]


def resolve_transcriber_name(name: str | None) -> str:
    """``"auto"``/None -> ``"transkun"`` when a CUDA GPU is visible (accurate, fast
    there), else ``"basic-pitch"`` (fast on CPU); a known name as given; an unknown
    one raises :class:`TranscriberError`."""
    if name in (None, "auto"):
        try:
            import torch
            cuda = torch.cuda.is_available()
        except ImportError:  # pragma: no cover - torch is a dependency
            cuda = False
        return "transkun" if cuda else DEFAULT_TRANSCRIBER
    return check_transcriber_name(name)


def transcriber_for(name: str | None = DEFAULT_TRANSCRIBER, *,
                    onset_threshold: float | None = None, frame_threshold: float | None = None,
                    min_note_ms: float | None = None, device: str | None = None,
                    num_threads: int | None = None):
    """:func:`get_transcriber` with the settings that apply to ``name`` (``auto``
    resolved): basic-pitch's thresholds, Transkun's device; the rest ignored."""
    name = resolve_transcriber_name(name)
    if name == "transkun":
        return get_transcriber(name, device=device, num_threads=num_threads)
    return get_transcriber(name, onset_threshold=onset_threshold, frame_threshold=frame_threshold,
                           min_note_ms=min_note_ms, num_threads=num_threads)


def transcriber_info(transcriber, note_post=()) -> dict[str, Any]:
    """What a dataset or a result records of a transcriber: its :meth:`info`
    without runtime choices (threads, device), plus the note post-processing."""
    from .post import check_steps

    info = dict(transcriber.info())
    for runtime in ("threads", "device"):
        info.pop(runtime, None)
    info["note_post"] = list(check_steps(note_post))
    return info


def transcribe_file(audio_path: str | Path, out_mid: str | Path | None = None,
                    transcriber: str | None = DEFAULT_TRANSCRIBER, note_post=(),
                    **settings: Any) -> list[Note]:
    """Transcribe an audio/video file with :func:`transcriber_for` (``settings``
    = its keyword arguments), apply the ``note_post`` steps
    (:mod:`copdata.transcription.post`) and write ``out_mid`` when given. The file's
    first audio stream is decoded at its own rate (mono) and transcribed as a
    stream (the transcriber's ``transcribe_blocks``: basic-pitch holds bounded
    memory and gives the notes of a whole-file pass)."""
    from ..media.blocks import iter_audio_blocks
    from ..media.decode import probe
    from .post import apply_steps, check_steps

    path = Path(audio_path)
    if not path.is_file():
        raise MediaError("file not found", item=str(path))
    info = probe(path)
    if not info.has_audio:
        raise MissingStreamError("no audio stream; cannot transcribe", item=str(path))
    rate = int(info.sample_rate)
    check_steps(note_post)
    model = transcriber_for(transcriber, **settings)
    notes, _ = model.transcribe_blocks(iter_audio_blocks(path, rate), rate, item=str(path))
    if note_post:
        notes = apply_steps(notes, note_post)
    if out_mid is not None:
        write_midi(notes, out_mid)
    return notes
