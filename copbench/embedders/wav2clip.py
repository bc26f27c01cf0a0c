"""``wav2clip``: the Wav2CLIP audio encoder (Wu et al. 2022) into CLIP's space.

The architecture of lyrebird-wav2clip's ``ResNetExtractor`` (frozen,
``transform=True``), so its published checkpoint loads: ``Wav2CLIP.pt`` (the
release the ``wav2clip`` package's ``get_model`` downloads; a flat state dict)
or the earlier Lightning ``ResNet_CX.ckpt`` (the same keys inside ``state_dict``):

- front end: power spectrogram (torchaudio ``Spectrogram`` defaults: n_fft
  512, hop 353, periodic Hann window 512, centred with reflect padding) of 16
  kHz audio; ``log(x + 1e-7)``; standardised by the mean and (unbiased)
  standard deviation of the whole spectrogram (``+ 1e-9``);
- ResNet-18 (BasicBlocks [2, 2, 2, 2], 64-128-256-512, 7x7 stem with stride 2
  and max-pool) on the one-channel spectrogram, global average pool: 512-d
  (a classifier ``fc`` that some checkpoints carry is never applied and is dropped);
- ``transform``: Linear 512-512, ReLU, (dropout), Linear 512-512: the 512-d
  embedding in CLIP's image-text space.

Like ``wav2clip.embed_audio`` on one utterance, the whole clip is one input
(so the standardisation is per clip, never across a batch): one embedding per
clip. Checkpoint keys ``audio_encoder.*`` / ``audio_transform.*`` map to
``encoder.*`` / ``transform.*``; every other entry of the checkpoint is ignored.
"""

from __future__ import annotations

import numpy as np

from .base import Embedder
from .weights import WeightsSpec

SPEC = WeightsSpec(name="wav2clip", filename="Wav2CLIP.pt",
                   source="https://github.com/descriptinc/lyrebird-wav2clip/releases/download/"
                          "v0.1.0-alpha/Wav2CLIP.pt")
SAMPLE_RATE, N_FFT, HOP, DIMS = 16000, 512, 353, 512


def build_wav2clip():
    """The Wav2CLIP audio encoder + projection (random init); ``forward`` maps
    ``(B, samples)`` to ``(B, 512)``."""
    import torch
    from torch import nn

    class Spectrogram(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("window", torch.hann_window(N_FFT))

        def forward(self, audio):  # (B, 1, T) -> (B, 1, F, frames)
            shape = audio.shape
            spec = torch.stft(audio.reshape(-1, shape[-1]), N_FFT, HOP, N_FFT, self.window,
                              center=True, pad_mode="reflect", normalized=False, onesided=True,
                              return_complex=True)
            return spec.abs().pow(2.0).reshape(shape[:-1] + spec.shape[-2:])

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                             nn.BatchNorm2d(cout))
                               if stride != 1 or cin != cout else None)

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class AudioResNet18(nn.Module):
        def __init__(self):
            super().__init__()
            self.spectrogram = Spectrogram()
            self.conv1 = nn.Conv2d(1, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            cin = 64
            for i, cout in enumerate((64, 128, 256, 512)):
                stride = 1 if i == 0 else 2
                setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, cout, stride),
                                                             BasicBlock(cout, cout, 1)))
                cin = cout
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))

        def forward(self, audio):
            x = torch.log(self.spectrogram(audio.unsqueeze(1)) + 1e-7)
            x = (x - torch.mean(x)) / (torch.std(x) + 1e-9)
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            for i in range(4):
                x = getattr(self, f"layer{i + 1}")(x)
            return self.avgpool(x).reshape(x.shape[0], -1)

    class Transform(nn.Module):
        def __init__(self):
            super().__init__()
            self.sequential = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Dropout(0.1),
                                            nn.Linear(512, DIMS))

        def forward(self, x):
            return self.sequential(x)

    class Wav2Clip(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = AudioResNet18()
            self.transform = Transform()

        def forward(self, audio):
            return self.transform(self.encoder(audio))

    return Wav2Clip()


class Wav2ClipEmbedder(Embedder):
    NAME = "wav2clip"
    VERSION = "2.0"
    SAMPLE_RATE = SAMPLE_RATE
    SPEC = SPEC

    def settings(self) -> dict:
        return {"n_fft": N_FFT, "hop": HOP, "dims": DIMS, "input": "whole clip, one embedding",
                "arch": "lyrebird-wav2clip ResNetExtractor (ResNet-18 + 2-layer transform)"}

    def build_model(self):
        return build_wav2clip()

    def convert_state(self, state: dict) -> dict:
        prefixes = {"audio_encoder.": "encoder.", "audio_transform.": "transform."}
        out = {}
        for key, value in state.items():
            for old, new in prefixes.items():
                if key.startswith(old) and not key.startswith("audio_encoder.fc."):
                    out[new + key[len(old):]] = value
        return out or state  # a file already in this module's keys loads as is

    def _embed(self, audio: np.ndarray) -> np.ndarray:
        import torch
        audio = np.pad(audio, (0, max(0, N_FFT - audio.shape[0])))
        with torch.inference_mode():
            return self.model(torch.from_numpy(audio[None].astype(np.float32))).double().numpy()
