"""``panns``: PANNs Cnn14 at 16 kHz (Kong et al. 2020), in torch; 2048-d.

Front end (as the published 16 kHz model, torchlibrosa's): STFT n_fft 512,
periodic Hann window 512, hop 160, centred with reflect padding; power
spectrogram; 64 Slaney mel bands 50-8000 Hz (librosa filters);
``10 log10(max(x, 1e-10))``. Network (inference mode): BatchNorm over mel
bands; six conv blocks (two 3x3 conv + BN + ReLU each) of 64, 128, 256, 512,
1024, 2048 channels with 2x2 average pooling (none after the last); mean over
frequency, then max + mean over time; ``fc1`` + ReLU is the 2048-d
embedding; ``fc_audioset`` on it gives the 527 AudioSet logits (``sigmoid``
of them is PANNs' ``clipwise_output``).

``panns`` embeds the *whole clip* in one pass, one 2048-d frame per clip,
as av-benchmark computes FD_PANNs (and its IS / KL on the logits).
``panns_windowed`` is a variant with one embedding per non-overlapping 1 s
window. Weights: the published ``Cnn14_16k_mAP=0.438.pth`` training
checkpoint (``{"model": state dict, "sampler": ..., ...}``), read safely
(:mod:`copbench.embedders.torch_io`); its fixed STFT/mel buffers
(``spectrogram_extractor.*``, ``logmel_extractor.*``) are recomputed here, the
rest loads strictly.
"""

from __future__ import annotations

import librosa
import numpy as np

from .base import Embedder, windows
from .weights import WeightsSpec

SPEC = WeightsSpec(name="panns", filename="Cnn14_16k_mAP=0.438.pth",
                   source="https://zenodo.org/record/3987831/files/Cnn14_16k_mAP%3D0.438.pth")
SAMPLE_RATE, N_FFT, HOP, N_MELS, FMIN, FMAX = 16000, 512, 160, 64, 50.0, 8000.0
WINDOW_SECONDS = 1.0
CLASSES = 527
_IGNORED = ("spectrogram_extractor.", "logmel_extractor.")


def build_cnn14():
    """Cnn14 (random init); ``forward`` maps ``(B, samples)`` at 16 kHz to
    ``(embedding (B, 2048), logits (B, 527))``."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    class ConvBlock(nn.Module):
        def __init__(self, cin: int, cout: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
            self.bn1, self.bn2 = nn.BatchNorm2d(cout), nn.BatchNorm2d(cout)

        def forward(self, x, pool):
            x = F.relu(self.bn1(self.conv1(x)))
            x = F.relu(self.bn2(self.conv2(x)))
            return F.avg_pool2d(x, pool) if pool != (1, 1) else x

    class Cnn14(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn0 = nn.BatchNorm2d(N_MELS)
            widths = (1, 64, 128, 256, 512, 1024, 2048)
            for i in range(6):
                setattr(self, f"conv_block{i + 1}", ConvBlock(widths[i], widths[i + 1]))
            self.fc1 = nn.Linear(2048, 2048)
            self.fc_audioset = nn.Linear(2048, CLASSES)
            mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)
            self.register_buffer("melW", torch.from_numpy(mel.T.astype(np.float32)), persistent=False)
            self.register_buffer("window", torch.hann_window(N_FFT, periodic=True), persistent=False)

        def logmel(self, audio):
            spec = torch.stft(audio, N_FFT, HOP, N_FFT, self.window, center=True,
                              pad_mode="reflect", return_complex=True)
            power = spec.real ** 2 + spec.imag ** 2  # (B, F, T)
            mel = power.transpose(1, 2) @ self.melW  # (B, T, M)
            return 10.0 * torch.log10(torch.clamp(mel, min=1e-10))

        def forward(self, audio):
            x = self.logmel(audio)[:, None]  # (B, 1, T, M)
            x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
            for i in range(6):
                x = getattr(self, f"conv_block{i + 1}")(x, (2, 2) if i < 5 else (1, 1))
            x = x.mean(dim=3)
            x = x.max(dim=2).values + x.mean(dim=2)
            embedding = F.relu(self.fc1(x))
            return embedding, self.fc_audioset(embedding)

    return Cnn14()


class PannsEmbedder(Embedder):
    NAME = "panns"
    VERSION = "2.0"
    SAMPLE_RATE = SAMPLE_RATE
    SPEC = SPEC

    def settings(self) -> dict:
        return {"model": "Cnn14_16k", "input": "whole clip (av-benchmark)", "dims": 2048,
                "n_fft": N_FFT, "hop": HOP, "n_mels": N_MELS, "fmin": FMIN, "fmax": FMAX}

    def build_model(self):
        return build_cnn14()

    def convert_state(self, state: dict) -> dict:
        return {k: v for k, v in state.items() if not k.startswith(_IGNORED)}

    def _batches(self, audio: np.ndarray) -> np.ndarray:
        n = max(audio.shape[0], N_FFT)  # reflect padding needs a frame's worth of samples
        return np.pad(audio, (0, n - audio.shape[0]))[None].astype(np.float32)

    def embed_with_logits(self, audio: np.ndarray, sample_rate: int,
                          seconds: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(embeddings (N, 2048), logits (N, 527))`` float64 of the audio (``seconds``:
        as :meth:`Embedder.embed`)."""
        import torch
        from .base import to_rate
        batch = torch.from_numpy(self._batches(to_rate(audio, sample_rate, SAMPLE_RATE, seconds)))
        batch = batch.to(next(self.model.parameters()).dtype)  # float64 in the parity suite
        with torch.inference_mode():
            embedding, logits = self.model(batch)
        return embedding.double().numpy(), logits.double().numpy()

    def _embed(self, audio: np.ndarray) -> np.ndarray:
        import torch
        with torch.inference_mode():
            return self.model(torch.from_numpy(self._batches(audio)))[0].double().numpy()


class PannsWindowedEmbedder(PannsEmbedder):
    """Variant: one embedding per non-overlapping 1 s window (not av-benchmark's)."""

    NAME = "panns_windowed"
    VERSION = "1.0"

    def settings(self) -> dict:
        return {**super().settings(), "input": f"non-overlapping {WINDOW_SECONDS} s windows"}

    def _batches(self, audio: np.ndarray) -> np.ndarray:
        return windows(audio, int(WINDOW_SECONDS * SAMPLE_RATE))
