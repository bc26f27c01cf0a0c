"""Embedders: weightless ones on synthetic audio; pretrained ones with random
weights saved to temp files and loaded through the real loading path."""

import shutil

import numpy as np
import pytest
import torch

from copbench.cache import file_sha256
from copbench.embedders import build_embedder
from copbench.embedders.weights import clear_overrides, set_override
from copbench.errors import ChecksumError, WeightsMissingError

SR = 16000


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("COPBENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    clear_overrides()
    yield
    clear_overrides()


def _sine(freq, seconds=2.0, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_mel_embedder_shapes_and_resampling():
    emb = build_embedder("mel").load()
    a = emb.embed(_sine(440), SR)
    assert a.shape == (3, 128) and a.dtype == np.float64
    import librosa
    b = emb.embed(librosa.resample(_sine(440), orig_sr=SR, target_sr=44100), 44100)
    assert b.shape == a.shape
    np.testing.assert_allclose(a[:, :64], b[:, :64], atol=0.05)  # same band means
    low, high = emb.embed(_sine(200), SR), emb.embed(_sine(4000), SR)
    assert np.argmax(low[0, :64]) < np.argmax(high[0, :64])


def test_basicpitch_embedder_pools_per_second():
    emb = build_embedder("basicpitch").load()
    out = emb.embed(_sine(440.0, 3.0), SR)
    assert out.shape == (3, 440)
    # A4 = MIDI 69 -> note column 48 is the strongest note posterior.
    assert int(np.argmax(out[1, :88])) == 69 - 21
    assert np.all(emb.embed(np.zeros(SR * 2, np.float32), SR) == 0)


def _save_random(module, path):
    torch.save(module.state_dict(), path)
    return path


def _hash_named(path, stem):
    digest = file_sha256(path)[:8]
    target = path.with_name(f"{stem}-{digest}.pth")
    path.rename(target)
    return target


def test_vggish_loads_random_weights_through_real_path(tmp_path):
    from copbench.embedders.vggish import build_vggish, log_mel_examples, mel_matrix
    torch.manual_seed(0)
    net = build_vggish(final_relu=True).eval()  # torchvggish's module; same keys either way
    path = _hash_named(_save_random(net, tmp_path / "w.pth"), "vggish")
    set_override("vggish", path)
    set_override("vggish_relu", path)
    emb = build_embedder("vggish").load()
    assert emb.weights_info["verified_against"] == "filename_prefix"
    assert emb.weights_info["sha256"] == file_sha256(path)
    audio = _sine(1000.0)
    out = emb.embed(audio, SR)
    assert out.shape == (2, 128)  # two 0.96 s examples in 2 s
    with torch.inference_mode():
        direct = net(torch.from_numpy(log_mel_examples(audio))[:, None]).double().numpy()
    # fad_vggish (av-benchmark) drops the final ReLU; vggish_relu is torchvggish's output
    relu = build_embedder("vggish_relu").load().embed(audio, SR)
    tol = 1e-6 * np.abs(direct).max()  # float32 net
    np.testing.assert_allclose(relu, direct, rtol=1e-5, atol=tol)
    np.testing.assert_allclose(np.maximum(out, 0), relu, rtol=1e-5, atol=tol)
    assert (out < 0).any()
    # front end: a 1 kHz tone peaks in the mel band whose centre is nearest 1 kHz
    logmel = log_mel_examples(audio)[0].mean(axis=0)
    centers = np.argmax(mel_matrix(), axis=0) * SR / 512
    assert abs(centers[np.argmax(logmel)] - 1000) < 60
    # a corrupted file fails its checksum
    bad = path.with_name("vggish-00000000.pth")
    shutil.copy(path, bad)
    set_override("vggish", bad)
    with pytest.raises(ChecksumError):
        build_embedder("vggish").load()


def test_missing_weights_name_the_file_to_fetch():
    with pytest.raises(WeightsMissingError, match="vggish-10086976.pth.*torchvggish"):
        build_embedder("vggish").load()
    with pytest.raises(WeightsMissingError, match="Cnn14_16k"):
        build_embedder("panns").load()
    with pytest.raises(WeightsMissingError, match="music_speech_audioset_epoch_15_esc_89.98.pt"):
        build_embedder("clap").load()
    with pytest.raises(WeightsMissingError, match="copbench weights fetch wav2clip"):
        build_embedder("wav2clip").load()


def _published_panns_checkpoint(net, path):
    """The structure of PANNs' released training checkpoints: the model's state with
    torchlibrosa's STFT / mel buffers, plus the training sampler's numpy state."""
    state = dict(net.state_dict())
    state["spectrogram_extractor.stft.conv_real.weight"] = torch.zeros(257, 1, 512)
    state["spectrogram_extractor.stft.conv_imag.weight"] = torch.zeros(257, 1, 512)
    state["logmel_extractor.melW"] = torch.zeros(257, 64)
    sampler = {"indexes_per_class": [np.arange(5, dtype=np.int64), np.arange(3, dtype=np.int32)],
               "queue": [np.int64(4), np.int64(7)], "pointers_of_classes": [np.int64(0), 2],
               "random_state": np.float64(0.5)}
    torch.save({"iteration": 280000, "model": state, "sampler": sampler}, path)
    return path


def test_panns_published_checkpoint_layout_whole_clip_and_windowed(tmp_path):
    from copbench.embedders.panns import build_cnn14
    torch.manual_seed(0)
    net = build_cnn14().eval()
    weights_dir = tmp_path / "weights"
    weights_dir.mkdir()
    path = _published_panns_checkpoint(net, weights_dir / "Cnn14_16k_mAP=0.438.pth")
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)  # plain weights-only loading refuses numpy
    (weights_dir / "Cnn14_16k_mAP=0.438.pth.sha256").write_text(file_sha256(path) + "\n")
    emb = build_embedder("panns").load()  # found in $COPBENCH_WEIGHTS
    assert emb.weights_info["verified_against"] == "sidecar"
    audio = _sine(440.0, 2.5)
    out = emb.embed(audio, SR)
    assert out.shape == (1, 2048) and np.all(out >= 0)  # whole clip, as av-benchmark
    with torch.inference_mode():
        direct, logits = net(torch.from_numpy(audio[None]))
    np.testing.assert_allclose(out, direct.double().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(emb.embed_with_logits(audio, SR)[1], logits.double().numpy(),
                               rtol=1e-5, atol=1e-6)
    windowed = build_embedder("panns_windowed").load().embed(audio, SR)
    assert windowed.shape == (3, 2048)  # 2.5 s -> 3 windows (last half full)
    (weights_dir / "Cnn14_16k_mAP=0.438.pth.sha256").write_text("0" * 64)
    with pytest.raises(ChecksumError):
        build_embedder("panns").load()


class _Payload:
    """Pickles to a call of os.system: what a malicious checkpoint carries."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


def test_malicious_checkpoint_executes_nothing(tmp_path):
    from copbench.embedders.panns import build_cnn14
    from copbench.errors import UnsafeWeightsError
    marker = tmp_path / "pwned"
    path = tmp_path / "Cnn14_16k_mAP=0.438.pth"
    state = dict(build_cnn14().state_dict())
    torch.save({"model": state, "sampler": {"queue": [_Payload(marker)]}}, path)
    set_override("panns", path)
    with pytest.raises(UnsafeWeightsError, match="not loaded"):
        build_embedder("panns").load()
    assert not marker.exists()


def test_wav2clip_lightning_checkpoint_layout(tmp_path):
    from copbench.embedders.wav2clip import build_wav2clip
    torch.manual_seed(3)
    net = build_wav2clip().eval()
    state = {}
    for key, value in net.state_dict().items():
        prefix = "audio_encoder." if key.startswith("encoder.") else "audio_transform."
        state[prefix + key.split(".", 1)[1]] = value
    state["clip.visual.proj"] = torch.zeros(3)  # other parts of the Lightning module: ignored
    path = tmp_path / "ResNet_CX.ckpt"
    torch.save({"epoch": 3, "global_step": 10, "state_dict": state}, path)
    set_override("wav2clip", path)
    emb = build_embedder("wav2clip").load()
    audio = _sine(300.0, 2.0)
    out = emb.embed(audio, SR)
    assert out.shape == (1, 512)
    with torch.inference_mode():
        direct = net(torch.from_numpy(audio[None])).double().numpy()
    np.testing.assert_allclose(out, direct, rtol=1e-5, atol=1e-6)
    # per-clip standardisation: a louder copy of the clip embeds nearly identically
    louder = emb.embed(4 * audio, SR)
    assert np.abs(louder - out).max() < 0.05 * np.abs(out).max()
