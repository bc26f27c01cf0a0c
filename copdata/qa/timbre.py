"""Piano timbre: musicnn's MagnaTagATune tagger, ported to torch, says "piano" or "harp".

Why: :func:`copdata.qa.audio.piano_evidence` measures stable harmonic partials
at the transcribed pitches, which a harp, a guitar or a celesta has too. A
learned timbre model tells them apart: musicnn (Pons & Serra, "musicnn:
pre-trained convolutional neural networks for music audio tagging", ISMIR
2019 LBD), trained on MagnaTagATune, whose 50 tags include ``piano``,
``harp``, ``harpsichord``, ``guitar`` and ``strings``.

Definitions
-----------
* Weights: ``MTT_musicnn`` from PyPI ``musicnn`` 0.1.0 (ISC licence), a
  TensorFlow checkpoint read with :mod:`copdata.qa.tfckpt` (no TensorFlow, no
  unpickling); both files' sha256 are checked (:data:`WEIGHT_SHA256`). Found
  in an explicit folder, ``$COPDATA_MUSICNN_DIR``, or the installed
  ``musicnn`` package (``pip install --no-deps musicnn==0.1.0``; its
  declared TensorFlow requirement is not needed).
* Input (musicnn's ``extractor.batch_data``): mono audio resampled to
  16 kHz with soxr HQ (what ``librosa.load`` does), librosa's power mel
  spectrogram (n_fft 512, hop 256, 96 bands, Slaney, area-normalised), cast
  to float16, ``log10(10000 x + 1)`` in float32 (what numpy 1.x, musicnn's
  era, computes for that line; numpy 2 would overflow float16); split into non-overlapping patches of
  187 frames (3 s; the model's training length), the tail shorter than a
  patch dropped. Audio shorter than one patch is repeated to fill it
  (musicnn's training used ``repeat-pad``; its extractor fails instead).
* Network (``musicnn/models.py``, ``build_musicnn`` with 64 mid-end filters
  and 200 back-end units): batch norm of the input; timbral convolutions
  (204 filters of 7 x 38 and 7 x 67 bands) and temporal ones (51 filters of
  128, 64 and 32 frames, TensorFlow ``same`` padding), each ReLU, batch norm,
  max over frequency; three dense 7-frame convolutions with residuals; max
  and mean over time; batch norm, dense 200 (ReLU), batch norm, dense 50,
  sigmoid. Batch norm is inference-mode with epsilon 1e-3 (tf.layers).
* Clip tags: the mean over patches of each tag's probability; clip
  features: the mean over patches of musicnn's ``penultimate`` features (the
  200 units after the back-end's batch norm).
* ``piano_timbre``: a linear probe on the clip features,
  ``sigmoid(w . penultimate + b)`` in [0, 1] (:class:`PianoProbe`, read from
  ``piano_probe.json`` beside this module: 200 weights and a bias as JSON).
  MTT's own "piano" tag is not enough: it is as high for a Rhodes or a
  Wurlitzer, and a celesta reaches it. The probe was fit on the development
  clips of ``benchmarks/bench_piano_real.py`` (real piano against real
  harp, electric pianos, organ, tuned percussion, guitars, orchestras,
  voices...; L2 logistic regression, its strength and the claim threshold
  chosen by leave-one-source-out scores on those clips); the file records
  how (``fit``) and the claim threshold (``threshold``). docs/qa.md has
  its ROC on the held-out clips.

Parity with musicnn's own TensorFlow code (same weights, same patches) is
checked in ``tests/test_qa_timbre.py`` against outputs stored from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CopDataError
from .tfckpt import read_checkpoint

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256
N_MELS = 96
PATCH_FRAMES = 187
MODEL = "MTT_musicnn"
INSTALL_HINT = "pip install --no-deps musicnn==0.1.0"
ENV_DIR = "COPDATA_MUSICNN_DIR"
BN_EPS = 1e-3
MTT_LABELS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral")
# the files of musicnn 0.1.0's MTT_musicnn (checkpoint prefix "<folder>/", empty basename)
WEIGHT_SHA256 = {
    ".index": "da2d7bb670b2b31e9bc441bb1bd75eca31b5b061f963cc1f9630c1aff3238f57",
    ".data-00000-of-00001": "041f3935e981a65cea739842d30c188d3a7d2adf4410955c8668eb3de4a5acab",
}


PROBE_FILE = Path(__file__).with_name("piano_probe.json")
PENULTIMATE = 200


class TimbreModelError(CopDataError):
    """The piano-timbre model cannot be loaded (not installed, wrong file, bad checksum)."""


@dataclass(frozen=True)
class PianoProbe:
    """``piano_timbre = sigmoid(weights . penultimate + bias)``; ``threshold`` is the
    claim threshold chosen with it; ``fit`` says how it was made."""

    weights: np.ndarray
    bias: float
    threshold: float
    fit: dict = field(default_factory=dict)

    def __call__(self, penultimate: np.ndarray) -> float:
        z = float(np.dot(self.weights, np.asarray(penultimate, dtype=np.float64)) + self.bias)
        return float(1.0 / (1.0 + np.exp(-z))) if z >= 0 else float(np.exp(z) / (1.0 + np.exp(z)))

    def to_dict(self) -> dict:
        return {"weights": [float(w) for w in self.weights], "bias": float(self.bias),
                "threshold": float(self.threshold), "fit": self.fit}

    @classmethod
    def from_dict(cls, d: dict) -> "PianoProbe":
        weights = np.asarray(d.get("weights"), dtype=np.float64)
        if weights.shape != (PENULTIMATE,) or not np.isfinite(weights).all():
            raise TimbreModelError(f"a piano probe needs {PENULTIMATE} finite weights, got shape "
                                   f"{weights.shape}", item="piano_probe")
        bias, threshold = float(d.get("bias")), float(d.get("threshold"))
        if not (np.isfinite(bias) and 0.0 <= threshold <= 1.0):
            raise TimbreModelError(f"bad probe bias {bias} or threshold {threshold}",
                                   item="piano_probe")
        return cls(weights, bias, threshold, dict(d.get("fit") or {}))


def load_probe(path: str | Path = PROBE_FILE) -> PianoProbe:
    """The probe in ``path`` (JSON)."""
    try:
        return PianoProbe.from_dict(json.loads(Path(path).read_text()))
    except (OSError, ValueError, TypeError) as exc:
        raise TimbreModelError(f"cannot read the piano probe: {exc}", item=str(path)) from exc


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def weights_dir(folder: str | Path | None = None) -> Path:
    """The ``MTT_musicnn`` folder: ``folder``, else ``$COPDATA_MUSICNN_DIR``, else the
    installed musicnn package's. :class:`TimbreModelError` naming what to install."""
    if folder is None and os.environ.get(ENV_DIR):
        folder = os.environ[ENV_DIR]
    if folder is None:
        import importlib.util
        try:
            spec = importlib.util.find_spec("musicnn")
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            raise TimbreModelError(f"musicnn's weights are not installed; install them with "
                                   f"`{INSTALL_HINT}` or set ${ENV_DIR} to an {MODEL} folder",
                                   item="musicnn")
        folder = Path(list(spec.submodule_search_locations)[0]) / MODEL
    return Path(folder)


