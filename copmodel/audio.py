"""Audio representations: what the flow model generates, and back to a waveform.

Built-in (offline):

- ``"mel"``: a log-mel spectrogram at an internal sample rate, inverted by
  Griffin-Lim (mel -> linear magnitude by non-negative least squares against the
  mel filterbank, ``librosa.feature.inverse.mel_to_stft``, then phase retrieval);
- ``"stft"``: the log-magnitude of the linear STFT (``n_fft // 2 + 1`` bins up to
  ``fmax``), inverted by Griffin-Lim directly (no mel pseudo-inverse: the
  higher-resolution representation whose ceiling is close to the ground truth).

Griffin-Lim is librosa's fast Griffin-Lim (``momentum``, default 0.99) with
``griffin_lim_iters`` iterations. Pretrained (optional): continuous EnCodec
latents (encoder output before quantisation) from a local transformers folder,
or DAC latents (``dac:``), see :class:`CodecLatents`.

Both keep per-channel normalisation statistics as buffers, so they travel in
the model's state dict. Generated audio is resampled to the clip's rate and cut
or zero-padded to exactly the clip's number of samples.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch
from scipy.signal import resample_poly
from torch import nn

from .errors import ConfigError
from .presets import AudioConfig

log = logging.getLogger(__name__)

LOG_FLOOR = 1e-5


def resample(audio: np.ndarray, sr_in: int, sr_out: int, num_samples: int | None = None) -> np.ndarray:
    """Polyphase resampling; optionally cut or zero-pad to ``num_samples``."""
    audio = np.asarray(audio, dtype=np.float32)
    if sr_in != sr_out:
        g = math.gcd(int(sr_in), int(sr_out))
        audio = resample_poly(audio, sr_out // g, sr_in // g).astype(np.float32)
    if num_samples is not None:
        out = np.zeros(num_samples, dtype=np.float32)
        n = min(num_samples, audio.shape[0])
        out[:n] = audio[:n]
        audio = out
    return audio


class AudioRepresentation(nn.Module):
    """Interface: ``encode`` waveforms to features ``(B, C, M)``, ``decode`` back."""

    channels: int
    sample_rate: int
    hop: int

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("std", torch.ones(channels))

    def encode(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        raise NotImplementedError

    def decode(self, features: np.ndarray, num_samples: int) -> np.ndarray:
        raise NotImplementedError

    @torch.no_grad()
    def fit_stats(self, features: torch.Tensor) -> None:
        """Per-channel mean and one shared std over a stack ``(N, C, M)`` of raw features
        (a shared std keeps near-constant channels, e.g. silent bands, from amplifying
        their tiny fluctuations into unit-variance noise)."""
        flat = features.transpose(0, 1).reshape(features.shape[1], -1).float()
        mean = flat.mean(dim=1)
        self.mean.copy_(mean)
        self.std.fill_(float((flat - mean[:, None]).std().clamp_min(1e-3)))

    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean[:, None]) / self.std[:, None]

    def denormalize(self, features: torch.Tensor) -> torch.Tensor:
        return features * self.std[:, None] + self.mean[:, None]


def griffin_lim(magnitude: np.ndarray, cfg: AudioConfig) -> np.ndarray:
    """Phase retrieval for a linear magnitude ``(n_fft // 2 + 1, M)`` (librosa's fast
    Griffin-Lim, seeded, so decoding is deterministic)."""
    import librosa

    return librosa.griffinlim(magnitude, n_iter=cfg.griffin_lim_iters, hop_length=cfg.hop,
                              win_length=cfg.n_fft, n_fft=cfg.n_fft, center=True,
                              momentum=cfg.griffin_lim_momentum, init="random", random_state=0)


class _Spectral(AudioRepresentation):
    """Shared STFT front end of the built-in representations."""

    def __init__(self, cfg: AudioConfig, channels: int):
        super().__init__(channels)
        self.cfg = cfg
        self.channels, self.sample_rate, self.hop = channels, cfg.sample_rate, cfg.hop
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    def magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        return torch.stft(audio.float(), self.cfg.n_fft, self.cfg.hop, window=self.window,
                          center=True, return_complex=True).abs()

    @staticmethod
    def fit_length(features: torch.Tensor, num_frames: int) -> torch.Tensor:
        m = features.shape[-1]
        if m >= num_frames:
            return features[..., :num_frames]
        return torch.nn.functional.pad(features, (0, num_frames - m), value=math.log(LOG_FLOOR))


class LogMel(_Spectral):
    """``log(max(mel @ |STFT|, 1e-5))`` with a Hann window, centred frames."""

    def __init__(self, cfg: AudioConfig):
        import librosa

        super().__init__(cfg, cfg.n_mels)
        basis = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels,
                                    fmin=cfg.fmin, fmax=cfg.fmax)
        self.register_buffer("mel_basis", torch.from_numpy(basis).float(), persistent=False)
        self._basis = basis.astype(np.float32)
        self._pinv = np.linalg.pinv(basis).astype(np.float32)

    def encode(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        """``(B, S)`` waveforms at the internal rate -> ``(B, n_mels, num_frames)``."""
        mel = torch.log(torch.clamp(self.mel_basis @ self.magnitude(audio), min=LOG_FLOOR))
        return self.fit_length(mel, num_frames)

    def decode(self, features: np.ndarray, num_samples: int) -> np.ndarray:
        """Raw log-mel ``(n_mels, M)`` -> linear magnitude (``mel_inverse``: ``nnls`` or
        ``pinv``) -> Griffin-Lim -> waveform at the internal rate."""
        import librosa

        mel = np.exp(np.asarray(features, dtype=np.float32))
        if self.cfg.mel_inverse == "nnls":
            mag = librosa.util.nnls(self._basis, mel)
        elif self.cfg.mel_inverse == "pinv":
            mag = np.maximum(self._pinv @ mel, 0.0)
        else:
            raise ConfigError("unknown mel_inverse; use 'nnls' or 'pinv'", item=self.cfg.mel_inverse)
        return resample(griffin_lim(mag, self.cfg), self.sample_rate, self.sample_rate, num_samples)


class LogSTFT(_Spectral):
    """``log(max(|STFT|, 1e-5))`` of the bins at or below ``fmax`` (linear frequency)."""

    def __init__(self, cfg: AudioConfig):
        self.n_bins = cfg.n_fft // 2 + 1
        keep = int(np.floor(min(cfg.fmax, cfg.sample_rate / 2) * cfg.n_fft / cfg.sample_rate)) + 1
        super().__init__(cfg, min(keep, self.n_bins))

    def encode(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        """``(B, S)`` -> ``(B, bins, num_frames)``."""
        spec = self.magnitude(audio)[..., : self.channels, :]
        return self.fit_length(torch.log(torch.clamp(spec, min=LOG_FLOOR)), num_frames)

    def decode(self, features: np.ndarray, num_samples: int) -> np.ndarray:
        mag = np.zeros((self.n_bins, features.shape[-1]), dtype=np.float32)
        mag[: self.channels] = np.exp(np.asarray(features, dtype=np.float32))
        return resample(griffin_lim(mag, self.cfg), self.sample_rate, self.sample_rate, num_samples)


CODECS = ("encodec", "dac")


class CodecLatents(AudioRepresentation):
    """Continuous latents of a pretrained codec (encoder output before quantisation,
    decoded by the codec's decoder), frozen: ``encodec:<where>`` (transformers
    ``EncodecModel``, e.g. facebook/encodec_24khz) or ``dac:<where>`` (``DacModel``, e.g.
    descript/dac_16khz). ``<where>`` is found as weights.py says; the audio config's
    ``sample_rate`` and ``hop`` must match the codec's."""

    def __init__(self, cfg: AudioConfig, kind: str, where: str):
        from transformers import DacModel, EncodecModel

        from .weights import pretrained_dir

        path = str(pretrained_dir(f"{kind}:{where}", "audio.representation", "stft"))
        klass = {"encodec": EncodecModel, "dac": DacModel}[kind]
        model = klass.from_pretrained(path, local_files_only=True).eval()
        ratios = (model.config.upsampling_ratios if kind == "encodec"
                  else model.config.downsampling_ratios)
        hop = int(np.prod(ratios))
        if model.config.sampling_rate != cfg.sample_rate or hop != cfg.hop:
            raise ConfigError(
                f"audio config must use sample_rate={model.config.sampling_rate} hop={hop} "
                f"to match the {kind} weights (--set audio.sample_rate=... --set audio.hop=...)",
                item=path)
        channels = int(model.config.hidden_size)
        super().__init__(channels)
        self.channels, self.sample_rate, self.hop = channels, cfg.sample_rate, hop
        for p in model.parameters():
            p.requires_grad_(False)
        self._model = [model]  # not a submodule: keeps the frozen weights out of checkpoints

    @torch.no_grad()
    def encode(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        lat = self._model[0].encoder(audio.float()[:, None, :])
        if lat.shape[-1] >= num_frames:
            return lat[..., :num_frames]
        return torch.nn.functional.pad(lat, (0, num_frames - lat.shape[-1]))

    @torch.no_grad()
    def decode(self, features: np.ndarray, num_samples: int) -> np.ndarray:
        lat = torch.as_tensor(features, dtype=torch.float32)[None]
        audio = self._model[0].decoder(lat)[0, 0].numpy()
        return resample(audio, self.sample_rate, self.sample_rate, num_samples)


def build_audio(cfg: AudioConfig) -> AudioRepresentation:
    """``"stft"``, ``"mel"``, ``"encodec:<where>"`` or ``"dac:<where>"``."""
    if cfg.representation == "mel":
        return LogMel(cfg)
    if cfg.representation == "stft":
        return LogSTFT(cfg)
    kind, sep, where = cfg.representation.partition(":")
    if sep and kind in CODECS:
        return CodecLatents(cfg, kind, where)
    raise ConfigError("unknown audio representation; use 'stft', 'mel', 'encodec:<dir|repo>' "
                      "or 'dac:<dir|repo>'", item=cfg.representation)


def round_trip(audio: np.ndarray, sample_rate: int, representation: AudioRepresentation,
               num_samples: int | None = None) -> np.ndarray:
    """Encode a waveform and decode it again: the representation's ceiling.

    ``audio`` at ``sample_rate`` -> internal rate -> features -> decoder -> back to
    ``sample_rate`` with ``num_samples`` samples (default: the input length)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    n_out = audio.shape[0] if num_samples is None else int(num_samples)
    inner = resample(audio, int(sample_rate), representation.sample_rate)
    frames = int(math.ceil(inner.shape[0] / representation.hop))
    with torch.no_grad():
        feats = representation.encode(torch.from_numpy(inner)[None], frames)[0]
    out = representation.decode(feats.float().numpy(), inner.shape[0])
    return resample(out, representation.sample_rate, int(sample_rate), n_out)
