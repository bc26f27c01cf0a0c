"""copmodel.sample's Sampler and sample_split on an untrained micro model (issue 21).

No training: what is checked is what the sampling API does around the network
(seeding, defaults, the conditions it passes, lengths, the peak limit, the
provenance it records, the files it writes), each against an oracle that does
not go through the code under test: torch's seeded generator, the config's own
values, hashlib, copdata's piano renderer, a peak limit worked by hand.
``tests/test_model_sample.py`` runs the same API on trained checkpoints.
"""

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from copmodel.errors import CheckpointError, ConfigError
from copmodel.presets import get_preset
from copmodel.sample import NEUTRAL_PROMPT, Sampler, _limit, load_sampler, sample_split, track_caption
from copmodel.text import encode_caption

SR = 16000


@pytest.fixture(scope="module")
def model():
    from copmodel.model import CoPModel
    from test_model_parts import perturb_zero_layers
    torch.manual_seed(0)
    net = CoPModel(get_preset("micro"))
    perturb_zero_layers(net)  # zero-initialised output layers would hide the inputs
    return net


def _clip(clip_id="c1", seconds=1.0, sample_rate=SR, num_samples=None):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (int(25 * seconds), 32, 64, 3), dtype=np.uint8)
    return SimpleNamespace(id=clip_id, frames=lambda: frames, caption="A bright piece in G major.",
                           fps=25.0, seconds=seconds, sample_rate=sample_rate,
                           num_samples=num_samples or int(seconds * sample_rate),
                           audio=lambda: np.zeros(int(seconds * sample_rate), np.float32))


def test_the_peak_limit_worked_by_hand():
    assert _limit(np.array([2.0, -1.0])).tolist() == pytest.approx([0.99, -0.495])
    assert _limit(np.array([1.5, -0.75])).tolist() == pytest.approx([0.99, -0.495])
    kept = _limit(np.array([0.5, -0.99], np.float64))  # 0.99 itself is not above the limit
    assert kept.dtype == np.float32 and kept.tolist() == pytest.approx([0.5, -0.99])
    empty = _limit(np.zeros(0))
    assert empty.dtype == np.float32 and empty.size == 0


def test_track_captions():
    clip = _clip()
    assert NEUTRAL_PROMPT == "a piano performance"
    assert track_caption(clip, "v2a") == NEUTRAL_PROMPT
    assert track_caption(clip, "tv2a") == clip.caption
    with pytest.raises(ConfigError) as caught:
        track_caption(clip, "t2a")
    assert caught.value.item == "t2a"


def test_info_records_the_checkpoint_and_the_roll_form(model, monkeypatch):
    cfg = model.cfg
    info = Sampler(model, 2, "runs/stage2.pt", "f00d", 17).info()
    assert info == {"ckpt": "runs/stage2.pt", "ckpt_sha256": "f00d", "stage": 2, "train_step": 17,
                    "config": cfg.to_dict(), "steps": cfg.sample.steps,
                    "guidance_weight": cfg.sample.guidance_weight,
                    "guidance_convention": cfg.sample.guidance_convention,
                    "sway": cfg.sample.sway, "device": "cpu",
                    "roll": "predicted (probabilities)"}
    assert Sampler(model, 1, "s1.pt", "h", 0).info()["roll"] == "none"
    from dataclasses import replace
    sampler = Sampler(model, 3, "s3.pt", "h", 0)
    sampler.cfg = replace(cfg, train=replace(cfg.train, roll_condition="true"))
    assert sampler.info()["roll"] == "predicted (thresholded)"


def test_conditions_carry_the_tracks_caption_and_from_stage_2_the_predicted_roll(model):
    clip = _clip()
    stage1 = Sampler(model, 1, "s1.pt", "h", 0).conditions(clip, track="v2a")
    assert "roll" not in stage1
    want_text, want_mask = encode_caption(NEUTRAL_PROMPT, model.cfg.net)
    assert torch.equal(stage1["text"][0], torch.as_tensor(want_text))
    assert torch.equal(stage1["text_mask"][0], torch.as_tensor(want_mask))
    stage2 = Sampler(model, 2, "s2.pt", "h", 0).conditions(clip)
    assert torch.equal(stage2["text"][0], torch.as_tensor(encode_caption(clip.caption, model.cfg.net)[0]))
    with torch.no_grad():
        want_roll = model.roll_predictor.probabilities(stage2["frames"])
    assert torch.equal(stage2["roll"], want_roll) and stage2["roll"].shape[1:] == (25, 88)


