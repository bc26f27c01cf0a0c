"""Piano transcription: audio -> notes; the transcriber registry and basic-pitch.

Transcribers (one interface: ``transcribe(audio, sample_rate, item=)``,
``transcribe_blocks(blocks, sample_rate, item=)``, ``transcribe_batch``,
``info()``, a ``name``), chosen by name with :func:`get_transcriber` /
:func:`transcriber_for` (``--transcriber`` on the command lines):

* ``basic-pitch``: this module, below (fast; weak on real piano).
* ``transkun``: :mod:`copdata.transcribe_transkun` (piano-specific, accurate;
  slow on CPU, a GPU path).
* ``auto``: Transkun when a CUDA GPU is visible, else basic-pitch.

Accuracy on real piano recordings: ``benchmarks/bench_transcribe_real.py``
and docs/piano10h.md.

basic-pitch's shipped ONNX model:

Definitions
-----------
* Model: ``basic_pitch/saved_models/icassp_2022/nmp.onnx`` from the installed
  ``basic-pitch`` 0.4.0 package, run with onnxruntime on in-memory float32
  arrays (no temporary files; TensorFlow, CoreML and TFLite are kept from being
  imported while basic-pitch is imported).
* Input: mono audio at any sample rate. It is resampled to 22050 Hz with soxr
  in its HQ mode (what ``librosa.load(sr=22050)`` does inside basic-pitch's
  ``predict``) and its length fixed to ``ceil(n * 22050 / sample_rate)``
  samples, as librosa does. Without soxr, ``scipy.signal.resample_poly`` is used
  (named in :meth:`Transcriber.info`). A 2-D array is treated as multichannel
  and mixed down by averaging over its shorter axis (at most 8 channels), like
  librosa's ``to_mono``.
* Windowing (basic-pitch's ``run_inference``): 3840 zeros (15 model frames) are
  prepended, the signal is cut into windows of ``AUDIO_N_SAMPLES`` (43844)
  samples every ``43844 - 30*256`` samples, the last one zero-padded. The
  windows go through the model in batches of at most :data:`WINDOWS_PER_CALL`,
  spread over ``num_threads`` single-threaded onnxruntime runs; 15 frames
  are dropped from both ends of every window's output, the rest concatenated and
  trimmed to ``floor(n_22050 * 86 / 22050)`` frames.
* Notes: ``basic_pitch.note_creation.model_output_to_notes`` with basic-pitch's
  ``predict`` defaults (onset 0.5, frame 0.3, minimum note length 127.70 ms
  rounded to model frames, melodia trick on, no frequency limits). Pitch bends
  are dropped; velocity is ``round(127 * mean frame activation)`` as in
  basic-pitch's MIDI; times are snapped with :func:`copdata.notes.snap_notes`.
* Silence: input whose peak is below -80 dBFS (``max|x| < 1e-4``) raises
  :class:`SilentInputError`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import logging
import math
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
import types
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .errors import (MediaError, MissingStreamError, SampleRateError, SilentInputError,
                     TooShortError, TranscriberError)
from .notes import Note, snap_notes, write_midi

log = logging.getLogger(__name__)

MODEL_SAMPLE_RATE = 22050  # basic_pitch.constants.AUDIO_SAMPLE_RATE
FFT_HOP = 256  # basic_pitch.constants.FFT_HOP
WINDOW_SAMPLES = 2 * MODEL_SAMPLE_RATE - FFT_HOP  # AUDIO_N_SAMPLES = 43844
OVERLAP_FRAMES = 30  # run_inference: n_overlapping_frames
OVERLAP_SAMPLES = OVERLAP_FRAMES * FFT_HOP
HOP_SAMPLES = WINDOW_SAMPLES - OVERLAP_SAMPLES
FRAMES_PER_SECOND = MODEL_SAMPLE_RATE // FFT_HOP  # ANNOTATIONS_FPS = 86
WINDOWS_PER_CALL = 8  # most windows per onnxruntime call (~16 s of audio)
SILENT_PEAK_DBFS = -80.0  # input whose peak is below this is silence
MODEL_RELPATH = ("saved_models", "icassp_2022", "nmp.onnx")
INSTALL_HINT = "pip install --no-deps basic-pitch==0.4.0"
# onnx output names, in the order note, onset, contour (basic_pitch.inference.Model)
_ONNX_INPUT = "serving_default_input_2:0"
_ONNX_OUTPUTS = {"note": "StatefulPartitionedCall:1", "onset": "StatefulPartitionedCall:2",
                 "contour": "StatefulPartitionedCall:0"}
_BLOCKED_BACKENDS = ("tensorflow", "coremltools", "tflite_runtime")
_DEFERRED_MODULES = ("mir_eval", "resampy")


class _ImportOnUse(types.ModuleType):
    """Stand-in for a module that basic-pitch's note_creation imports but uses
    only to sonify MIDI: the real module is imported on first attribute use."""

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attr)


@contextmanager
def _quiet_basic_pitch_import() -> Iterator[None]:
    """Import basic-pitch without its backend probing: its ``__init__`` logs a
    warning per missing backend and would import TensorFlow when installed.
    Backends not yet imported are made unimportable (``sys.modules[name] = None``)
    and root logging is raised to ERROR for the duration. ``mir_eval`` and
    ``resampy``, which note_creation uses only for sonification, are imported
    on first use (:class:`_ImportOnUse`): this saves seconds of start-up, and
    resampy < 0.4.3 fails to import under setuptools >= 81 (no ``pkg_resources``)."""
    blocked = [name for name in _BLOCKED_BACKENDS if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]
    deferred = [name for name in _DEFERRED_MODULES if name not in sys.modules]
    for name in deferred:
        sys.modules[name] = _ImportOnUse(name)
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)
        for name in blocked + deferred:
            if name in sys.modules and (sys.modules[name] is None
                                        or isinstance(sys.modules[name], _ImportOnUse)):
                del sys.modules[name]


def _note_creation() -> Any:
    """basic-pitch's ``note_creation`` module (imported quietly)."""
    if "basic_pitch.note_creation" in sys.modules:
        return sys.modules["basic_pitch.note_creation"]
    try:
        with _quiet_basic_pitch_import():
            return importlib.import_module("basic_pitch.note_creation")
    except ImportError as exc:
        raise TranscriberError(f"basic-pitch is not importable ({exc}); install it with "
                               f"`{INSTALL_HINT}`", item="basic_pitch") from exc


