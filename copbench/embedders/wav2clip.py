"""``wav2clip``: a Wav2CLIP-style audio encoder into CLIP's image-text space.

Wav2CLIP (Wu et al. 2022) distils CLIP into an audio encoder: a ResNet-18 over
a spectrogram, globally pooled, then a projection into CLIP's 512-d space.
This module is that design in torch: 16 kHz audio; log-mel (n_fft 1024, hop
160, 64 bands, ``log(mel + 1e-6)``) as a one-channel image; ResNet-18
(BasicBlocks [2, 2, 2, 2], 64-128-256-512 channels, 7x7 stem with stride 2 and
max-pool); global average pool; ``projection`` Linear 512 -> 512. One
embedding per non-overlapping 10 s window (deterministic, no crops).

Weights: a state dict for exactly this module (``wav2clip_audio.pt``, keys
``stem.*``, ``layer1..4.*``, ``projection.*``) from a local path; a public
Wav2CLIP checkpoint must be converted to these keys first. There is no
download; without the file the metric fails naming it.
"""

from __future__ import annotations

import librosa
import numpy as np

from .base import Embedder, windows
from .weights import WeightsSpec

SPEC = WeightsSpec(name="wav2clip", filename="wav2clip_audio.pt",
                   source="a Wav2CLIP audio-encoder checkpoint (https://github.com/descriptinc/"
                          "lyrebird-wav2clip) converted to copbench's key layout")
SAMPLE_RATE, N_FFT, HOP, N_MELS, WINDOW_SECONDS, DIMS = 16000, 1024, 160, 64, 10.0, 512


def build_audio_resnet():
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                         if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x):
            y = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(y)) + self.down(x))

    class AudioResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                      nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
            cin = 64
            for i, cout in enumerate((64, 128, 256, 512)):
                stride = 1 if i == 0 else 2
                setattr(self, f"layer{i + 1}", nn.Sequential(Block(cin, cout, stride), Block(cout, cout, 1)))
                cin = cout
            self.projection = nn.Linear(512, DIMS)

        def forward(self, logmel):  # (B, 1, mels, frames)
            x = self.stem(logmel)
            for i in range(4):
                x = getattr(self, f"layer{i + 1}")(x)
            return self.projection(x.mean(dim=(2, 3)))

    return AudioResNet18()


class Wav2ClipEmbedder(Embedder):
    NAME = "wav2clip"
    VERSION = "1.0"
    SAMPLE_RATE = SAMPLE_RATE

    def __init__(self):
        self.model = None

    def settings(self) -> dict:
        return {"n_fft": N_FFT, "hop": HOP, "n_mels": N_MELS, "window_seconds": WINDOW_SECONDS,
                "dims": DIMS, "arch": "ResNet-18 on log-mel + linear projection"}

    def load(self) -> "Wav2ClipEmbedder":
        if self.model is None:
            from .torch_io import load_verified_file
            state, self.weights_info = load_verified_file(SPEC)
            model = build_audio_resnet()
            model.load_state_dict(state, strict=True)
            self.model = model.eval()
        return self

    def _embed(self, audio: np.ndarray) -> np.ndarray:
        import torch
        chunks = windows(audio, int(WINDOW_SECONDS * SAMPLE_RATE))
        mel = librosa.feature.melspectrogram(y=chunks, sr=SAMPLE_RATE, n_fft=N_FFT,
                                             hop_length=HOP, n_mels=N_MELS)
        logmel = torch.from_numpy(np.log(mel + 1e-6).astype(np.float32))[:, None]
        with torch.inference_mode():
            out = self.model(logmel)
        return torch.nn.functional.normalize(out, dim=-1).double().numpy()
