"""Audio representations: what the flow model generates, and back to a waveform.

Built-in (offline):

- ``"mel"``: a log-mel spectrogram at an internal sample rate, inverted by
  Griffin-Lim (mel -> linear magnitude by non-negative least squares against the
  mel filterbank, ``librosa.feature.inverse.mel_to_stft``, then phase retrieval);
- ``"stft"``: the log-magnitude of the linear STFT (``n_fft // 2 + 1`` bins up to
  ``fmax``), inverted by Griffin-Lim directly (no mel pseudo-inverse: the
  higher-resolution representation whose ceiling is close to the ground truth).

Griffin-Lim is librosa's fast Griffin-Lim (``momentum``, default 0.99) with
``griffin_lim_iters`` iterations, written in torch so that it runs on the
sampling device (:func:`griffin_lim`; parity with librosa in tests). Pretrained (optional): continuous EnCodec
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
    def fit_stats(self, features) -> None:
        """Per-channel mean and one shared std over raw features: a stack ``(N, C, M)``
        or an iterable of ``(C, M)`` maps, read once in a streaming pass (a shared std
        keeps near-constant channels, e.g. silent bands, from amplifying their tiny
        fluctuations into unit-variance noise). See :class:`FeatureStats`."""
        stats = FeatureStats(self.mean.shape[0])
        for item in features:
            stats.add(item)
        self.set_stats(*stats.result())

    @torch.no_grad()
    def set_stats(self, mean: torch.Tensor, std: float) -> None:
        self.mean.copy_(mean)
        self.std.fill_(float(std))

    def normalize(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean[:, None]) / self.std[:, None]

    def denormalize(self, features: torch.Tensor) -> torch.Tensor:
        return features * self.std[:, None] + self.mean[:, None]


class FeatureStats:
    """Streaming statistics of ``(C, M)`` feature maps in float64: per-channel count,
    sum and sum of squares. :meth:`result` gives the per-channel mean and the shared
    std of the deviations from it (unbiased, floored at 1e-3): what stacking every map
    and taking ``(flat - mean).std()`` gives, in memory independent of the data size."""

    def __init__(self, channels: int):
        self.count = 0
        self.sum = torch.zeros(channels, dtype=torch.float64)
        self.sumsq = torch.zeros(channels, dtype=torch.float64)

    def add(self, features: torch.Tensor) -> None:
        x = torch.as_tensor(features).detach().to("cpu", torch.float64)
        x = x.reshape(x.shape[0], -1)
        self.count += x.shape[1]
        self.sum += x.sum(dim=1)
        self.sumsq += (x * x).sum(dim=1)

    def result(self) -> tuple[torch.Tensor, float]:
        if self.count == 0:
            raise ValueError("no features to compute statistics from")
        mean = self.sum / self.count
        squares = (self.sumsq - self.count * mean * mean).clamp_min(0).sum()
        n = self.count * mean.numel()
        std = float(torch.sqrt(squares / max(n - 1, 1)))
        return mean.float(), max(std, 1e-3)


def griffin_lim(magnitude, cfg: AudioConfig, device=None) -> torch.Tensor:
    """Phase retrieval for a linear magnitude ``(n_fft // 2 + 1, M)`` in torch on ``device``
    (default: the magnitude's): librosa's fast Griffin-Lim (``librosa.griffinlim`` with
    ``momentum``, ``init="random"``, ``random_state=0``, ``center=True``,
    ``pad_mode="constant"``, periodic Hann window), the same algorithm and the same
    seeded initial phase, so decoding is deterministic and runs on the sampling device.
    Returns the waveform ``(hop * (M - 1),)`` on that device."""
    mag = torch.as_tensor(magnitude, device=device).float()
    if mag.device.type == "cpu":
        # many small FFTs: one thread is fastest, and threads fight on a shared CPU
        # (one 10 s clip: 1.9 s on 1 thread, 24 s on 2 threads of a loaded 2-core machine)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return _griffin_lim(mag, cfg)
        finally:
            torch.set_num_threads(threads)
    return _griffin_lim(mag, cfg)


def _griffin_lim(mag: torch.Tensor, cfg: AudioConfig) -> torch.Tensor:
    n_fft, hop, momentum = cfg.n_fft, cfg.hop, cfg.griffin_lim_momentum
    phase = 2 * np.pi * np.random.RandomState(seed=0).random(size=tuple(mag.shape))
    angles = torch.polar(mag, torch.from_numpy(phase).float().to(mag.device))
    window = torch.hann_window(n_fft, device=mag.device)
    eps = torch.finfo(torch.float32).tiny
    stft = dict(n_fft=n_fft, hop_length=hop, win_length=n_fft, window=window, center=True)
    previous = None
    for _ in range(cfg.griffin_lim_iters):
        inverse = torch.istft(angles, **stft)
        rebuilt = torch.stft(inverse, pad_mode="constant", return_complex=True, **stft)
        angles = rebuilt if previous is None else rebuilt - (momentum / (1 + momentum)) * previous
        angles = angles / (angles.abs() + eps) * mag
        previous = rebuilt
    return torch.istft(angles, **stft)


class _Spectral(AudioRepresentation):
    """Shared STFT front end of the built-in representations."""

    def __init__(self, cfg: AudioConfig, channels: int):
        super().__init__(channels)
        self.cfg = cfg
        self.channels, self.sample_rate, self.hop = channels, cfg.sample_rate, cfg.hop
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    def magnitude(self, audio: torch.Tensor) -> torch.Tensor:
        """``|STFT|`` of ``(B, S)`` waveforms, computed where the window lives (the
        representation's device and dtype: the input is moved there)."""
        audio = audio.to(device=self.window.device, dtype=self.window.dtype)
        return torch.stft(audio, self.cfg.n_fft, self.cfg.hop, window=self.window,
                          center=True, return_complex=True).abs()

    def waveform(self, magnitude, num_samples: int) -> np.ndarray:
        """Griffin-Lim on the representation's device -> float32 numpy, ``num_samples``."""
        audio = griffin_lim(magnitude, self.cfg, self.window.device).cpu().numpy()
        return resample(audio, self.sample_rate, self.sample_rate, num_samples)

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

        mel = np.exp(_numpy(features))
        if self.cfg.mel_inverse == "nnls":
            mag = librosa.util.nnls(self._basis, mel)  # CPU (scipy); Griffin-Lim on the device
        elif self.cfg.mel_inverse == "pinv":
            mag = np.maximum(self._pinv @ mel, 0.0)
        else:
            raise ConfigError("unknown mel_inverse; use 'nnls' or 'pinv'", item=self.cfg.mel_inverse)
        return self.waveform(np.asarray(mag, np.float32), num_samples)


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

    def decode(self, features, num_samples: int) -> np.ndarray:
        """Raw log-magnitudes ``(bins, M)`` (numpy or a tensor) -> Griffin-Lim on the
        representation's device -> float32 waveform at the internal rate."""
        feats = torch.as_tensor(features, device=self.window.device).float()
        mag = torch.zeros(self.n_bins, feats.shape[-1], device=feats.device)
        mag[: self.channels] = torch.exp(feats)
        return self.waveform(mag, num_samples)


def _numpy(features) -> np.ndarray:
    if isinstance(features, torch.Tensor):
        return features.detach().float().cpu().numpy()
    return np.asarray(features, dtype=np.float32)


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

    def _codec(self):
        """The frozen codec, moved to where this module's buffers are (the sampling or
        training device: it is not a submodule, so ``.to`` does not reach it)."""
        model = self._model[0]
        if next(model.parameters()).device != self.mean.device:
            model.to(self.mean.device)
        return model

    @torch.no_grad()
    def encode(self, audio: torch.Tensor, num_frames: int) -> torch.Tensor:
        lat = self._codec().encoder(audio.float().to(self.mean.device)[:, None, :])
        if lat.shape[-1] >= num_frames:
            return lat[..., :num_frames]
        return torch.nn.functional.pad(lat, (0, num_frames - lat.shape[-1]))

    @torch.no_grad()
    def decode(self, features: np.ndarray, num_samples: int) -> np.ndarray:
        lat = torch.as_tensor(features, dtype=torch.float32, device=self.mean.device)[None]
        audio = self._codec().decoder(lat)[0, 0].cpu().numpy()
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
    device = next(iter(representation.buffers()), torch.empty(0)).device
    with torch.no_grad():
        feats = representation.encode(torch.from_numpy(inner)[None].to(device), frames)[0]
    out = representation.decode(feats.float().cpu().numpy(), inner.shape[0])
    return resample(out, representation.sample_rate, int(sample_rate), n_out)