def test_generate_features_seeds_the_noise_and_passes_the_defaults(model, monkeypatch):
    sampler = Sampler(model, 2, "s2.pt", "h", 0)
    calls = []

    def fake_generate(batch, noise, stage, steps, guidance):
        calls.append((sorted(batch), noise.clone(), stage, steps, guidance))
        return noise * 2.0
    monkeypatch.setattr(model, "generate", fake_generate)
    clip = _clip()
    feats = sampler.generate_features(clip, seed=11)
    keys, noise, stage, steps, guidance = calls[-1]
    lens_frames = noise.shape[-1]
    # the noise is torch's generator seeded with the seed, (1, channels, mel frames)
    want = torch.randn(1, model.audio.channels, lens_frames, generator=torch.Generator().manual_seed(11))
    assert torch.equal(noise, want)
    assert (stage, steps, guidance) == (2, model.cfg.sample.steps, model.cfg.sample.guidance_weight)
    assert keys == ["frames", "roll", "text", "text_mask"]
    assert feats.dtype == np.float32 and np.array_equal(feats, (want[0] * 2.0).numpy())
    # steps and guidance as asked, a guidance of 0 included; a batch given is used as is
    batch = {"frames": None}
    sampler.generate_features(clip, seed=11, steps=3, guidance=0.0, batch=batch)
    assert calls[-1][0] == ["frames"] and calls[-1][3:] == (3, 0.0)
    # generate passes them on (the vocoder replaced: it is slow)
    monkeypatch.setattr(model.audio, "decode", lambda f, n: np.zeros(n))
    sampler.generate(clip, seed=11, steps=2, guidance=0.5)
    assert calls[-1][3:] == (2, 0.5)


def test_generate_is_the_seeded_features_vocoded_to_the_clips_length_and_rate(model, monkeypatch):
    from scipy.signal import resample_poly
    sampler = Sampler(model, 2, "s2.pt", "h", 0)
    clip = _clip(sample_rate=22050, num_samples=22000)
    decoded = []

    def decode(features, num_samples):  # the vocoder (NNLS + Griffin-Lim) is slow: a stand-in
        decoded.append(num_samples)
        t = np.arange(num_samples) / 16000.0  # a pitch that follows the features
        return 3.0 * np.sin(2 * np.pi * (220.0 + 50.0 * float(np.mean(features))) * t)
    monkeypatch.setattr(model.audio, "decode", decode)
    a = sampler.generate(clip, seed=3, steps=1, guidance=0.5)
    assert decoded == [16000]  # the 1 s clip at the model's 16 kHz
    feats = sampler.generate_features(clip, seed=3, steps=1, guidance=0.5)
    # oracle: scipy's polyphase resampling 16 kHz -> 22.05 kHz (x 441 / 320), cut to the
    # clip's 22000 samples, the peak brought down to 0.99
    want = resample_poly(decode(feats, 16000), 441, 320)[:22000]
    want = want * (0.99 / np.abs(want).max())
    assert a.shape == (22000,) and a.dtype == np.float32
    assert a == pytest.approx(want.astype(np.float32), abs=1e-6)
    # (the seeding itself: test_generate_features_seeds_the_noise_and_passes_the_defaults)
    # the v2a track gives the model another caption: other features for the same seed
    v2a = sampler.generate(clip, seed=3, steps=1, guidance=0.5, track="v2a")
    assert v2a.shape == (22000,) and not np.array_equal(a, v2a)


def test_rollsynth_renders_the_predicted_notes_with_copdatas_piano(model, monkeypatch):
    from copdata.notes import Note
    from copdata.render.piano import render_notes
    sampler = Sampler(model, 2, "s2.pt", "h", 0)
    notes = [Note(0.1, 0.5, 60, 80), Note(0.4, 0.9, 67, 80)]
    clip = _clip(num_samples=SR - 100)
    monkeypatch.setattr(sampler, "predict_notes", lambda c: notes if c is clip else None)
    audio = sampler.rollsynth(clip)
    want = np.asarray(render_notes(notes, SR, 1.0), np.float32)[:SR - 100]
    assert audio.shape == (SR - 100,) and np.array_equal(audio, want)


