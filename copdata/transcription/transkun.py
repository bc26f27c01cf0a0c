"""Piano transcription with Transkun (Yan & Duan, ISMIR 2024), its shipped weights.

Definitions
-----------
* Package: PyPI ``transkun`` 2.0.1 (MIT licence, in the wheel's
  ``LICENSE``), installed with ``--no-deps`` (see the Makefile): its declared
  requirements pull torchaudio, tensorboard, pydub and others that inference
  never uses, and a torchaudio wheel must match the torch build exactly.
* Model: ``transkun/pretrained/2.0.pt`` with ``2.0.conf`` (a JSON file read
  with :mod:`json`; the ``moduleconf`` loader is not needed). The checkpoint is
  loaded with ``torch.load(weights_only=True)`` (no unpickling of code) and
  its state dict with ``strict=True``, so a mismatched package fails loudly.
* torchaudio: Transkun's ``MelSpectrum`` imports torchaudio only to build its
  mel filterbank (``torchaudio.functional.melscale_fbanks``: HTK mel scale,
  no normalisation). While the model is constructed, a stand-in module gives
  librosa's identical filterbank (``librosa.filters.mel(htk=True, norm=None)``,
  transposed); the trained buffer ``freq2mels`` in the checkpoint then
  overwrites it (``tests/test_transcribe.py`` checks the two agree).
* Input: mono audio at any rate, resampled to 44100 Hz with soxr HQ;
  transcribed with Transkun's own ``transcribe`` (16 s segments every 8 s,
  decoded with its semi-CRF, segment states carried over), on ``device``
  (``"cpu"``, ``"cuda"``, ``"cuda:1"``, or ``"auto"``: CUDA when available).
* Notes: Transkun's onsets, offsets, pitches and velocities, snapped with
  :func:`copdata.notes.snap_notes`. Transkun has no thresholds: its semi-CRF
  decodes the best set of note intervals.
* Silence: input whose peak is below -80 dBFS raises
  :class:`~copdata.errors.SilentInputError`, as for basic-pitch.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import os
import sys
import threading
import types
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np

from ..errors import TooShortError, TranscriberError
from ..notes import Note, snap_notes
from .base import check_audio, package_folders, package_version, resampler_name
from .stream import AudioSummary

log = logging.getLogger(__name__)

NAME = "transkun"
MODEL_SAMPLE_RATE = 44100
INSTALL_HINT = "pip install --no-deps transkun==2.0.1"
WEIGHTS_RELPATH = ("pretrained", "2.0.pt")
CONF_RELPATH = ("pretrained", "2.0.conf")
_TORCH_LOCK = threading.Lock()


def _package_dir() -> Path:
    return Path(package_folders("transkun", "transkun", INSTALL_HINT)[0])


def melscale_fbanks(n_freqs: int, f_min: float, f_max: float, n_mels: int,
                    sample_rate: int, norm: str | None = None,
                    mel_scale: str = "htk") -> "Any":
    """torchaudio's ``melscale_fbanks`` (``(n_freqs, n_mels)`` float32 tensor)
    computed with librosa: triangular filters on the HTK mel scale over the
    linear bins ``linspace(0, sr/2, n_freqs)``, unnormalised. Only the defaults
    Transkun uses are supported."""
    import librosa
    import torch

    if norm is not None or mel_scale != "htk":
        raise TranscriberError(f"the torchaudio stand-in supports norm=None, mel_scale='htk' "
                               f"only (got {norm!r}, {mel_scale!r})", item="transkun")
    weights = librosa.filters.mel(sr=sample_rate, n_fft=2 * (n_freqs - 1), n_mels=n_mels,
                                  fmin=f_min, fmax=f_max, htk=True, norm=None, dtype=np.float32)
    return torch.from_numpy(np.ascontiguousarray(weights.T))


@contextmanager
def _torchaudio_standin() -> Iterator[None]:
    """``import torchaudio`` gives a stand-in with ``functional.melscale_fbanks``
    while Transkun's model is built (the real one is never imported)."""
    saved = {name: sys.modules.get(name) for name in ("torchaudio", "torchaudio.functional")}
    module = types.ModuleType("torchaudio")
    functional = types.ModuleType("torchaudio.functional")
    functional.melscale_fbanks = melscale_fbanks  # type: ignore[attr-defined]
    module.functional = functional  # type: ignore[attr-defined]
    sys.modules["torchaudio"] = module
    sys.modules["torchaudio.functional"] = functional
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = old


