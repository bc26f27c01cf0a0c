"""copbench's av-benchmark audio preparation (fad_vggish, fad_panns, is_panns, kl_panns,
clap_score) against av-benchmark's own loading code on the same files, with the
reference PANNs Cnn14 (panns_inference) on both sides.

av-benchmark (hkchengrex/av-benchmark) is not on PyPI and imports torchaudio,
torchvision, pytorchvideo and ImageBind at module level, none of which load beside the
CPU torch build, so its few loading lines are restated below (file and lines cited),
with torchaudio's resampler restated from torchaudio's functional code. Measured and
printed: the prepared waveform (DC, mono, cut) is av-benchmark's; what remains is the
resampler (copbench: librosa soxr_hq on both sides; av-benchmark: torchaudio's
sinc_interp_hann) and, for stereo files, the downmix (copbench: libswresample's
0.707 (L + R), as the references were built; av-benchmark: the channel mean).
"""

import math
from dataclasses import dataclass

import numpy as np
import pytest
import soundfile
import torch

from copbench.embedders.weights import set_override
from copbench.metrics.base import ScoreItem, fit_length

DATASET_RATE = 44100
SECONDS = 2.0
DC = 0.2


def torchaudio_resample(waveform: torch.Tensor, orig: int, new: int) -> torch.Tensor:
    """torchaudio.transforms.Resample(orig, new) (sinc_interp_hann, lowpass_filter_width 6,
    rolloff 0.99; kernel built in float64 and cast to float32), restated from torchaudio's
    functional/functional.py ``_get_sinc_resample_kernel`` / ``_apply_sinc_resample_kernel``."""
    gcd = math.gcd(orig, new)
    orig, new = orig // gcd, new // gcd
    width_param, rolloff = 6, 0.99
    base = min(orig, new) * rolloff
    width = math.ceil(width_param * orig / base)
    idx = torch.arange(-width, width + orig, dtype=torch.float64)[None, None] / orig
    t = torch.arange(0, -new, -1, dtype=torch.float64)[:, None, None] / new + idx
    t = (t * base).clamp(-width_param, width_param)
    window = torch.cos(t * math.pi / width_param / 2) ** 2
    t = t * math.pi
    kernels = torch.where(t == 0, torch.tensor(1.0, dtype=torch.float64), t.sin() / t)
    kernels = (kernels * window * base / orig).to(torch.float32)
    length = waveform.shape[-1]
    padded = torch.nn.functional.pad(waveform.view(1, -1), (width, width + orig))
    out = torch.nn.functional.conv1d(padded[:, None], kernels, stride=orig)
    out = out.transpose(1, 2).reshape(1, -1)
    return out[0, :int(math.ceil(new * length / orig))]


def av_benchmark_read(path, sr: int, audio_length: float) -> torch.Tensor:
    """av_bench/data/audio_dataset.py (@050a5cd) AudioDataset.read_from_file, lines 124-141;
    torchaudio.load (float32, channels first) read with soundfile."""
    data, sample_rate = soundfile.read(path, dtype="float32", always_2d=True)
    waveform = torch.from_numpy(np.ascontiguousarray(data.T))
    waveform = waveform.mean(dim=0)  # mono
    waveform = waveform - waveform.mean()
    audio = waveform if sample_rate == sr else torchaudio_resample(waveform, sample_rate, sr)
    return audio[:int(sr * audio_length)]


@dataclass
class Clip:
    """The reference clip as copbench's metrics see it (id, rate, length, audio)."""
    id: str
    sample_rate: int
    num_samples: int
    samples: np.ndarray

    def audio(self):
        return self.samples


