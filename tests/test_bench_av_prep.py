"""av-benchmark's audio preparation for the metrics credited to it (fad_vggish,
fad_panns, is_panns, kl_panns, clap_score): the whole file's mean removed, resampled
to the model rate, cut at the clip length, a shorter output never padded
(hkchengrex/av-benchmark @050a5cd, av_bench/data/audio_dataset.py lines 124-141).

Oracles: a signal whose DC offset and zero-mean part are known by construction, and
the metric recomputed by hand (numpy preparation, the saved random Cnn14 called
directly, torch's kl_div) on hand-prepared audio."""

import numpy as np
import pytest
import soundfile
import torch
from mediafactory import build_synth_dataset

from copbench.embedders.base import to_rate
from copbench.embedders.weights import clear_overrides, set_override
from copbench.metrics.base import ScoreItem, fit_length
from copbench.run import run_benchmark

DC = 0.3


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_synth_dataset(tmp_path_factory.mktemp("ds") / "tiny", 4, 4.0, 2.0)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("COPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("COPBENCH_WEIGHTS", str(tmp_path / "weights"))
    clear_overrides()
    yield
    clear_overrides()


def _clips(dataset):
    from copdata import open_dataset
    return sorted(open_dataset(dataset).clips("test"), key=lambda c: c.id)


def test_known_offset_and_length_come_back_as_the_zero_mean_signal(dataset):
    """An output = s + 0.3 with s zero-mean by construction (whole sine periods), 0.5 s
    longer than the clip: prepared, it is s itself (the mean of the *whole* file, tail
    included, is removed); the reference is its own signal minus its mean."""
    clip = _clips(dataset)[0]
    sr, n = clip.sample_rate, clip.num_samples
    t = np.arange(n + sr // 2) / sr
    s = 0.25 * np.sin(2 * np.pi * 882.0 * t)  # period 50 samples: 2205 whole periods
    full = (s + DC).astype(np.float32)
    item = ScoreItem(clip, fit_length(full, n), full_audio=full)
    np.testing.assert_allclose(item.av_benchmark_output(), s, atol=2e-6)
    ref = clip.audio().astype(np.float64)
    np.testing.assert_allclose(item.av_benchmark_reference(), ref - ref.mean(), atol=1e-7)
    # the cut: int(rate * seconds) samples after resampling
    assert to_rate(full, sr, 16000).shape[0] >= 40000
    assert to_rate(full, sr, 16000, seconds=item.seconds).shape[0] == 32000
    # a shorter output is cut, never padded
    short = full[: n // 2]
    assert to_rate(short, sr, 16000, seconds=item.seconds).shape[0] == 16000
    # no full_audio (a metric scored on an already fitted array): that array
    plain = ScoreItem(clip, fit_length(full, n))
    assert plain.av_benchmark_output().shape[0] == n


@pytest.fixture(scope="module")
def random_cnn14(tmp_path_factory):
    from copbench.embedders.panns import build_cnn14
    torch.manual_seed(0)
    net = build_cnn14().eval()
    with torch.no_grad():  # a random Cnn14 barely tells inputs apart: a gain makes it see them
        net.fc1.weight *= 100.0
        net.fc_audioset.weight *= 100.0
    path = tmp_path_factory.mktemp("w") / "Cnn14_16k_mAP=0.438.pth"
    torch.save({"model": net.state_dict()}, path)
    return net, path


def _by_hand(net, audio, sr, seconds):
    """av-benchmark's read_from_file restated in numpy, then the network itself."""
    x = np.asarray(audio, np.float64)
    x = (x - x.mean()).astype(np.float32)
    import librosa
    x = librosa.resample(x, orig_sr=sr, target_sr=16000, res_type="soxr_hq")[:int(16000 * seconds)]
    with torch.inference_mode():
        embedding, logits = net(torch.from_numpy(np.ascontiguousarray(x))[None])
    return embedding.double().numpy()[0], logits.double()[0]


@pytest.mark.slow  # ~45 s on 2 busy cores: three metrics and the hand path each run Cnn14
def test_panns_metrics_equal_the_hand_prepared_computation(dataset, tmp_path, random_cnn14):
    """Outputs (each another clip's audio) with a DC offset of 0.3: one 0.5 s longer (a loud tail past the cut), one
    0.5 s shorter, the rest full length. kl_panns per clip, is_panns and fad_panns equal
    the computation on hand-prepared audio. Planted bugs caught: zero-padding the short
    output (the old length rule), cutting before resampling, keeping the DC on a padded
    output, preparing one side only."""
    from copbench.metrics.frechet import frechet_distance
    from copbench.metrics.panns_scores import inception_score
    net, path = random_cnn14
    set_override("panns", path)
    clips = _clips(dataset)
    assert len(clips) >= 3
    folder = tmp_path / "outs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    written = {}
    for i, clip in enumerate(clips):
        other = clips[(i + 1) % len(clips)]  # another clip's audio: values far from 0
        audio = other.audio().astype(np.float32) + DC
        if i == 0:
            tail = rng.standard_normal(clip.sample_rate // 2).astype(np.float32)
            audio = np.concatenate([audio, tail])
        elif i == 1:
            audio = audio[: clip.num_samples - clip.sample_rate // 2]
        soundfile.write(folder / f"{clip.id}.wav", audio, clip.sample_rate, subtype="FLOAT")
        written[clip.id] = audio
    res = run_benchmark(str(folder), dataset, metrics=["kl_panns", "is_panns", "fad_panns"],
                        progress=False)
    seconds = clips[0].num_samples / clips[0].sample_rate
    hand_out, hand_ref = {}, {}
    for clip in clips:
        hand_out[clip.id] = _by_hand(net, written[clip.id], clip.sample_rate, seconds)
        hand_ref[clip.id] = _by_hand(net, clip.audio(), clip.sample_rate, seconds)
        out_logits, ref_logits = hand_out[clip.id][1], hand_ref[clip.id][1]
        F = torch.nn.functional
        kl = float(F.kl_div(F.log_softmax(out_logits, 0), F.log_softmax(ref_logits, 0),
                            reduction="sum", log_target=True))
        assert kl > 1e-3  # the gain makes clips differ
        assert res["per_clip"][clip.id]["kl_panns"] == pytest.approx(kl, rel=1e-6)
    logits = np.stack([hand_out[c.id][1].numpy() for c in clips])
    assert res["metrics"]["is_panns"]["mean"] == pytest.approx(
        inception_score(logits, splits=len(clips))[0], rel=1e-9)
    with pytest.warns(UserWarning, match="rank_deficient"):  # 4 clips, 2048 dimensions
        fad = frechet_distance(np.stack([hand_out[c.id][0] for c in clips]),
                               np.stack([hand_ref[c.id][0] for c in clips]))
    assert res["metrics"]["fad_panns"]["mean"] == pytest.approx(fad, rel=1e-6, abs=1e-9)
    # the short output is not padded: padding it changes its logits
    short = clips[1]
    padded = _by_hand(net, fit_length(written[short.id], short.num_samples), short.sample_rate,
                      seconds)[1]
    assert not torch.allclose(padded, hand_out[short.id][1], rtol=1e-4, atol=1e-6)
    for name in ("kl_panns", "is_panns", "fad_panns"):
        settings = res["provenance"]["metrics"][name]["settings"]
        assert "mean removed" in settings["dc"] and "not padded" in settings["length_rule"]
    assert "av-benchmark" in res["provenance"]["dc"]
    assert res["provenance"]["audio_fixes"]["length_fixed"] == 2
