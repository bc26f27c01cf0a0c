"""``vggish``: the VGGish audio embedding (Hershey et al. 2017), in torch.

Front end (as published, = torchvggish ``waveform_to_examples``): 16 kHz mono;
25 ms periodic-Hann frames every 10 ms, 512-point FFT magnitude; 64 mel bands
125-7500 Hz on the HTK mel scale (DC bin unused); ``log(mel + 0.01)``;
non-overlapping examples of 96 frames (0.96 s). Network: VGG-style conv stack
64-128-256-256-512-512 (3x3, ReLU, four 2x2 max-pools), then fully connected
12288-4096-4096-128.

``vggish`` (what ``fad_vggish`` uses) is the 128-d output *without* the final
ReLU and without the PCA/quantisation post-processor, as av-benchmark and
audioldm_eval compute FD_VGG; ``vggish_relu`` keeps torchvggish's final ReLU
(what ``frechet-audio-distance`` with ``use_activation=True`` and torchvggish's
``VGGish(postprocess=False)`` give). State-dict keys follow torchvggish
(``features.*``, ``embeddings.*``), so its ``vggish-10086976.pth`` loads as is
(sha256 prefix checked from the name).
"""

from __future__ import annotations

import numpy as np

from .base import Embedder
from .weights import WeightsSpec

SPEC = WeightsSpec(name="vggish", filename="vggish-10086976.pth",
                   source="https://github.com/harritaylor/torchvggish/releases/download/v0.1/"
                          "vggish-10086976.pth")
SAMPLE_RATE, WIN, HOP, N_FFT, N_MELS = 16000, 400, 160, 512, 64
FMIN, FMAX, LOG_OFFSET, EXAMPLE_FRAMES = 125.0, 7500.0, 0.01, 96


def _hz_to_mel(hz):
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


def mel_matrix() -> np.ndarray:
    """``(N_FFT//2 + 1, 64)`` triangular HTK-mel weights; the DC row is zero."""
    bins = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    mel_bins = _hz_to_mel(bins)
    edges = np.linspace(_hz_to_mel(FMIN), _hz_to_mel(FMAX), N_MELS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    rise = (mel_bins[:, None] - lower) / (center - lower)
    fall = (upper - mel_bins[:, None]) / (upper - center)
    weights = np.maximum(0.0, np.minimum(rise, fall))
    weights[0, :] = 0.0
    return weights


def log_mel_examples(audio: np.ndarray) -> np.ndarray:
    """``(n_examples, 96, 64)`` float32 log-mel examples of 16 kHz audio."""
    audio = np.asarray(audio, dtype=np.float64)
    if audio.shape[0] < WIN:
        audio = np.pad(audio, (0, WIN - audio.shape[0]))
    n_frames = 1 + (audio.shape[0] - WIN) // HOP
    idx = np.arange(WIN)[None, :] + HOP * np.arange(n_frames)[:, None]
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)  # periodic Hann
    spec = np.abs(np.fft.rfft(audio[idx] * window, n=N_FFT))
    logmel = np.log(spec @ mel_matrix() + LOG_OFFSET)
    count = max(1, n_frames // EXAMPLE_FRAMES)
    if n_frames < EXAMPLE_FRAMES:
        logmel = np.pad(logmel, ((0, EXAMPLE_FRAMES - n_frames), (0, 0)), constant_values=np.log(LOG_OFFSET))
    return logmel[:count * EXAMPLE_FRAMES].reshape(count, EXAMPLE_FRAMES, N_MELS).astype(np.float32)


def build_vggish(final_relu: bool = False):
    """The VGGish network (random init); ``final_relu`` keeps torchvggish's last ReLU."""
    import torch
    from torch import nn

    class VGGish(nn.Module):
        def __init__(self):
            super().__init__()
            layers, channels = [], 1
            for width in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M"):
                if width == "M":
                    layers.append(nn.MaxPool2d(2, 2))
                else:
                    layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True)]
                    channels = width
            self.features = nn.Sequential(*layers)
            self.embeddings = nn.Sequential(
                nn.Linear(512 * 4 * 6, 4096), nn.ReLU(inplace=True),
                nn.Linear(4096, 4096), nn.ReLU(inplace=True),
                *([nn.Linear(4096, 128), nn.ReLU(inplace=True)] if final_relu
                  else [nn.Linear(4096, 128)]))

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 1, 96, 64)
            x = self.features(x)  # (B, 512, 6, 4)
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # TF (H, W, C) flatten order
            return self.embeddings(x)

    return VGGish()


class VggishEmbedder(Embedder):
    NAME = "vggish"
    VERSION = "2.0"
    SAMPLE_RATE = SAMPLE_RATE
    SPEC = SPEC
    FINAL_RELU = False

    def settings(self) -> dict:
        return {"example_seconds": 0.96, "n_mels": N_MELS, "fmin": FMIN, "fmax": FMAX,
                "log_offset": LOG_OFFSET, "dims": 128, "postprocess": "none (pre-PCA)",
                "final_relu": self.FINAL_RELU}

    def build_model(self):
        return build_vggish(final_relu=self.FINAL_RELU)

    def _embed(self, audio: np.ndarray) -> np.ndarray:
        import torch
        examples = torch.from_numpy(log_mel_examples(audio))[:, None]
        with torch.inference_mode():
            return self.model(examples).double().numpy()


class VggishReluEmbedder(VggishEmbedder):
    """torchvggish's output with its final ReLU (a variant; not av-benchmark's FD_VGG)."""

    NAME = "vggish_relu"
    VERSION = "1.0"
    FINAL_RELU = True
