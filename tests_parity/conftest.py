"""Parity suite set-up: runs in ``.venv-parity`` (``make parity``), never in the
project's environment, against the reference packages installed there
without their dependencies (see the Makefile and docs/copbench.md).

Two import shims, for the reference packages only, present in ``sys.modules``
only while that package is imported (:func:`reference_import`), so nothing
else (transformers' availability checks) ever sees them:

- ``torchaudio``: wav2clip's ``resnet.py`` imports it for one transform,
  ``torchaudio.transforms.Spectrogram(n_fft=512, hop_length=353)``; torchaudio
  does not load beside the CPU torch build, so the shim provides that class
  with torchaudio's defaults and computation (periodic Hann window as a
  registered buffer, centred reflect-padded ``torch.stft``, ``|X|^2``).
- ``laion_clap`` and ``encodec``: ``frechet_audio_distance`` imports them at
  module level for its CLAP and EnCodec embedders, which the suite does not
  use; empty modules let its Fréchet function import (only for that package:
  the real ``laion_clap`` is installed for the CLAP parity test).
- For the real ``laion_clap`` (:data:`LAION_STUBS`): ``torchvision``,
  ``h5py``, ``ftfy``, ``braceexpand``, ``webdataset`` and ``wget`` are imported
  at module level by its training / image-transform / download code, which
  the suite never runs; placeholder modules let ``clap_module`` import. The
  HTSAT audio branch, RoBERTa text branch and projections run as shipped.
- ``fadtk`` imports ``torchaudio`` at module level (for its file loader, not
  used by ``score_inf`` on ``.npy`` embeddings): the torchaudio shim covers it.
"""

import importlib
import os
import sys
import types
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # laion_layout
os.environ.setdefault("HF_HUB_OFFLINE", "1")


class _Spectrogram(torch.nn.Module):
    def __init__(self, n_fft=400, win_length=None, hop_length=None, pad=0,
                 window_fn=torch.hann_window, power=2.0, normalized=False, center=True,
                 pad_mode="reflect", onesided=True):
        super().__init__()
        self.n_fft, self.pad, self.power, self.normalized = n_fft, pad, power, normalized
        self.win_length = win_length or n_fft
        self.hop_length = hop_length or self.win_length // 2
        self.center, self.pad_mode, self.onesided = center, pad_mode, onesided
        self.register_buffer("window", window_fn(self.win_length))

    def forward(self, waveform):
        shape = waveform.size()
        spec = torch.stft(waveform.reshape(-1, shape[-1]), n_fft=self.n_fft,
                          hop_length=self.hop_length, win_length=self.win_length,
                          window=self.window, center=self.center, pad_mode=self.pad_mode,
                          normalized=self.normalized, onesided=self.onesided, return_complex=True)
        spec = spec.reshape(shape[:-1] + spec.shape[-2:])
        return spec.abs().pow(self.power)


class _Placeholder(types.ModuleType):
    """A module whose every public attribute is a fresh empty class (never called)."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})


LAION_STUBS = ("torchvision", "torchvision.ops", "torchvision.ops.misc", "torchvision.transforms",
               "torchvision.datasets", "h5py", "ftfy", "braceexpand", "webdataset", "wget")


def _shims(module: str) -> dict:
    torchaudio = types.ModuleType("torchaudio")
    torchaudio.transforms = types.ModuleType("torchaudio.transforms")
    torchaudio.transforms.Spectrogram = _Spectrogram
    out = {"torchaudio": torchaudio, "torchaudio.transforms": torchaudio.transforms}
    if module.startswith("frechet_audio_distance"):
        for name in ("laion_clap", "encodec"):
            out[name] = types.ModuleType(name)
            out[name].EncodecModel = None
    if module.startswith("laion_clap"):
        out.update({name: _Placeholder(name) for name in LAION_STUBS})
    return out


def reference_import(module: str):
    """Import a reference package with the shims in place, then remove them."""
    added = {k: v for k, v in _shims(module).items() if k not in sys.modules}
    sys.modules.update(added)
    try:
        return importlib.import_module(module)
    finally:
        for name in added:
            sys.modules.pop(name, None)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    from copbench.embedders.weights import clear_overrides
    monkeypatch.setenv("COPBENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("COPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    clear_overrides()
    yield
    clear_overrides()