def resolve_device(device: str | None) -> str:
    """``"auto"``/None -> ``"cuda"`` when available, else ``"cpu"``; others as given
    (a CUDA device without CUDA raises :class:`TranscriberError`)."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = str(device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TranscriberError(f"device {device!r} asked for but CUDA is not available; "
                               "use --device cpu", item="transkun")
    if not (device == "cpu" or device.startswith("cuda")):
        raise TranscriberError(f"unknown device {device!r}; use cpu, cuda, cuda:N or auto",
                               item="transkun")
    return device


class TranskunTranscriber:
    """Transkun with its shipped weights, loaded once."""

    name = NAME

    def __init__(self, device: str | None = "auto", num_threads: int | None = None,
                 weights_path: str | Path | None = None):
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - torch is a dependency
            raise TranscriberError("torch is not importable", item="torch") from exc
        package = _package_dir()
        self.weights_path = Path(weights_path) if weights_path else package.joinpath(*WEIGHTS_RELPATH)
        conf_path = package.joinpath(*CONF_RELPATH)
        for path in (self.weights_path, conf_path):
            if not path.is_file():
                raise TranscriberError(f"{path.name} is missing; reinstall with `{INSTALL_HINT}`",
                                       item=str(path))
        self.device = resolve_device(device)
        self.threads = int(num_threads or os.environ.get("COPDATA_THREADS") or 0) \
            or len(os.sched_getaffinity(0))
        try:
            conf_json = json.loads(conf_path.read_text())["Model"]
            with _torchaudio_standin():
                module = importlib.import_module(conf_json["module"])
                config = module.TransKun.Config()
                config.__dict__.update(conf_json["config"])
                model = module.TransKun(conf=config)
        except (ImportError, KeyError, TypeError, ValueError) as exc:
            raise TranscriberError(f"cannot build the Transkun model ({type(exc).__name__}: "
                                   f"{exc}); install `{INSTALL_HINT}`", item="transkun") from exc
        blob = self.weights_path.read_bytes()
        self.model_sha256 = hashlib.sha256(blob).hexdigest()
        try:
            checkpoint = torch.load(self.weights_path, map_location="cpu", weights_only=True)
            state = checkpoint.get("best_state_dict", checkpoint.get("state_dict"))
            model.load_state_dict(state, strict=True)
        except Exception as exc:  # torch raises several types for bad checkpoints
            raise TranscriberError(f"cannot load Transkun weights ({type(exc).__name__}: {exc})",
                                   item=str(self.weights_path)) from exc
        self.model = model.to(self.device).eval()
        self.config = dict(conf_json["config"])
        self._torch = torch

    def info(self) -> dict[str, Any]:
        """Name, version, weights checksum, device, segmenting and resampler."""
        return {"name": NAME, "version": package_version("transkun"),
                "model": self.weights_path.name, "model_sha256": self.model_sha256,
                "runtime": f"torch {self._torch.__version__}",
                "segment_seconds": self.config.get("segmentSizeInSecond"),
                "segment_hop_seconds": self.config.get("segmentHopSizeInSecond"),
                "thresholds": None, "resampler": resampler_name(),
                "device": self.device, "threads": self.threads}

    def transcribe(self, audio: np.ndarray, sample_rate: int, *,
                   item: str | None = None) -> list[Note]:
        """Notes of ``audio`` (any rate; multichannel is mixed down)."""
        mono = check_audio(audio, sample_rate, item)
        if int(sample_rate) != MODEL_SAMPLE_RATE:
            import soxr
            model_audio = np.asarray(soxr.resample(mono, int(sample_rate), MODEL_SAMPLE_RATE,
                                                   quality="HQ"), dtype=np.float32)
        else:
            model_audio = mono
        torch = self._torch
        with _TORCH_LOCK, torch.inference_mode():
            threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                x = torch.from_numpy(np.ascontiguousarray(model_audio)[:, None]).to(self.device)
                with warnings.catch_warnings():
                    # Transkun 2.0.1 calls torch.utils.checkpoint without use_reentrant
                    # at inference; torch warns twice per 16 s segment
                    warnings.filterwarnings("ignore", message=".*use_reentrant.*")
                    warnings.filterwarnings("ignore", message=".*requires_grad=True.*")
                    events = self.model.transcribe(x, discardSecondHalf=False)
            except RuntimeError as exc:
                raise TranscriberError(f"Transkun failed ({exc})", item=item) from exc
            finally:
                torch.set_num_threads(threads)
        notes = [Note(float(e.start), float(e.end), int(e.pitch), int(e.velocity))
                 for e in events]
        return snap_notes(notes, max_seconds=mono.shape[0] / sample_rate)

    def transcribe_batch(self, audios: Iterable[tuple[np.ndarray, int]]) -> list[list[Note]]:
        """Notes of several inputs with the one loaded model."""
        return [self.transcribe(a, sr) for a, sr in audios]

    def transcribe_blocks(self, blocks: Iterable[np.ndarray], sample_rate: int, *,
                          item: str | None = None, spool_dir: str | Path | None = None):
        """Notes of a block stream and its :class:`AudioSummary`. Transkun
        decodes a whole signal: the blocks are gathered (4 bytes a sample: 10.6 MB
        a minute at 44.1 kHz), then transcribed."""
        chunks = [np.asarray(b, dtype=np.float32).reshape(-1) for b in blocks]
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        if audio.size == 0:
            raise TooShortError("audio has no samples", item=item)
        summary = AudioSummary(int(audio.size), float(np.max(np.abs(audio))),
                               float(np.dot(audio.astype(np.float64), audio)))
        return self.transcribe(audio, sample_rate, item=item), summary