def package_folders(module: str, label: str, install_hint: str) -> list[str]:
    """Folders of an installed package, found with importlib without importing it;
    :class:`TranscriberError` naming ``install_hint`` when it is not installed."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise TranscriberError(f"{label} is not installed; install it with `{install_hint}`",
                               item=module)
    return list(spec.submodule_search_locations)


def default_model_path() -> Path:
    """Path of ``nmp.onnx`` inside the installed basic-pitch package (found with
    importlib, without importing the package)."""
    for folder in package_folders("basic_pitch", "basic-pitch", INSTALL_HINT):
        path = Path(folder).joinpath(*MODEL_RELPATH)
        if path.is_file():
            return path
    raise TranscriberError(f"basic-pitch is installed but {'/'.join(MODEL_RELPATH)} is missing; "
                           f"reinstall it with `{INSTALL_HINT}`", item="basic_pitch")


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _resampler_name() -> str:
    if importlib.util.find_spec("soxr") is not None:
        return f"soxr HQ {_package_version('soxr')}"
    return f"scipy.signal.resample_poly {_package_version('scipy')}"


def to_model_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float32 audio resampled to 22050 Hz, length ``ceil(n * 22050 / sr)``."""
    if sample_rate == MODEL_SAMPLE_RATE:
        return np.ascontiguousarray(audio, dtype=np.float32)
    n_out = int(math.ceil(audio.shape[0] * MODEL_SAMPLE_RATE / sample_rate))
    if importlib.util.find_spec("soxr") is not None:
        import soxr
        out = soxr.resample(audio.astype(np.float32, copy=False), sample_rate, MODEL_SAMPLE_RATE,
                            quality="HQ")
    else:
        from scipy.signal import resample_poly
        g = math.gcd(int(sample_rate), MODEL_SAMPLE_RATE)
        out = resample_poly(audio, MODEL_SAMPLE_RATE // g, int(sample_rate) // g)
    out = np.asarray(out, dtype=np.float32)
    if out.shape[0] >= n_out:
        return np.ascontiguousarray(out[:n_out])
    return np.pad(out, (0, n_out - out.shape[0]))


def check_audio(audio: np.ndarray, sample_rate: int, item: str | None = None) -> np.ndarray:
    """Validate and mix down: returns mono float32 audio, or raises.

    A 2-D array is multichannel: its shorter axis (<= 8) is the channel axis and
    is averaged. Raises :class:`SampleRateError` for a non-positive rate,
    :class:`MediaError` for NaN/inf samples or more than 2 dimensions,
    :class:`TooShortError` for no samples, :class:`SilentInputError` when the
    peak is below -80 dBFS."""
    if not isinstance(sample_rate, (int, float, np.number)) or sample_rate <= 0 \
            or int(sample_rate) != sample_rate:
        raise SampleRateError(f"sample_rate must be a positive integer, got {sample_rate!r}",
                              item=item)
    audio = np.asarray(audio)
    if audio.ndim == 2:
        channel_axis = int(np.argmin(audio.shape))
        if audio.shape[channel_axis] > 8:
            raise MediaError(f"audio of shape {audio.shape} is not mono or multichannel "
                             "(no axis of <= 8 channels); pass a 1-D array", item=item)
        audio = audio.mean(axis=channel_axis)
    elif audio.ndim != 1:
        raise MediaError(f"audio must be 1-D (mono) or 2-D (channels), got shape {audio.shape}",
                         item=item)
    if audio.shape[0] == 0:
        raise TooShortError("audio has no samples", item=item)
    audio = audio.astype(np.float32, copy=False)
    if not np.all(np.isfinite(audio)):
        raise MediaError(f"audio has {int(np.sum(~np.isfinite(audio)))} NaN/inf samples; "
                         "fix the decoder or drop this item", item=item)
    peak = float(np.max(np.abs(audio)))
    if peak <= 10 ** (SILENT_PEAK_DBFS / 20):
        level = "-inf" if peak == 0 else f"{20 * math.log10(peak):.1f}"
        raise SilentInputError(f"audio peak is {level} dBFS (silence threshold "
                               f"{SILENT_PEAK_DBFS:.0f} dBFS); nothing to transcribe", item=item)
    return audio


def frame_windows(audio_22k: np.ndarray) -> np.ndarray:
    """basic-pitch's windows of 22050 Hz audio: float32 ``(n_windows, 43844, 1)``."""
    padded = np.concatenate([np.zeros(OVERLAP_SAMPLES // 2, np.float32),
                             audio_22k.astype(np.float32, copy=False)])
    n_windows = int(math.ceil(padded.shape[0] / HOP_SAMPLES))
    total = (n_windows - 1) * HOP_SAMPLES + WINDOW_SAMPLES
    padded = np.pad(padded, (0, total - padded.shape[0]))
    view = np.lib.stride_tricks.sliding_window_view(padded, WINDOW_SAMPLES)[::HOP_SAMPLES]
    return view[:n_windows, :, None]  # a strided view: batches are copied when run


def unwrap_windows(output: np.ndarray, n_samples_22k: int) -> np.ndarray:
    """Drop 15 frames at both ends of each window, concatenate, trim to the audio."""
    half = OVERLAP_FRAMES // 2
    kept = output[:, half:-half, :]
    n_frames = int(math.floor(n_samples_22k * (FRAMES_PER_SECOND / MODEL_SAMPLE_RATE)))
    return kept.reshape(-1, kept.shape[2])[:n_frames]


class Transcriber:
    """basic-pitch (ONNX) transcriber with fixed thresholds; one model load."""

    name = "basic-pitch"

    def __init__(self, onset_threshold: float = 0.5, frame_threshold: float = 0.3,
                 min_note_ms: float = 127.70, model_path: str | Path | None = None,
                 num_threads: int | None = None):
        if not 0.0 < onset_threshold < 1.0 or not 0.0 < frame_threshold < 1.0:
            raise TranscriberError(f"thresholds must be in (0, 1), got onset={onset_threshold} "
                                   f"frame={frame_threshold}")
        if min_note_ms < 0:
            raise TranscriberError(f"min_note_ms must be >= 0, got {min_note_ms}")
        self.onset_threshold = float(onset_threshold)
        self.frame_threshold = float(frame_threshold)
        self.min_note_ms = float(min_note_ms)
        self.num_threads = num_threads
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        if not self.model_path.is_file():
            raise TranscriberError(f"model file not found; install basic-pitch with `{INSTALL_HINT}` "
                                   "or pass model_path", item=str(self.model_path))
        self._note_creation = _note_creation()
        expected = {"AUDIO_SAMPLE_RATE": MODEL_SAMPLE_RATE, "FFT_HOP": FFT_HOP,
                    "AUDIO_N_SAMPLES": WINDOW_SAMPLES}
        found = {k: getattr(self._note_creation, k, None) for k in expected}
        if found != expected:
            raise TranscriberError(f"installed basic-pitch has constants {found}, this module "
                                   f"expects {expected}; install `{INSTALL_HINT}`",
                                   item="basic_pitch")
        try:
            os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # see copdata/__init__.py
            import onnxruntime as ort
        except ImportError as exc:
            raise TranscriberError("onnxruntime is not installed; `pip install onnxruntime`",
                                   item="onnxruntime") from exc
        model_bytes = self.model_path.read_bytes()
        self.model_sha256 = hashlib.sha256(model_bytes).hexdigest()
        # one thread per run; windows are spread over a pool of `threads` runs,
        # which beats intra-op threading for this small convolutional model
        # (default: $COPDATA_THREADS, which build workers set to their share of the cores)
        self.threads = int(num_threads or os.environ.get("COPDATA_THREADS") or 0) \
            or len(os.sched_getaffinity(0))
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.enable_cpu_mem_arena = False  # memory returns after each run (bounded peak)
        try:
            self._session = ort.InferenceSession(model_bytes, sess_options=options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise TranscriberError(f"onnxruntime cannot load the model ({exc}); reinstall with "
                                   f"`{INSTALL_HINT}`", item=str(self.model_path)) from exc
        self._ort_version = ort.__version__
        self._resampler = _resampler_name()
        self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        log.debug("loaded %s (sha256 %s)", self.model_path, self.model_sha256[:12])

    @property
    def min_note_frames(self) -> int:
        """Minimum note length in model frames, rounded as in basic-pitch's predict."""
        return int(np.round(self.min_note_ms / 1000 * (MODEL_SAMPLE_RATE / FFT_HOP)))

    def info(self) -> dict[str, Any]:
        """Name, versions, model checksum, runtime, thresholds and resampler."""
        return {"name": "basic-pitch", "version": _package_version("basic-pitch"),
                "model": self.model_path.name, "model_sha256": self.model_sha256,
                "runtime": f"onnxruntime {self._ort_version}",
                "onset_threshold": self.onset_threshold, "frame_threshold": self.frame_threshold,
                "min_note_ms": self.min_note_ms, "melodia_trick": True,
                "resampler": self._resampler, "threads": self.threads}

    def _run_batch(self, batch: np.ndarray) -> list[np.ndarray]:
        try:
            return self._session.run(list(_ONNX_OUTPUTS.values()),
                                     {_ONNX_INPUT: np.ascontiguousarray(batch)})
        except Exception as exc:  # onnxruntime errors
            raise TranscriberError(f"onnxruntime failed on {batch.shape[0]} windows: {exc}",
                                   item=str(self.model_path)) from exc

    def run_windows(self, windows: np.ndarray) -> dict[str, np.ndarray]:
        """Model outputs (``note``, ``onset``, ``contour``) of float32 windows
        ``(n, 43844, 1)`` (see :func:`frame_windows`); batches of at most WINDOWS_PER_CALL run
        on the thread pool (onnxruntime releases the GIL)."""
        size = max(1, min(WINDOWS_PER_CALL, math.ceil(windows.shape[0] / self.threads)))
        batches = [windows[i:i + size] for i in range(0, windows.shape[0], size)]
        if self._pool is None or len(batches) == 1:
            results = [self._run_batch(b) for b in batches]
        else:
            results = list(self._pool.map(self._run_batch, batches))
        return {key: np.concatenate([r[i] for r in results])
                for i, key in enumerate(_ONNX_OUTPUTS)}

    def _posteriors_mono(self, mono: np.ndarray, sample_rate: int) -> dict[str, np.ndarray]:
        audio_22k = to_model_rate(mono, int(sample_rate))
        raw = self.run_windows(frame_windows(audio_22k))
        return {k: unwrap_windows(v, audio_22k.shape[0]) for k, v in raw.items()}

    def posteriors(self, audio: np.ndarray, sample_rate: int, *,
                   item: str | None = None) -> dict[str, np.ndarray]:
        """Raw model outputs at 22050/256 frames/s, timed as in basic-pitch:
        ``note`` and ``onset`` float32 ``(T, 88)`` (column k = MIDI 21+k),
        ``contour`` float32 ``(T, 264)`` (3 bins per semitone from 27.5 Hz).
        ``item`` names the input in errors."""
        return self._posteriors_mono(check_audio(audio, sample_rate, item), int(sample_rate))

    def transcribe(self, audio: np.ndarray, sample_rate: int, *,
                   item: str | None = None) -> list[Note]:
        """Notes of ``audio`` (any rate; multichannel is mixed down), as
        basic-pitch's predict finds them; ``item`` names the input in errors."""
        mono = check_audio(audio, sample_rate, item)
        output = self._posteriors_mono(mono, int(sample_rate))
        if output["note"].shape[0] < 2:
            return []
        _, events = self._note_creation.model_output_to_notes(
            output, onset_thresh=self.onset_threshold, frame_thresh=self.frame_threshold,
            min_note_len=self.min_note_frames, min_freq=None, max_freq=None,
            include_pitch_bends=False, multiple_pitch_bends=False, melodia_trick=True)
        notes = [Note(float(s), float(e), int(p), int(np.round(127 * a)))
                 for s, e, p, a, _ in events]
        return snap_notes(notes, max_seconds=mono.shape[0] / sample_rate)

    def transcribe_batch(self, audios) -> list[list[Note]]:
        """Notes of several ``(audio, sample_rate)`` inputs with the one loaded model."""
        return [self.transcribe(a, sr) for a, sr in audios]

    def transcribe_blocks(self, blocks, sample_rate: int, *, item: str | None = None,
                          spool_dir: str | Path | None = None):
        """Notes of a block stream in bounded memory, and its
        :class:`~copdata.transcribe_stream.AudioSummary` (see
        :func:`copdata.transcribe_stream.transcribe_blocks`)."""
        from .transcribe_stream import transcribe_blocks
        return transcribe_blocks(self, blocks, sample_rate, item=item, spool_dir=spool_dir)


DEFAULT_TRANSCRIBER = "basic-pitch"
TRANSCRIBERS = {
    "basic-pitch": "basic-pitch 0.4.0's ONNX model: fast (~25x realtime on 2 busy CPU "
                   "cores), weak on real piano (OMAPS onset F1 0.69, with offsets 0.16)",
    "transkun": "Transkun 2.0.1, a piano-specific semi-CRF transformer: accurate (OMAPS "
                "onset F1 ~0.95) but slow on CPU (0.2-0.4x realtime on 2 busy cores); "
                "--device cuda on a GPU",
}
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
        from .transcribe_transkun import TranskunTranscriber as cls
    else:
        cls = Transcriber
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
    from .transcribe_post import check_steps

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
    (:mod:`copdata.transcribe_post`) and write ``out_mid`` when given. The file's
    first audio stream is decoded at its own rate (mono) and transcribed as a
    stream (the transcriber's ``transcribe_blocks``: basic-pitch holds bounded
    memory and gives the notes of a whole-file pass)."""
    from .audio_stream import iter_audio_blocks
    from .media import probe
    from .transcribe_post import apply_steps, check_steps

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