def test_predicted_notes_are_the_runs_of_the_predicted_roll(model, monkeypatch):
    sampler = Sampler(model, 2, "s2.pt", "h", 0)
    clip = _clip()
    roll = np.zeros((25, 88), np.uint8)
    roll[5:10, 60 - 21] = 1  # C4 on frames 5..9 at 25 fps: 0.2 s to 0.4 s
    roll[20:25, 0] = 1       # A0 on the last five frames: 0.8 s to 1.0 s
    monkeypatch.setattr(sampler, "predict_roll", lambda c: roll if c is clip else None)
    from copdata.notes import Note
    assert sampler.predict_notes(clip) == [Note(0.2, 0.4, 60, 80), Note(0.8, 1.0, 21, 80)]
    assert sampler.predict_notes(clip, velocity=30)[0] == Note(0.2, 0.4, 60, 30)
    stage3 = Sampler(model, 3, "s3.pt", "h", 0)
    monkeypatch.setattr(stage3, "predict_roll", lambda c: roll)
    assert len(stage3.predict_notes(clip)) == 2


def test_reconstruct_is_the_round_trip_limited(model, monkeypatch):
    import copmodel.audio
    seen = []

    def round_trip(audio, sample_rate, representation, num_samples):
        seen.append((audio, sample_rate, representation, num_samples))
        return np.array([3.0, -1.5, 0.0])
    monkeypatch.setattr(copmodel.audio, "round_trip", round_trip)
    clip = _clip(num_samples=15000)
    out = Sampler(model, 1, "s1.pt", "h", 0).reconstruct(clip)
    (audio, rate, rep, n), = seen
    assert np.array_equal(audio, clip.audio()) and (rate, rep, n) == (SR, model.audio, 15000)
    assert out.dtype == np.float32 and out.tolist() == pytest.approx([0.99, -0.495, 0.0])


def test_a_sampler_puts_the_model_and_its_inputs_on_its_device(model):
    import copy
    sampler = Sampler(copy.deepcopy(model), 2, "s2.pt", "h", 0, device="meta")
    assert next(sampler.model.parameters()).device.type == "meta" and not sampler.model.training
    batch = sampler.conditions(_clip())
    assert {v.device.type for v in batch.values()} == {"meta"}


def test_predicted_roll_and_notes_need_stage_2(model):
    with pytest.raises(CheckpointError, match="stage-1 checkpoint has no trained Roll Predictor") as caught:
        Sampler(model, 1, "runs/stage1.pt", "h", 0).predict_notes(_clip())
    assert caught.value.item == "runs/stage1.pt"
    sampler = Sampler(model, 2, "s2.pt", "h", 0)
    roll = sampler.predict_roll(_clip())
    assert roll.dtype == np.uint8 and roll.shape == (25, 88) and set(np.unique(roll)) <= {0, 1}
    batch = sampler.conditions(_clip())
    with torch.no_grad():
        want = model.roll_predictor.predict(batch["frames"], model.cfg.sample.roll_threshold)
    assert np.array_equal(roll, want[0].numpy().astype(np.uint8))