def _music(seconds, rate, seed):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    tones = sum(0.2 * np.sin(2 * np.pi * f * (1 + 0.07 * seed) * t) * np.exp(-((t * 3) % 1.0) * 4)
                for f in (196.0, 440.0, 987.8, 3520.0))
    return (tones + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def reference_cnn14(tmp_path_factory):
    from test_parity import _panns_reference, _save_published_panns, _audio
    reference = _panns_reference(3, logit_gain=100.0)
    with torch.no_grad():  # centre the logits on a calibration clip so they do not saturate
        calibration = reference(torch.from_numpy(_audio(2.0, seed=98)[None]))["embedding"][0]
        reference.fc_audioset.bias.copy_(-reference.fc_audioset.weight @ calibration)
    path = tmp_path_factory.mktemp("w") / "Cnn14_16k_mAP=0.438.pth"
    _save_published_panns(reference, path)
    from copbench.metrics.panns_scores import KlPanns
    set_override("panns", path)
    return reference, KlPanns()  # loaded once for the module


def _logits(reference, audio: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        return reference.fc_audioset(reference(audio[None])["embedding"]).double().numpy()[0]


@pytest.mark.parametrize("rate,channels", [(44100, 1), (48000, 1), (48000, 2)])
def test_prepared_audio_and_logits_follow_av_benchmark(tmp_path, reference_cnn14, rate, channels):
    from copdata.media.decode import read_audio
    from copbench.metrics.panns_scores import kl_softmax
    reference, metric = reference_cnn14
    # the output: 0.5 s longer than the clip, a DC offset, another clip's music
    out = _music(SECONDS + 0.5, rate, seed=1) + DC
    ref = _music(SECONDS, DATASET_RATE, seed=2)
    stereo = np.stack([out, 0.6 * out], 1) if channels == 2 else out
    out_path = tmp_path / "out.wav"
    soundfile.write(out_path, stereo, rate, subtype="FLOAT")
    ref_path = tmp_path / "ref.wav"
    soundfile.write(ref_path, ref, DATASET_RATE, subtype="FLOAT")
    # copbench: decoded and resampled to the dataset rate once (libswresample), then prepared
    full = read_audio(out_path, sample_rate=DATASET_RATE)[0]
    n = int(SECONDS * DATASET_RATE)
    clip = Clip("c", DATASET_RATE, n, ref)
    item = ScoreItem(clip, fit_length(full, n), full_audio=full)
    # av-benchmark: its own loading lines on the same files
    av_out = av_benchmark_read(out_path, 16000, SECONDS)
    av_ref = av_benchmark_read(ref_path, 16000, SECONDS)
    if rate == DATASET_RATE and channels == 1:  # same samples before resampling
        same_rate = av_benchmark_read(out_path, DATASET_RATE, 10.0)
        assert np.abs(item.av_benchmark_output() - same_rate.numpy()).max() < 1e-7
    ours_out, ours_ref = metric.output_logits(item), metric.reference_logits(item)
    want_out, want_ref = _logits(reference, av_out), _logits(reference, av_ref)
    rel = max(np.abs(ours_out - want_out).max(), np.abs(ours_ref - want_ref).max()) / \
        np.abs(want_out).max()
    kl_ours = float(kl_softmax(ours_out, ours_ref)[0])
    kl_av = float(kl_softmax(want_out, want_ref)[0])
    # the old preparation (output trimmed at the dataset rate, then resampled)
    old = metric.logits(item.audio, item.sample_rate)
    kl_old = float(kl_softmax(old, metric.logits(ref, DATASET_RATE))[0])
    print(f"\nPARITY av-benchmark audio prep, {rate} Hz x{channels}: logits max rel diff "
          f"{rel:.3g}; kl_panns {kl_ours:.6g} vs av-benchmark's loading {kl_av:.6g} "
          f"(old preparation {kl_old:.6g}); remaining: resampler"
          + (", downmix" if channels == 2 else ""))
    assert av_out.shape[0] == 32000 and kl_av > 1e-4  # the cut; a comparison with teeth
    if channels == 1:
        assert kl_ours == pytest.approx(kl_av, rel=2e-2)
