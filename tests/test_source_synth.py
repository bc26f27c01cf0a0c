"""The synth source: items, splits, fetch of generated and user MIDI performances."""

from __future__ import annotations

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest

from copdata.errors import MidiError
from copdata.ids import sanitize_source_id
from copdata.notes import NUM_KEYS, Note, snap_notes, write_midi
from copdata.render.keyboard import KeyboardRenderer
from copdata.roll import render_roll
from copdata.sources.base import BuildSettings, Source
from copdata.sources.synth import SynthSource, assign_splits

SETTINGS = BuildSettings(fps=25.0, sample_rate=16000, clip_seconds=2.0)


def test_items_ids_and_splits_deterministic():
    a = SynthSource(num_items=8, item_seconds=5.0, seed=3)
    b = SynthSource(num_items=8, item_seconds=5.0, seed=3)
    assert isinstance(a, Source) and a.name == "synth"
    items = a.items()
    assert items == b.items()
    assert [i.source_id for i in items] == [f"synth-3-{k:04d}" for k in range(8)]
    assert {i.split for i in items} == {"train", "test"}
    # picklable for worker processes
    assert pickle.loads(pickle.dumps(a)).items() == items
    json.dumps(a.describe())
    assert a.describe()["name"] == "synth" and a.describe()["seed"] == 3


def test_splits_depend_on_seed_and_fraction():
    patterns = {tuple(i.split for i in SynthSource(num_items=6, seed=s).items()) for s in range(10)}
    assert len(patterns) > 3
    for seed in range(10):
        splits = [i.split for i in SynthSource(num_items=2, seed=seed, test_fraction=0.25).items()]
        assert sorted(splits) == ["test", "train"]
    ids = [f"item{k}" for k in range(400)]
    share = sum(s == "test" for s in assign_splits(ids, 0, 0.25).values()) / len(ids)
    assert 0.18 < share < 0.32
    assert set(assign_splits(ids, 0, 0.0).values()) == {"train"}
    assert set(assign_splits(ids, 0, 1.0).values()) == {"test"}
    assert [i.split for i in SynthSource(num_items=1, test_fraction=0.25, seed=0).items()] in (
        ["train"], ["test"])


def test_fetch_generated_shapes_and_determinism():
    source = SynthSource(num_items=2, item_seconds=4.0, seed=1)
    item = source.items()[0]
    perf = source.fetch(item, SETTINGS)
    assert perf.duration == 4.0
    assert perf.audio.dtype == np.float32 and perf.audio.shape == (4 * 16000,)
    assert np.abs(perf.audio).max() > 0.01
    assert perf.midi_origin == "ground_truth"
    assert perf.notes and perf.notes == snap_notes(perf.notes, 4.0)
    frames = list(perf.frames())
    assert len(frames) == 100
    assert frames[0].shape == (80, 520, 3) and frames[0].dtype == np.uint8
    json.dumps(perf.meta)
    assert perf.meta["render_engine"].startswith("copdata-additive-piano")
    assert perf.meta["style"] in perf.meta["styles"]
    again = source.fetch(item, SETTINGS)
    assert np.array_equal(perf.audio, again.audio) and perf.notes == again.notes
    other = source.fetch(source.items()[1], SETTINGS)
    assert other.notes != perf.notes


def test_fetch_video_agrees_with_roll():
    source = SynthSource(num_items=1, item_seconds=3.0, seed=2, frame_size=(416, 64))
    perf = source.fetch(source.items()[0], SETTINGS)
    frames = np.stack(list(perf.frames()))
    assert frames.shape == (75, 64, 416, 3)
    roll = render_roll(perf.notes, len(frames), SETTINGS.fps)
    kb = KeyboardRenderer(416, 64)
    idle = kb.frame(np.zeros(NUM_KEYS, dtype=np.uint8))
    changed = np.any(frames != idle, axis=-1)  # (T, H, W)
    for k in range(NUM_KEYS):
        key_changed = changed[:, kb.key_map == k].all(axis=1)
        np.testing.assert_array_equal(key_changed, roll[:, k] > 0)
    assert roll.any()


