"""The basic-pitch transcriber (Spotify's ONNX model, run with onnxruntime).

One transcriber behind the :class:`~copdata.transcription.base.Transcriber`
interface (the registry, :mod:`copdata.transcription.registry`, names it
``basic-pitch``): fast, weak on real piano. Accuracy on real piano recordings:
``benchmarks/bench_transcribe_real.py`` and docs/piano10h.md.

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
  (named in :meth:`BasicPitchTranscriber.info`). A 2-D array is treated as multichannel
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
import logging
import math
import os
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import TranscriberError
from ..notes import Note, snap_notes
from .base import check_audio, package_folders, package_version, resampler_name
from .basic_pitch_grid import (FFT_HOP, MODEL_SAMPLE_RATE, WINDOW_SAMPLES, WINDOWS_PER_CALL,
                               frame_windows, to_model_rate, unwrap_windows)
from .stream import transcribe_blocks

log = logging.getLogger(__name__)

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



def default_model_path() -> Path:
    """Path of ``nmp.onnx`` inside the installed basic-pitch package (found with
    importlib, without importing the package)."""
    for folder in package_folders("basic_pitch", "basic-pitch", INSTALL_HINT):
        path = Path(folder).joinpath(*MODEL_RELPATH)
        if path.is_file():
            return path
    raise TranscriberError(f"basic-pitch is installed but {'/'.join(MODEL_RELPATH)} is missing; "
                           f"reinstall it with `{INSTALL_HINT}`", item="basic_pitch")


class BasicPitchTranscriber:
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
        self._resampler = resampler_name()
        self._pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        log.debug("loaded %s (sha256 %s)", self.model_path, self.model_sha256[:12])

    @property
    def min_note_frames(self) -> int:
        """Minimum note length in model frames, rounded as in basic-pitch's predict."""
        return int(np.round(self.min_note_ms / 1000 * (MODEL_SAMPLE_RATE / FFT_HOP)))

    def info(self) -> dict[str, Any]:
        """Name, versions, model checksum, runtime, thresholds and resampler."""
        return {"name": "basic-pitch", "version": package_version("basic-pitch"),
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
        :class:`~copdata.transcription.stream.AudioSummary` (see
        :func:`copdata.transcription.stream.transcribe_blocks`)."""
        return transcribe_blocks(self, blocks, sample_rate, item=item, spool_dir=spool_dir)
