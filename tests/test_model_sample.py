"""copmodel on a real synthetic dataset: precompute, CLI train -> sample, Sampler API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import copdata
from copdata.build import build_dataset
from copdata.sources.base import BuildSettings
from copdata.sources.synth import SynthSource
from copmodel.audio import LogMel
from copmodel.cli import main
from copmodel.data import ClipTensors
from copmodel.errors import CheckpointError
from copmodel.presets import get_preset
from copmodel.sample import load_sampler


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth")
    build_dataset(SynthSource(num_items=3, item_seconds=4.0, seed=3), out,
                  BuildSettings(clip_seconds=2.0), workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def run_dir(synth_dir, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    for stage in (1, 2):
        assert main(["train", "--stage", str(stage), "--config", "micro", "--data", str(synth_dir),
                     "--out", str(run), "--max-steps", "2"]) == 0
    return run


def test_precompute_matches_the_clip_and_caches(synth_dir, tmp_path):
    cfg = get_preset("micro")
    mel = LogMel(cfg.audio)
    data = ClipTensors.from_folder(synth_dir, "train", cfg, mel, tmp_path / "cache")
    ds = copdata.open_dataset(synth_dir)
    assert data.ids == ds.ids("train") and len(data) > 0
    item = data[0]
    clip = ds[data.ids[0]]
    assert item["feats"].shape == (16, data.lens.feat_frames)
    assert item["frames"].shape == (clip.num_frames, 8, 48) and item["frames"].dtype == torch.uint8
    assert torch.equal(item["roll"], torch.as_tensor((clip.roll() > 0).astype(np.float32)))
    # a loud clip has a log-mel well above the log floor
    assert float(item["feats"].max()) > -3
    assert len(list((tmp_path / "cache").glob("*.npz"))) == len(data)
    again = ClipTensors.from_folder(synth_dir, "train", cfg, mel, tmp_path / "cache")
    assert torch.equal(again[0]["feats"], item["feats"])


def test_cache_of_another_format_is_recomputed_or_refused(synth_dir, tmp_path, monkeypatch,
                                                         caplog):
    """Cache format 1 stored the features as "mel": such files are never read as today's
    (the format is part of the file name) and a stray one is a clear error."""
    import copmodel.data as data_mod
    from copdata.errors import DatasetError

    cfg = get_preset("micro")
    rep = LogMel(cfg.audio)
    cache = tmp_path / "cache"
    data = ClipTensors.from_folder(synth_dir, "train", cfg, rep, cache)
    fresh = data[0]["feats"]
    clip = copdata.open_dataset(synth_dir)[data.ids[0]]
    # the format is in the key: another version names other files
    monkeypatch.setattr(data_mod, "CACHE_VERSION", 1)
    old_name = data_mod._cache_key(clip, cfg)
    monkeypatch.undo()
    assert old_name != data.paths[0].name and old_name.startswith(clip.id + ".")
    # an old-format cache (key "mel") under the old names: ignored, recomputed, with a warning
    old = tmp_path / "old"
    old.mkdir()
    for path in data.paths:
        arrays = data_mod.read_npz(path)
        arrays["mel"] = arrays.pop("feats") + 100  # would show if it were read
        c = copdata.open_dataset(synth_dir)[path.name.rsplit(".", 2)[0]]
        monkeypatch.setattr(data_mod, "CACHE_VERSION", 1)
        name = data_mod._cache_key(c, cfg)
        monkeypatch.undo()
        data_mod.write_npz_atomic(old / name, arrays)
    with caplog.at_level("WARNING", logger="copmodel.data"):
        again = ClipTensors.from_folder(synth_dir, "train", cfg, rep, old)
    assert torch.equal(again[0]["feats"], fresh)
    assert any(f"{len(data)} clips have cache files" in r.getMessage() for r in caplog.records)
    # an old-format file found under today's name is refused, naming the file
    arrays = data_mod.read_npz(again.paths[0])
    arrays["mel"] = arrays.pop("feats")
    data_mod.write_npz_atomic(again.paths[0], arrays)
    with pytest.raises(DatasetError, match="no 'feats' array") as err:
        again[0]
    assert err.value.item == str(again.paths[0])


def test_cli_sample_writes_exact_length_wavs(synth_dir, run_dir, tmp_path):
    ckpt = run_dir / "stage2" / "last.ckpt"
    assert (run_dir / "stage2" / "eval.json").is_file()
    scores = json.loads((run_dir / "stage2" / "eval.json").read_text())
    assert 0.0 <= scores["f1"] <= 1.0 and scores["clips"] >= 1
    out = tmp_path / "wavs"
    assert main(["sample", "--ckpt", str(ckpt), "--data", str(synth_dir), "--split", "test",
                 "--out", str(out), "--steps", "2"]) == 0
    ds = copdata.open_dataset(synth_dir)
    test_ids = ds.ids("test")
    assert sorted(p.stem for p in out.glob("*.wav")) == sorted(test_ids)
    audio, sr = copdata.media.decode.read_audio(out / f"{test_ids[0]}.wav")
    clip = ds[test_ids[0]]
    assert sr == clip.sample_rate and audio.shape == (clip.num_samples,)
    assert json.loads((out / "sampler.json").read_text())["stage"] == 2


def test_sampler_is_seeded_and_uses_the_predicted_roll(synth_dir, run_dir, tmp_path):
    sampler = load_sampler(run_dir / "stage2" / "last.ckpt")
    info = sampler.info()
    assert info["stage"] == 2 and info["roll"] == "predicted (probabilities)"
    assert len(info["ckpt_sha256"]) == 64
    clip = next(copdata.open_dataset(synth_dir).clips("test"))
    a = sampler.generate(clip, seed=1, steps=2)
    b = sampler.generate(clip, seed=1, steps=2)
    c = sampler.generate(clip, seed=2, steps=2)
    assert a.dtype == np.float32 and a.shape == (clip.num_samples,)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # the ground-truth roll is never read at inference: replacing it changes nothing
    roll_path = clip.dir / "roll.npy"
    original = roll_path.read_bytes()
    try:
        np.save(roll_path, np.full((clip.num_frames, 88), 100, np.uint8))
        assert np.array_equal(sampler.generate(clip, seed=1, steps=2), a)
    finally:
        roll_path.write_bytes(original)
    assert sampler.predict_roll(clip).shape == (clip.num_frames, 88)


def test_missing_checkpoint_is_a_typed_error(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_sampler(tmp_path / "nope.ckpt")
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        load_sampler(tmp_path / "bad.ckpt")
    assert main(["sample", "--ckpt", str(tmp_path / "nope.ckpt"), "--data", str(tmp_path),
                 "--out", str(tmp_path / "o")]) == 2


def test_copbench_scores_a_checkpoint_through_the_sampling_api(synth_dir, run_dir, tmp_path):
    from copbench.run import run_benchmark

    ckpt = run_dir / "stage2" / "last.ckpt"
    results = run_benchmark(str(ckpt), synth_dir, "test", metrics=["si_sdr", "midi"],
                            out=tmp_path, progress=False)
    test_ids = copdata.open_dataset(synth_dir).ids("test")
    name = f"{run_dir.name}-stage2"
    assert results["model"] == name and (tmp_path / f"{name}.json").is_file()
    assert sorted(results["per_clip"]) == sorted(test_ids)
    assert results["metrics"]["si_sdr"]["n"] == len(test_ids)
    assert 0.0 <= results["metrics"]["midi_note_f1"]["mean"] <= 1.0
    again = run_benchmark(str(ckpt), synth_dir, "test", metrics=["si_sdr"], progress=False)
    first = {k: v["si_sdr"] for k, v in results["per_clip"].items()}
    assert {k: v["si_sdr"] for k, v in again["per_clip"].items()} == first  # seeded sampling
    # the track reaches the sampler (v2a: a neutral prompt, so other audio) and is recorded
    assert results["track"] == "tv2a" and results["provenance"]["model"]["track"] == "tv2a"
    v2a = run_benchmark(str(ckpt), synth_dir, "test", metrics=["si_sdr"], progress=False,
                        track="v2a")
    assert v2a["track"] == "v2a"
    assert {k: v["si_sdr"] for k, v in v2a["per_clip"].items()} != first


def test_reconstruct_and_rollsynth_baselines_through_copbench(synth_dir, run_dir, tmp_path):
    from copbench.run import run_benchmark
    from copdata.render.piano import render_notes

    ckpt = run_dir / "stage2" / "last.ckpt"
    ds = copdata.open_dataset(synth_dir)
    clip = next(ds.clips("test"))
    sampler = load_sampler(ckpt)
    for output in ("reconstruct", "rollsynth"):
        results = run_benchmark(f"{output}:{ckpt}", synth_dir, "test", metrics=["si_sdr"],
                                out=tmp_path, progress=False)
        assert output in results["model"] and (tmp_path / f"{results['model']}.json").is_file()
        assert sorted(results["per_clip"]) == sorted(ds.ids("test"))
    notes = sampler.predict_notes(clip)
    expected = render_notes(notes, clip.sample_rate, clip.seconds)[: clip.num_samples]
    got = sampler.rollsynth(clip)
    assert got.shape == (clip.num_samples,)
    assert np.allclose(got[: len(expected)], expected, rtol=1e-5, atol=1e-7)
    assert main(["sample", "--ckpt", str(ckpt), "--data", str(synth_dir), "--split", "test",
                 "--out", str(tmp_path / "rs"), "--output", "reconstruct", "--limit", "1"]) == 0
    assert json.loads((tmp_path / "rs" / "sampler.json").read_text())["output"] == "reconstruct"
    assert len(list((tmp_path / "rs").glob("*.wav"))) == 1
    from copbench.errors import ModelError
    from copbench.models import resolve_model

    with pytest.raises(ModelError, match="Roll Predictor"):
        resolve_model(f"rollsynth:{run_dir / 'stage1' / 'last.ckpt'}")
    with pytest.raises(ModelError, match="not found"):
        resolve_model(f"reconstruct:{tmp_path / 'missing.ckpt'}")


def test_roll_to_notes_gives_one_note_per_run():
    from copmodel.roll_predictor import roll_to_notes

    roll = np.zeros((10, 88), np.uint8)
    roll[2:5, 39] = 1  # C4 (MIDI 60), frames 2-4
    roll[6:7, 39] = 1
    roll[0:10, 0] = 1
    notes = roll_to_notes(roll, fps=25.0)
    assert [(n.pitch, n.start, n.end) for n in notes] == [
        (21, 0.0, 0.4), (60, 0.08, 0.2), (60, 0.24, 0.28)]


def test_default_representation_ceiling_is_near_the_ground_truth(synth_dir):
    """The tiny preset's audio representation, round-tripped, keeps the notes."""
    from copdata.scoring import note_scores
    from copdata.transcription import get_transcriber
    from copmodel.audio import build_audio, round_trip

    rep = build_audio(get_preset("tiny").audio)
    transcriber = get_transcriber()
    gt, rt = [], []
    for clip in copdata.open_dataset(synth_dir).clips():
        ref = clip.notes()
        gt.append(note_scores(ref, transcriber.transcribe(clip.audio(), clip.sample_rate))["f1"])
        audio = round_trip(clip.audio(), clip.sample_rate, rep, clip.num_samples)
        rt.append(note_scores(ref, transcriber.transcribe(audio, clip.sample_rate))["f1"])
    assert np.mean(gt) > 0.5
    assert np.mean(rt) >= np.mean(gt) - 0.1, (gt, rt)


