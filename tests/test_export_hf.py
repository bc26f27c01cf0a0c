"""Hugging Face export: round trip through datasets.load_dataset, and a clean push failure."""

from __future__ import annotations

import io
import json

import av
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from copdata import open_dataset
from copdata.build import build_dataset
from copdata.cli import main as cli_main
from copdata.errors import DatasetError
from copdata.export.hf import PublishError, export_hf
from copdata.notes import read_midi
from copdata.sources.base import BuildSettings
from copdata.sources.local import LocalSource

SETTINGS = BuildSettings(clip_seconds=1.0, fps=25.0, sample_rate=22050)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    from mediafactory import make_video

    src = tmp_path_factory.mktemp("inputs")
    for name, seconds in (("take_a.mp4", 3.3), ("take_b.mp4", 2.2), ("take_c.mp4", 2.1)):
        make_video(src / name, seconds=seconds, fps=25, size=(64, 32), sample_rate=22050)
    (src / "broken.mp4").write_bytes(b"not a video")
    out = tmp_path_factory.mktemp("ds") / "cop"
    summary = build_dataset(LocalSource(src, test_fraction=0.34), out, SETTINGS, progress=False)
    assert summary.clips >= 5 and summary.failed == 1
    return out


def _load(out):
    from copdata.export.hf import load_export

    # A private cache: datasets keys its cache on file names and mtimes, and the
    # clips of each test run differ only inside (encoder timestamps).
    return load_export(out, decode=False, cache_dir=str(out.parent / "hf_cache"))