def test_midi_dir_items_and_fetch(tmp_path: Path):
    notes = [Note(0.0, 0.5, 60, 80), Note(0.5, 1.0, 64, 90), Note(1.0, 2.25, 67, 100)]
    write_midi(notes, tmp_path / "my song; $(rm).mid")
    write_midi(notes[:2], tmp_path / "b.MIDI")
    (tmp_path / "broken.mid").write_bytes(b"not a midi file")
    (tmp_path / "readme.txt").write_text("ignored")
    source = SynthSource(midi_dir=tmp_path, seed=0)
    items = source.items()
    assert len(items) == 3
    ids = {i.label: i.source_id for i in items}
    assert ids[str(tmp_path / "b.MIDI")] == "b"
    assert ids[str(tmp_path / "my song; $(rm).mid")] == sanitize_source_id("my song; $(rm)")
    assert {i.split for i in items} == {"train", "test"}

    by_id = {i.source_id: i for i in items}
    perf = source.fetch(by_id[sanitize_source_id("my song; $(rm)")], SETTINGS)
    assert perf.duration == pytest.approx(2.25)
    assert perf.notes == snap_notes(notes)
    assert perf.audio.shape == (36000,)
    assert len(list(perf.frames())) == math.ceil(2.25 * 25)
    with pytest.raises(MidiError):
        source.fetch(by_id["broken"], SETTINGS)


def test_midi_dir_errors(tmp_path: Path):
    with pytest.raises(MidiError, match="no MIDI files"):
        SynthSource(midi_dir=tmp_path).items()
    with pytest.raises(MidiError, match="not found"):
        SynthSource(midi_dir=tmp_path / "absent").items()
    write_midi([], tmp_path / "empty.mid")
    source = SynthSource(midi_dir=tmp_path)
    with pytest.raises(MidiError, match="no"):
        source.fetch(source.items()[0], SETTINGS)


def test_settings_frame_size_used():
    source = SynthSource(num_items=1, item_seconds=1.0)
    settings = BuildSettings(fps=10.0, sample_rate=8000, frame_size=(312, 48))
    perf = source.fetch(source.items()[0], settings)
    frames = list(perf.frames())
    assert len(frames) == 10 and frames[0].shape == (48, 312, 3)
    assert perf.audio.shape == (8000,)


def test_synth_valid_split_is_carved_from_train_and_copbench_scores_it(tmp_path):
    import subprocess
    import sys

    from copdata.build import build_dataset
    from copdata.sources.base import BuildSettings, split_fraction
    from copdata.sources.synth import SynthSource

    src = SynthSource(num_items=6, item_seconds=2.0, seed=4, test_fraction=0.25,
                      valid_fraction=0.25)
    splits = {it.source_id: it.split for it in src.items()}
    plain = {it.source_id: it.split
             for it in SynthSource(num_items=6, item_seconds=2.0, seed=4).items()}
    assert {s for s in splits.values()} == {"train", "valid", "test"}
    # test is untouched; valid comes only from train, by the fraction rule (or the minimum)
    assert {k for k, v in splits.items() if v == "test"} == {k for k, v in plain.items()
                                                             if v == "test"}
    for sid, split in splits.items():
        if split == "valid":
            assert plain[sid] == "train"
            u = split_fraction(4, sid)
            assert 0.25 <= u < 0.5 or u == min(split_fraction(4, k) for k, v in plain.items()
                                               if v == "train")
    data = tmp_path / "data"
    build_dataset(SynthSource(num_items=3, item_seconds=2.0, seed=4, valid_fraction=0.3), data,
                  BuildSettings(clip_seconds=1.0), workers=1, progress=False)
    proc = subprocess.run([sys.executable, "-m", "copbench", "run", "--model", "baseline:oracle",
                           "--data", str(data), "--split", "valid", "--metrics", "si_sdr",
                           "--out", str(tmp_path / "res"), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    bad = subprocess.run([sys.executable, "-m", "copbench", "run", "--model", "baseline:oracle",
                          "--data", str(data), "--split", "dev", "--metrics", "si_sdr",
                          "--no-progress"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "splits present: test, train, valid" in bad.stderr