def test_train_takes_a_yaml_config_and_set_and_saves_them(synth_dir, tmp_path, capsys):
    from copmodel.ckpt import load_checkpoint
    from copmodel.errors import ConfigError
    from copmodel.presets import load_config

    cfg_file = tmp_path / "exp.yaml"
    cfg_file.write_text("preset: micro\nname: exp\nnet:\n  dim: 16\ntrain:\n  lr: 0.002\n")
    run = tmp_path / "run"
    assert main(["train", "--stage", "1", "--config", str(cfg_file), "--set", "train.seed=7",
                 "--set", "sample.guidance_convention=seed", "--data", str(synth_dir), "--out", str(run),
                 "--max-steps", "1"]) == 0
    err = capsys.readouterr().err
    assert "dim: 16" in err and "guidance_convention: seed" in err  # printed at start
    saved = load_checkpoint(run / "stage1" / "last.ckpt")["config"]
    assert saved["name"] == "exp" and saved["net"]["dim"] == 16 and saved["train"]["lr"] == 0.002
    assert saved["train"]["seed"] == 7 and saved["sample"]["guidance_convention"] == "seed"
    assert saved["audio"] == get_preset("micro").to_dict()["audio"]
    with pytest.raises(ConfigError, match="net.dim"):
        load_config("micro", ["net.dim=sixteen"])
    with pytest.raises(ConfigError, match="sample.guidance_convention must be one of"):
        load_config("micro", ["sample.guidance_convention=theirs"])
    cfg_file.write_text("net:\n  width: 3\n")
    with pytest.raises(ConfigError, match="width"):
        load_config(str(cfg_file))
    assert main(["train", "--stage", "1", "--config", "micro", "--set", "nope=1", "--data",
                 str(synth_dir), "--out", str(run)]) == 2


