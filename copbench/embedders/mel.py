"""``mel``: log-mel statistics, a weightless DSP embedder (no download).

At 16 kHz: mel power spectrogram (n_fft 1024, hop 320 = 20 ms, Hann window,
64 mel bands 0-8 kHz, librosa/Slaney), ``log(mel + 1e-6)``; the audio is cut
into non-overlapping 0.5 s windows (25 frames); each window's embedding is
the per-band mean and standard deviation: 128 dimensions.
"""

from __future__ import annotations

import librosa
import numpy as np

from .base import Embedder

N_FFT, HOP, N_MELS, WINDOW_FRAMES, LOG_EPS = 1024, 320, 64, 25, 1e-6


class MelEmbedder(Embedder):
    NAME = "mel"
    VERSION = "1.0"
    SAMPLE_RATE = 16000

    def settings(self) -> dict:
        return {"n_fft": N_FFT, "hop": HOP, "n_mels": N_MELS, "window_frames": WINDOW_FRAMES,
                "log_eps": LOG_EPS, "dims": 2 * N_MELS}

    def _embed(self, audio: np.ndarray) -> np.ndarray:
        mel = librosa.feature.melspectrogram(y=audio, sr=self.SAMPLE_RATE, n_fft=N_FFT,
                                             hop_length=HOP, n_mels=N_MELS, center=False)
        logmel = np.log(mel.astype(np.float64) + LOG_EPS).T  # (T, 64)
        count = max(1, logmel.shape[0] // WINDOW_FRAMES)
        out = []
        for k in range(count):
            block = logmel[k * WINDOW_FRAMES:(k + 1) * WINDOW_FRAMES]
            out.append(np.concatenate([block.mean(axis=0), block.std(axis=0)]))
        return np.stack(out)
