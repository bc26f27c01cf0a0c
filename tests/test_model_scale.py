"""copmodel past a toy dataset: streaming normalisation statistics, the step
DataLoader, the Roll Predictor in bounded chunks, the bounded predicted-roll cache
and the memory-mapped preference file."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from copmodel.audio import FeatureStats, build_audio
from copmodel.ckpt import load_checkpoint
from copmodel.presets import get_preset
from copmodel.roll_predictor import RollPredictor
from copmodel.train import Trainer, train

sys.path.insert(0, str(Path(__file__).parent))
from test_model_train import make_tensors  # noqa: E402


def test_streaming_statistics_equal_the_stacked_formula():
    rng = np.random.default_rng(0)
    # channels with very different means and spreads, 7 maps of 40 frames
    maps = [torch.from_numpy((rng.normal(0, 1, (5, 40)) * [[1], [2], [0.1], [5], [1]]
                              + [[-6], [0], [3], [10], [-1]]).astype(np.float32))
            for _ in range(7)]
    stack = torch.stack(maps)  # (N, C, M)
    # the oracle: every map stacked, per-channel mean, std of all deviations (old code)
    flat = stack.transpose(0, 1).reshape(5, -1).double()
    mean = flat.mean(dim=1)
    std = float((flat - mean[:, None]).std())
    stats = FeatureStats(5)
    for m in maps:
        stats.add(m)
    got_mean, got_std = stats.result()
    assert torch.allclose(got_mean.double(), mean, atol=1e-5)
    assert got_std == pytest.approx(std, rel=1e-6)
    # the representation's fit_stats takes a stack (N, C, M) or any iterable of maps
    rep = build_audio(get_preset("micro").audio)
    big = torch.from_numpy(rng.normal(-4, 2, (3, rep.channels, 30)).astype(np.float32))
    rep.fit_stats(big)
    flat = big.transpose(0, 1).reshape(rep.channels, -1)
    assert torch.allclose(rep.mean, flat.mean(dim=1), atol=1e-5)
    assert float(rep.std[0]) == pytest.approx(float((flat - flat.mean(1, keepdim=True)).std()),
                                              rel=1e-5)
    rep.fit_stats(iter(list(big)))
    assert torch.allclose(rep.mean, flat.mean(dim=1), atol=1e-5)


def test_stats_from_a_seeded_subset_of_clips_are_those_clips_stats(tmp_path):
    cfg = get_preset("micro")
    data = make_tensors(cfg, n=6)
    picked = list(data.feature_maps(limit=3, seed=5))
    assert len(picked) == 3
    assert [m.tolist() for m in picked] == [m.tolist() for m in data.feature_maps(limit=3, seed=5)]
    everything = list(data.feature_maps())
    assert len(everything) == 6
    # the subset is drawn (not the first three clips) and is a subset of the clips
    keys = [tuple(m.flatten()[:4].tolist()) for m in everything]
    assert {tuple(m.flatten()[:4].tolist()) for m in picked} <= set(keys)
    t = Trainer(1, cfg.override(train={"stats_clips": 3, "seed": 5}), data, tmp_path,
                progress=False)
    stats = FeatureStats(t.core.audio.channels)
    for m in picked:
        stats.add(m)
    mean, std = stats.result()
    assert torch.allclose(t.core.audio.mean, mean) and float(t.core.audio.std[0]) == pytest.approx(std)


def test_dataloader_workers_train_the_same_weights_as_the_loop(tmp_path):
    cfg = get_preset("micro").override(train={"max_steps": 3})
    data = make_tensors(cfg)
    inline = load_checkpoint(train(1, cfg, data, tmp_path / "a", progress=False)["ckpt"])
    workers = cfg.override(train={"num_workers": 2})
    t = Trainer(1, workers, data, tmp_path / "b", progress=False)
    loader = t.loader(0)
    assert loader.num_workers == 2 and len(loader) == 3
    steps = [step for step, _ in loader]
    assert steps == [0, 1, 2]
    loaded = load_checkpoint(t.run()["ckpt"])
    for k, v in inline["weights"].items():
        assert torch.equal(v, loaded["weights"][k]), k


def test_roll_predictor_probabilities_go_through_in_bounded_chunks():
    cfg = get_preset("micro").net
    torch.manual_seed(0)
    model = RollPredictor(cfg).eval()
    frames = torch.randint(0, 256, (3, 10, cfg.frame_height, cfg.frame_width), dtype=torch.uint8)
    with torch.no_grad():
        whole = torch.sigmoid(model(frames))  # the oracle: every frame in one pass
    seen = []
    hook = model.conv.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]))
    try:
        chunked = model.probabilities(frames, chunk=4)
    finally:
        hook.remove()
    assert torch.allclose(chunked, whole, atol=1e-6)
    # old code chunked time only: 3 clips x 4 frames = 12 stacks per pass
    assert max(seen) <= 4 and sum(seen) == 30


def test_predicted_roll_cache_is_bounded(tmp_path):
    cfg = get_preset("micro")
    data = make_tensors(cfg, n=6)
    t = Trainer(1, cfg, data, tmp_path, progress=False)
    t.predicted_cache_size = 2
    rolls = [t.predicted_roll(i) for i in range(5)]
    assert len(t._predicted) == 2 and list(t._predicted) == [3, 4]
    again = t.predicted_roll(0)  # recomputed after eviction, same values
    assert torch.equal(again, rolls[0]) and len(t._predicted) == 2


def test_preference_file_is_memory_mapped(tmp_path, monkeypatch):
    from copmodel.prefs import load_preferences

    path = tmp_path / "prefs.pt"
    # a file written before the renames: "cfg" for the guidance weight, "mel_w"/"mel_l"
    torch.save({"pairs": [{"clip_id": "c0", "mel_w": torch.ones(2, 3), "mel_l": torch.zeros(2, 3),
                           "roll": torch.zeros(4, 88), "cfg": 2.0}], "info": {}}, path)
    calls = []
    real = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    prefs = load_preferences(path)
    assert calls and calls[-1].get("mmap") is True and calls[-1].get("weights_only") is True
    pair = prefs["pairs"][0]
    assert pair["guidance_weight"] == 2.0 and "cfg" not in pair  # old key read as the new one
    assert torch.equal(pair["feats_w"], torch.ones(2, 3))
    assert torch.equal(pair["feats_l"], torch.zeros(2, 3)) and "mel_w" not in pair


STATS_SCRIPT = """
import json, sys, torch
sys.path.insert(0, {tests!r})
from test_model_train import make_tensors
from copmodel.presets import get_preset
from copmodel.train import Trainer, make_accelerator
cfg = get_preset("micro")
acc = make_accelerator(cfg, 1)
# each rank is handed different clips: the statistics must still be the main process's
data = make_tensors(cfg, seed=acc.process_index)
t = Trainer(1, cfg, data, sys.argv[1], progress=False, accelerator=acc)
own = torch.stack(list(data.feature_maps())).transpose(0, 1).reshape(16, -1).mean(1)
with open(f"{{sys.argv[1]}}/rank{{acc.process_index}}.json", "w") as fh:
    json.dump({{"mean": t.core.audio.mean.tolist(), "std": float(t.core.audio.std[0]),
               "own_mean": own.tolist()}}, fh)
"""


@pytest.mark.slow
def test_statistics_are_computed_on_the_main_process_and_broadcast(tmp_path):
    import json
    import os

    from test_model_train import REPO, _torchrun_two

    script = tmp_path / "stats.py"
    script.write_text(STATS_SCRIPT.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = _torchrun_two(script, env, str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["own_mean"] != r1["own_mean"]  # the ranks really saw different clips
    assert r1["mean"] == r0["mean"] and r1["std"] == r0["std"]
    assert np.allclose(r0["mean"], r0["own_mean"], atol=1e-5)  # rank 0's own statistics