def test_tracks_v2a_gives_every_clip_one_neutral_prompt_tv2a_its_caption(synth_dir, run_dir):
    from copmodel.errors import ConfigError
    from copmodel.sample import NEUTRAL_PROMPT, TRACKS
    from copmodel.text import encode_caption

    assert TRACKS == ("v2a", "tv2a")
    sampler = load_sampler(run_dir / "stage2" / "last.ckpt", device="cpu")
    ds = copdata.open_dataset(synth_dir)
    clips = list(ds.clips("train"))[:2] + list(ds.clips("test"))[:1]
    assert len({c.caption for c in clips}) >= 2  # the captions differ
    neutral = torch.as_tensor(encode_caption(NEUTRAL_PROMPT, sampler.cfg.net)[0])
    for clip in clips:
        v2a, tv2a = sampler.conditions(clip, "v2a"), sampler.conditions(clip, "tv2a")
        assert torch.equal(v2a["text"][0], neutral)
        assert torch.equal(tv2a["text"][0],
                           torch.as_tensor(encode_caption(clip.caption, sampler.cfg.net)[0]))
        assert torch.equal(v2a["frames"], tv2a["frames"])
    # behaviour: rewriting the clip's caption changes tv2a audio, never v2a audio
    clip = clips[-1]
    a_v, a_t = (sampler.generate(clip, seed=1, steps=2, track=t) for t in ("v2a", "tv2a"))
    assert np.array_equal(sampler.generate(clip, seed=1, steps=2), a_t)  # tv2a is the default
    steps_path = clip.dir / "steps.json"
    original = steps_path.read_bytes()
    try:
        steps = json.loads(original)
        steps[0]["text"] = "a completely different caption in C minor at 200 bpm"
        steps_path.write_text(json.dumps(steps))
        again = copdata.open_dataset(synth_dir)[clip.id]
        assert again.caption == steps[0]["text"]
        assert np.array_equal(sampler.generate(again, seed=1, steps=2, track="v2a"), a_v)
        assert not np.array_equal(sampler.generate(again, seed=1, steps=2, track="tv2a"), a_t)
    finally:
        steps_path.write_bytes(original)
    with pytest.raises(ConfigError, match="track"):
        sampler.generate(clip, seed=1, steps=2, track="a2v")
    info = sampler.info()
    assert info["guidance_weight"] == sampler.cfg.sample.guidance_weight and "cfg" not in info


def test_checkpoints_with_the_old_guidance_keys_still_load():
    from copmodel.presets import Config

    old = Config().to_dict()
    old["sample"] = {"steps": 4, "cfg": 3.0, "guidance": "seed"}
    cfg = Config.from_dict(old)
    assert cfg.sample.guidance_weight == 3.0 and cfg.sample.guidance_convention == "seed"