def check_weights(folder: Path) -> dict[str, str]:
    """sha256 of both checkpoint files, checked against :data:`WEIGHT_SHA256`."""
    found = {}
    for suffix, want in WEIGHT_SHA256.items():
        path = folder / suffix
        if not path.is_file():
            raise TimbreModelError(f"{path} is missing; reinstall with `{INSTALL_HINT}`",
                                   item=str(path))
        found[suffix] = _sha256(path)
        if found[suffix] != want:
            raise TimbreModelError(f"{path} has sha256 {found[suffix]}, expected {want} "
                                   f"(musicnn 0.1.0's {MODEL}); reinstall with `{INSTALL_HINT}`",
                                   item=str(path))
    return found


def build_network(n_classes: int = len(MTT_LABELS)) -> Any:
    """musicnn's ``build_musicnn`` (64 mid-end filters, 200 units) as a torch module,
    randomly initialised; :func:`load_tf_weights` fills it."""
    import torch
    from torch import nn

    def bn(n: int) -> nn.BatchNorm1d:
        return nn.BatchNorm1d(n, eps=BN_EPS)

    def bn2(n: int) -> nn.BatchNorm2d:
        return nn.BatchNorm2d(n, eps=BN_EPS)

    class Musicnn(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bn_input = nn.BatchNorm2d(1, eps=BN_EPS)
            f = int(1.6 * 128)  # 204
            s = int(1.6 * 32)  # 51
            self.timbral = nn.ModuleList([nn.Conv2d(1, f, (7, int(0.4 * N_MELS))),
                                          nn.Conv2d(1, f, (7, int(0.7 * N_MELS)))])
            self.temporal = nn.ModuleList([nn.Conv2d(1, s, (k, 1)) for k in (128, 64, 32)])
            self.front_bn = nn.ModuleList([bn2(f), bn2(f), bn2(s), bn2(s), bn2(s)])
            front = 2 * f + 3 * s  # 561
            self.mid = nn.ModuleList([nn.Conv1d(front, 64, 7), nn.Conv1d(64, 64, 7),
                                      nn.Conv1d(64, 64, 7)])
            self.mid_bn = nn.ModuleList([bn(64), bn(64), bn(64)])
            pooled = 2 * (front + 3 * 64)  # 1506
            self.pool_bn = bn(pooled)
            self.dense = nn.Linear(pooled, 200)
            self.dense_bn = bn(200)
            self.out = nn.Linear(200, n_classes)

        def forward(self, mel: "torch.Tensor") -> "torch.Tensor":
            """``mel``: (batch, 187 frames, 96 bands) -> logits (batch, classes)."""
            return self.features(mel)[1]

        def features(self, mel: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
            """(``penultimate``: the 200 units after the back-end's batch norm, musicnn's
            feature of that name; logits), each (batch, n)."""
            F = torch.nn.functional
            x = self.bn_input(mel.unsqueeze(1))  # (B, 1, T, F)
            feats = []
            padded = F.pad(x, (0, 0, 3, 3))
            for conv in self.timbral:
                feats.append(F.relu(conv(padded)))
            for conv in self.temporal:
                k = conv.kernel_size[0]
                before = (k - 1) // 2  # TensorFlow "same": the extra row goes after
                feats.append(F.relu(conv(F.pad(x, (0, 0, before, k - 1 - before)))))
            # batch norm per channel, then max over bands (the order matters: gamma may be < 0)
            front = torch.cat([norm(f_).amax(dim=3) for norm, f_ in zip(self.front_bn, feats)],
                              dim=1)  # (B, 561, T)
            layers = [front]
            h = None
            for i, (conv, norm) in enumerate(zip(self.mid, self.mid_bn)):
                src = front if i == 0 else h
                y = norm(F.relu(conv(F.pad(src, (3, 3)))))
                h = y if i == 0 else y + h
                layers.append(h)
            feature = torch.cat(layers, dim=1)  # (B, 753, T)
            pooled = torch.stack([feature.amax(dim=2), feature.mean(dim=2)], dim=2)
            pooled = self.pool_bn(pooled.flatten(1))  # TF's flatten of (753, 2): max, mean per channel
            hidden = self.dense_bn(F.relu(self.dense(pooled)))
            return hidden, self.out(hidden)

    return Musicnn()


def _tf_names() -> dict[str, str]:
    """torch parameter name -> TF variable name (tf.layers' creation order)."""
    names = {}
    bns = ["bn_input", "front_bn.0", "front_bn.1", "front_bn.2", "front_bn.3", "front_bn.4",
           "mid_bn.0", "mid_bn.1", "mid_bn.2", "pool_bn", "dense_bn"]
    for i, mod in enumerate(bns):
        tf_name = "batch_normalization" + (f"_{i}" if i else "")
        for ours, theirs in (("weight", "gamma"), ("bias", "beta"), ("running_mean", "moving_mean"),
                             ("running_var", "moving_variance")):
            names[f"{mod}.{ours}"] = f"{tf_name}/{theirs}"
    convs = ["timbral.0", "timbral.1", "temporal.0", "temporal.1", "temporal.2", "mid.0", "mid.1",
             "mid.2"]
    for i, mod in enumerate(convs):
        tf_name = "conv2d" + (f"_{i}" if i else "")
        names[f"{mod}.weight"] = f"{tf_name}/kernel"
        names[f"{mod}.bias"] = f"{tf_name}/bias"
    for mod, tf_name in (("dense", "dense"), ("out", "dense_1")):
        names[f"{mod}.weight"] = f"{tf_name}/kernel"
        names[f"{mod}.bias"] = f"{tf_name}/bias"
    return names


def load_tf_weights(network: Any, tensors: dict[str, np.ndarray]) -> None:
    """Copy a musicnn checkpoint's tensors into ``network`` (strict: every parameter and
    buffer filled, shapes checked)."""
    import torch

    state = {}
    for ours, theirs in _tf_names().items():
        if theirs not in tensors:
            raise TimbreModelError(f"checkpoint lacks {theirs}", item=MODEL)
        value = np.asarray(tensors[theirs], dtype=np.float32)
        if ours.endswith("weight") and value.ndim == 4:  # conv kernel (kh, kw, in, out)
            if ours.startswith("mid."):  # (7, channels, 1, out) -> Conv1d (out, channels, 7)
                value = value[:, :, 0, :].transpose(2, 1, 0)
            else:
                value = value.transpose(3, 2, 0, 1)
        elif ours.endswith("weight") and value.ndim == 2:  # dense (in, out)
            value = value.T
        state[ours] = torch.from_numpy(np.ascontiguousarray(value))
    own = network.state_dict()
    for key in own:
        if key.endswith("num_batches_tracked"):
            state[key] = own[key]
    for key, value in state.items():
        if key not in own or tuple(own[key].shape) != tuple(value.shape):
            raise TimbreModelError(f"{key}: checkpoint shape {tuple(value.shape)} does not fit "
                                   f"{tuple(own[key].shape) if key in own else 'nothing'}",
                                   item=MODEL)
    network.load_state_dict(state, strict=True)


def mel_patches(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """musicnn's input: (patches, 187, 96) float32 log-mel patches of mono ``audio``."""
    import librosa

    mono = np.asarray(audio, dtype=np.float32)
    if mono.ndim == 2:
        mono = mono.mean(axis=0)
    if mono.ndim != 1 or not mono.size:
        raise ValueError(f"audio must be a non-empty mono or (channels, samples) array, "
                         f"got shape {np.shape(audio)}")
    if sample_rate != SAMPLE_RATE:
        mono = librosa.resample(mono, orig_sr=sample_rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    mel = librosa.feature.melspectrogram(y=mono, sr=SAMPLE_RATE, hop_length=HOP, n_fft=N_FFT,
                                         n_mels=N_MELS).T
    # musicnn rounds the mel to float16, then (numpy 1.x: 10000 is uint16, uint16 x float16 is
    # float32) computes the log in float32; under numpy 2 the same line would overflow float16
    logmel = np.log10(10000 * mel.astype(np.float16).astype(np.float32) + 1)
    if logmel.shape[0] < PATCH_FRAMES:
        reps = int(np.ceil(PATCH_FRAMES / logmel.shape[0]))
        logmel = np.tile(logmel, (reps, 1))[:PATCH_FRAMES]
    starts = range(0, logmel.shape[0] - PATCH_FRAMES + 1, PATCH_FRAMES)
    # C order (librosa's (bands, frames) transposed is F order): torch's convolutions on a
    # strided tensor take about half as long again
    return np.ascontiguousarray(np.stack([logmel[t:t + PATCH_FRAMES] for t in starts]),
                                dtype=np.float32)


class PianoTimbre:
    """musicnn's MTT tagger on the CPU; ``tags(audio, sr)`` and ``measure(audio, sr)``."""

    _lock = threading.Lock()

    def __init__(self, folder: str | Path | None = None, *, probe: PianoProbe | None = None,
                 threads: int = 1) -> None:
        import torch

        # one intra-op thread by default: a 3 s patch is too small to gain from more
        # (on 2 cores, 2 threads took 86 ms a patch against 50 ms for 1), and idle
        # OpenMP workers spinning after it slow the build's other threads
        self.threads = max(1, int(threads))
        self.probe = probe if probe is not None else load_probe()
        path = weights_dir(folder)
        found = check_weights(path)
        self.network = build_network()
        load_tf_weights(self.network, read_checkpoint(f"{path}/"))
        self.weights = {"source": str(path), **{f"sha256{k}": v for k, v in found.items()}}
        self.network.eval()
        self._torch = torch

    def embed(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, dict[str, float]]:
        """The clip's features (mean ``penultimate`` over its 3 s patches, float64) and
        each MTT tag's probability (the mean over the patches)."""
        patches = mel_patches(audio, sample_rate)
        torch = self._torch
        with self._lock, torch.inference_mode():
            threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)
            try:
                hidden, logits = self.network.features(torch.from_numpy(patches))
                probs = torch.sigmoid(logits).mean(dim=0)
                features = hidden.mean(dim=0).double().numpy()
            finally:
                torch.set_num_threads(threads)
        return features, {label: float(p) for label, p in zip(MTT_LABELS, probs.tolist())}

    def tags(self, audio: np.ndarray, sample_rate: int) -> dict[str, float]:
        """Each MTT tag's probability, the mean over the clip's 3 s patches."""
        return self.embed(audio, sample_rate)[1]

    def measure(self, audio: np.ndarray, sample_rate: int) -> dict[str, float]:
        """``piano_timbre`` (the probe on the clip's features) and MTT's "piano" and
        "harp" tags (for reading; the claim uses ``piano_timbre``)."""
        features, tags = self.embed(audio, sample_rate)
        return {"piano_timbre": round(self.probe(features), 4),
                "timbre_piano": round(tags["piano"], 4), "timbre_harp": round(tags["harp"], 4)}