def test_load_sampler_reads_the_ema_weights_stage_step_and_hash(model, tmp_path):
    from copmodel.ckpt import save_checkpoint
    ema = {k: v + 1.0 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    path = tmp_path / "stage2.pt"
    save_checkpoint(path, {"config": model.cfg.to_dict(), "ema": ema, "stage": 2, "step": 7})
    sampler = load_sampler(path)
    assert (sampler.stage, sampler.step, sampler.ckpt_path) == (2, 7, str(path))
    assert sampler.ckpt_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert str(sampler.device) == "cpu" and not sampler.model.training
    loaded = sampler.model.state_dict()
    assert all(torch.equal(loaded[k], ema[k]) for k in ema)
    assert str(load_sampler(path, device="meta").device) == "meta"


class _FakeSampler:
    def __init__(self):
        self.cfg = SimpleNamespace(sample=SimpleNamespace(steps=6, guidance_weight=2.5))
        self.calls = []

    def info(self):
        from pathlib import Path
        return {"ckpt": Path("k.pt")}  # not JSON by itself: written as its text

    def generate(self, clip, seed, steps, guidance, track):
        self.calls.append(("generate", clip.id, seed, steps, guidance, track))
        return np.full(clip.num_samples, 0.25, np.float32)

    def reconstruct(self, clip):
        self.calls.append(("reconstruct", clip.id))
        return np.full(clip.num_samples, -0.5, np.float32)

    def rollsynth(self, clip):
        self.calls.append(("rollsynth", clip.id))
        return np.full(clip.num_samples, 0.125, np.float32)


def test_sample_split_writes_one_wav_per_clip_and_the_provenance(tmp_path):
    import json
    from copdata.media.decode import read_audio
    clips = [_clip("a", num_samples=800), _clip("b", num_samples=800), _clip("c", num_samples=800)]
    ds = SimpleNamespace(clips=lambda split: iter(clips) if split == "test" else iter([]))
    sampler = _FakeSampler()
    gen = tmp_path / "runs" / "gen"  # parent folders are made
    info = sample_split(sampler, ds, "test", gen, seed=5, limit=2, progress=False)
    assert sampler.calls == [("generate", "a", 5, None, None, "tv2a"), ("generate", "b", 5, None, None, "tv2a")]
    assert sorted(p.name for p in gen.iterdir()) == ["a.wav", "b.wav", "sampler.json"]
    audio, rate = read_audio(gen / "a.wav", SR)
    assert rate == SR and len(audio) == 800 and np.allclose(audio, 0.25, atol=1e-4)
    assert {**info, "ckpt": str(info["ckpt"])} == {
        "ckpt": "k.pt", "output": "generate", "seed": 5, "split": "test", "clips": 2,
        "steps": 6, "guidance_weight": 2.5, "track": "tv2a"}
    assert json.loads((gen / "sampler.json").read_text()) == {**info, "ckpt": "k.pt"}
    sample_split(sampler, ds, "test", gen, limit=1, progress=False)  # into the same folder again
    info = sample_split(sampler, ds, "test", tmp_path / "v2a", steps=2, guidance=0.0, track="v2a",
                        progress=False)
    assert sampler.calls[-1] == ("generate", "c", 0, 2, 0.0, "v2a")
    assert (info["clips"], info["steps"], info["guidance_weight"], info["track"]) == (3, 2, 0.0, "v2a")
    for output, value in (("reconstruct", -0.5), ("rollsynth", 0.125)):
        info = sample_split(sampler, ds, "test", tmp_path / output, output=output, limit=1,
                            progress=False)
        assert sampler.calls[-1] == (output, "a") and info["track"] is None
        assert info["output"] == output
        audio, _ = read_audio(tmp_path / output / "a.wav", SR)
        assert np.allclose(audio, value, atol=1e-4)
    with pytest.raises(ConfigError) as caught:
        sample_split(sampler, ds, "test", tmp_path / "x", output="mix", progress=False)
    assert caught.value.item == "mix"
    with pytest.raises(ConfigError) as caught:
        sample_split(sampler, ds, "test", tmp_path / "x", track="a2v", progress=False)
    assert caught.value.item == "a2v"


def test_sample_split_opens_a_dataset_folder_and_shows_progress_when_asked(tmp_path, monkeypatch, capsys):
    import copdata
    clips = [_clip("a", num_samples=400), _clip("b", num_samples=400)]
    opened = []
    monkeypatch.setattr(copdata, "open_dataset",
                        lambda path: opened.append(path) or SimpleNamespace(clips=lambda split: iter(clips)))
    sampler = _FakeSampler()
    sample_split(sampler, str(tmp_path / "data"), "test", tmp_path / "out")
    assert opened == [str(tmp_path / "data")]
    err = capsys.readouterr().err
    assert "generate: 100%" in err and "2/2" in err and "clip/s" in err
    sample_split(sampler, tmp_path / "data", "test", tmp_path / "out", output="rollsynth", progress=False)
    assert opened[-1] == tmp_path / "data" and capsys.readouterr().err == ""