def test_round_trip_every_view_equals_the_clip_files(dataset_dir, tmp_path):
    import datasets

    from copdata.export.hf import decode_audio
    ds = open_dataset(dataset_dir)
    splits = {r["split"] for r in ds.rows}
    assert splits == {"train", "test"}
    out = export_hf(dataset_dir, tmp_path / "hf", max_rows_per_shard=2, rows_per_group=1,
                    progress=False)
    shards = sorted(p.name for p in (out / "data").iterdir())
    n_train = sum(r["split"] == "train" for r in ds.rows)
    n_test = len(ds) - n_train
    expect = [f"test-{k:05d}-of-{-(-n_test // 2):05d}.parquet" for k in range(-(-n_test // 2))]
    expect += [f"train-{k:05d}-of-{-(-n_train // 2):05d}.parquet" for k in range(-(-n_train // 2))]
    assert shards == sorted(expect)
    for shard in (out / "data").iterdir():
        meta = pq.ParquetFile(shard).metadata
        assert all(meta.row_group(i).num_rows == 1 for i in range(meta.num_row_groups))

    loaded = _load(out)
    assert set(loaded) == splits
    seen = set()
    for split, part in loaded.items():
        assert part.features["roll"].shape == (None, 88)
        # Hub-native columns: the viewer plays them, cast_column works on them
        assert isinstance(part.features["audio"], datasets.Audio)
        assert isinstance(part.features["video"], datasets.Video)
        for row in part:
            clip = ds[row["id"]]
            seen.add(row["id"])
            assert row["split"] == clip.split == split
            assert row["video"]["bytes"] == (clip.dir / "video.mp4").read_bytes()
            assert row["audio"]["bytes"] == (clip.dir / "audio.flac").read_bytes()
            assert np.array_equal(decode_audio(row["audio"]), clip.audio())
            roll = np.asarray(row["roll"], dtype=np.uint8)
            assert roll.shape == (clip.num_frames, 88) and np.array_equal(roll, clip.roll())
            notes = read_midi(clip.dir / "notes.mid")
            assert row["notes"] == {"pitch": [n.pitch for n in notes],
                                    "start": [n.start for n in notes],
                                    "end": [n.end for n in notes],
                                    "velocity": [n.velocity for n in notes]}
            assert row["steps"] == clip.steps() and row["caption"] == clip.caption
            for key in ("source_id", "source", "segment", "start", "end", "midi_origin"):
                assert row[key] == clip.row[key], key
            assert row["file"] == clip.row["meta"]["file"]  # source metadata column
            assert row["stats"]["notes"] == clip.row["stats"]["notes"] == len(notes)
            # the embedded bytes are the media: they decode to the clip's frame count
            with av.open(io.BytesIO(row["video"]["bytes"])) as c:
                assert sum(1 for _ in c.decode(video=0)) == clip.num_frames
    assert seen == set(ds.ids())


def test_dataset_card_states_the_facts(dataset_dir, tmp_path):
    out = export_hf(dataset_dir, tmp_path / "hf", progress=False)
    text = (out / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    ds = open_dataset(dataset_dir)
    files = {d["split"]: d["path"] for d in front["configs"][0]["data_files"]}
    assert files == {"train": "data/train-*", "test": "data/test-*"}
    assert front["license"] == "other" and "apache-2.0" in front["license_name"]
    assert front["task_categories"]
    counts = {s["name"]: s["num_examples"] for s in front["dataset_info"]["splits"]}
    assert counts == {s: len(ds.ids(s)) for s in ("train", "test")}
    assert {f["name"] for f in front["dataset_info"]["features"]} >= {
        "id", "split", "audio", "video", "roll", "notes", "steps"}
    tr = ds.settings["transcriber"]
    for fact in ("25 fps", f"{ds.sample_rate} Hz", "1 s", tr["name"], str(tr["version"]),
                 f'"onset_threshold": {tr["onset_threshold"]}', "aligned", "Apache-2.0",
                 "owners' terms", f"clips: {len(ds)}", *{r["source_id"] for r in ds.rows}):
        assert fact in text, fact
    assert "MediaError" in text  # the failed item is in the statistics
    assert tr["name"] == "basic-pitch" and not tr["note_post"]
    assert "note F1 0.692 on onsets, 0.156 with note ends" in text  # docs/transcription.md
    qa = ds.settings["qa"]  # a recorded build: solo piano needs the timbre, the card says so
    assert f"piano_timbre >= {qa['claim_piano_timbre']}" in text
    assert "0 of 40 others" in text and "## What the text steps claim" in text


def test_export_refuses_a_non_empty_folder_and_overwrites_on_request(dataset_dir, tmp_path):
    out = tmp_path / "hf"
    export_hf(dataset_dir, out, progress=False)
    with pytest.raises(DatasetError, match="not empty"):
        export_hf(dataset_dir, out, progress=False)
    export_hf(dataset_dir, out, max_rows_per_shard=1, overwrite=True, progress=False)
    assert len(list((out / "data").glob("*.parquet"))) == len(open_dataset(dataset_dir))


def test_push_without_token_or_network_fails_cleanly(dataset_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    with pytest.raises(PublishError, match="HF_HUB_OFFLINE"):
        export_hf(dataset_dir, tmp_path / "a", push="someone/cop", progress=False)
    assert not (tmp_path / "a").exists()  # checked before anything is written
    monkeypatch.setattr(c, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(c, "HF_TOKEN_PATH", str(tmp_path / "hf_home" / "token"))
    monkeypatch.setattr(c, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf_home" / "stored"))
    with pytest.raises(PublishError, match="no Hugging Face token"):
        export_hf(dataset_dir, tmp_path / "b", push="someone/cop", progress=False)
    # CLI: one clear line, non-zero exit, no traceback
    code = cli_main(["export", str(dataset_dir), "--out", str(tmp_path / "c"),
                     "--push", "someone/cop", "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and "no Hugging Face token" in err and "Traceback" not in err


def test_cli_export(dataset_dir, tmp_path, capsys):
    code = cli_main(["export", str(dataset_dir), "--format", "hf", "--out", str(tmp_path / "o"),
                     "--quiet"])
    assert code == 0
    assert f"exported {len(open_dataset(dataset_dir))} clips" in capsys.readouterr().out
    rows = json.loads(json.dumps(pq.read_table(next((tmp_path / "o" / "data").glob("*.parquet")),
                                               columns=["id"]).to_pylist()))
    assert rows


ROUND_TRIP = """
import sys, numpy as np
from copdata import open_dataset
from copdata.export.hf import decode_audio, decode_video, load_export, torchcodec_ready
export, data, cache, audio_format, decoder = sys.argv[1:6]
ds = open_dataset(data)
if decoder == "datasets":  # datasets' own Audio/Video decoding (torchcodec + FFmpeg)
    assert torchcodec_ready()
    loaded = load_export(export, decode=True, cache_dir=cache)
else:  # soundfile and PyAV only
    loaded = load_export(export, decode=False, cache_dir=cache)
    if audio_format == "array":
        loaded = loaded.with_format("numpy")
n = 0
for split, part in loaded.items():
    for row in part:
        clip = ds[str(row["id"])]
        if audio_format == "array":  # datasets itself gives the samples
            assert row["audio"]["array"].dtype == np.float32
            assert row["audio"]["sampling_rate"] == clip.sample_rate
        assert np.array_equal(decode_audio(row["audio"]), clip.audio()), clip.id
        frames = decode_video(row["video"])
        assert frames.shape == clip.frames().shape and np.array_equal(frames, clip.frames())
        n += 1
print("decoded", n)
"""


def _round_trip(out, dataset_dir, cache, audio_format, decoder):
    import os
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", ROUND_TRIP, str(out), str(dataset_dir),
                           str(cache), audio_format, decoder],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"decoded {len(open_dataset(dataset_dir))}" in proc.stdout


@pytest.mark.parametrize("audio_format", ["flac", "array"])
def test_export_decodes_audio_and_video_in_a_fresh_process(dataset_dir, tmp_path, audio_format):
    """No torchcodec: the export's audio and video decode with soundfile and PyAV."""
    out = export_hf(dataset_dir, tmp_path / "hf", progress=False, audio_format=audio_format)
    assert ("audio`: `{array" if audio_format == "array" else "audio`: `Audio`") in (
        out / "README.md").read_text(encoding="utf-8")
    _round_trip(out, dataset_dir, tmp_path / "cache", audio_format, "copdata")


def test_datasets_own_decoder_gives_the_same_samples_and_frames(dataset_dir, tmp_path):
    """datasets' Audio/Video decoding (torchcodec + a system FFmpeg) returns the
    clip's exact samples and frames, like the PyAV/soundfile helpers."""
    from copdata.export.hf import torchcodec_ready
    if not torchcodec_ready():
        pytest.skip("torchcodec with a system FFmpeg is not installed (pip install torchcodec "
                    "built for this torch; apt-get install ffmpeg)")
    out = export_hf(dataset_dir, tmp_path / "hf", progress=False)
    _round_trip(out, dataset_dir, tmp_path / "cache", "flac", "datasets")


def test_export_of_a_tampered_split_writes_nothing_outside_out(dataset_dir, tmp_path):
    import shutil

    from copdata.dataset.store import read_jsonl, write_json_atomic

    bad = tmp_path / "deep" / "er" / "ds"
    shutil.copytree(dataset_dir, bad)
    rows = read_jsonl(bad / "clips.jsonl")
    rows[0]["split"] = "../../../EVIL"
    write_json_atomic(bad / "clips.jsonl", rows, lines=True)
    out = tmp_path / "deep" / "er" / "hf"
    with pytest.raises(DatasetError, match="split"):
        export_hf(bad, out, progress=False)
    assert not list(tmp_path.rglob("*EVIL*")) and not out.exists()


def test_failed_export_leaves_no_partial_shards(dataset_dir, tmp_path):
    import shutil

    bad = tmp_path / "ds"
    shutil.copytree(dataset_dir, bad)
    last = open_dataset(bad).rows[-1]["id"]
    (bad / "clips" / last / "roll.npy").unlink()  # the export fails at the last clip
    out = tmp_path / "hf"
    code = cli_main(["export", str(bad), "--out", str(out), "--max-rows-per-shard", "1",
                     "--quiet"])
    assert code == 2
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["ds"]
