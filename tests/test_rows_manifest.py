"""The shared manifest parser, source CLI registration, and typed clip rows."""

import json

import pytest

from copdata import open_dataset
from copdata.build import build_dataset
from copdata.cli import build_parser, main as cli_main
from copdata.dataset.rows import ClipRow
from copdata.sources import SOURCE_MODULES, source_module
from copdata.sources.base import BuildSettings
from copdata.sources.local import LocalSource
from copdata.sources.synth import SynthSource
from copdata.sources.youtube import read_manifest

# (cells of the shared columns, words the error must contain)
BAD_SHARED = [
    ("train,10,10,5,20,,,", "0 <= x0"),            # empty crop box
    ("train,1,2,3,,,,", "all of"),                   # partial crop box
    ("train,1.5,2,30,40,,,", "whole number"),        # fractional pixel
    ("train,,,,,9,3,", "after start"),               # end before start
    ("train,,,,,-1,,", "negative"),                  # negative start
    ("train,,,,,abc,,", "not a number"),             # not a number
    ("train,,,,,,,0", "at least 1"),                 # max_segments
    ("no/slash,,,,,,,", "split"),                    # split not a word
]
SHARED_HEADER = "split,crop_x0,crop_y0,crop_x1,crop_y1,start,end,max_segments"


def test_local_and_youtube_apply_the_same_row_rules(tmp_path):
    local_csv = tmp_path / "local.csv"
    yt_csv = tmp_path / "yt.csv"
    local_csv.write_text("# a comment line\npath," + SHARED_HEADER + "\n" + "".join(
        f"v{k}.mp4,{cells}\n" for k, (cells, _) in enumerate(BAD_SHARED)), encoding="utf-8")
    yt_csv.write_text("# a comment line\nurl," + SHARED_HEADER + "\n" + "".join(
        f"http://x.org/v{k}.mp4,{cells}\n" for k, (cells, _) in enumerate(BAD_SHARED)),
        encoding="utf-8")
    local_items = LocalSource(local_csv).items()
    yt_items = read_manifest(yt_csv)
    assert len(local_items) == len(yt_items) == len(BAD_SHARED)
    for (cells, needle), li, yi in zip(BAD_SHARED, local_items, yt_items):
        local_error = li.meta["manifest_error"]
        yt_error = yi.meta["manifest_error"]
        assert needle in local_error, (cells, local_error)
        # same line, same message: only the file name differs
        assert local_error.split(":", 1)[1] == yt_error.split(":", 1)[1]
    assert local_items[0].meta["manifest_error"].startswith("local.csv:3:")


def test_local_csv_takes_max_segments_and_id(tmp_path, make_video):
    make_video("take.mp4", seconds=9.0, size=(64, 32))
    listing = tmp_path / "list.csv"
    listing.write_text("path,split,max_segments,id,performer\n"
                       "take.mp4,test,1,my take,Anna\n"
                       "take.mp4,train,,my take,Anna\n", encoding="utf-8")
    first, second = LocalSource(listing).items()
    assert "repeats an earlier row" in second.meta["manifest_error"]
    assert first.meta["max_segments"] == 1 and first.meta["performer"] == "Anna"
    assert first.split == "test" and first.source_id.startswith("my_take")
    out = tmp_path / "out"
    build_dataset(LocalSource(listing), out, BuildSettings(clip_seconds=2.0), progress=False)
    ds = open_dataset(out)
    assert [r.segment for r in ds.rows] == [0]  # max_segments=1 of four possible clips
    assert ds.rows[0].meta["performer"] == "Anna"


def test_every_source_registers_its_options_the_same_way(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["build", "--help"])
    text = capsys.readouterr().out
    for name in SOURCE_MODULES:
        module = source_module(name)
        assert f"{name} source:" in text and module.HELP.split()[0] in text
        assert callable(module.add_cli_arguments) and callable(module.source_from_args)
    args = parser.parse_args(["build", "--source", "synth", "--num-items", "2", "--out", "x"])
    assert source_module(args.source).source_from_args(args).num_items == 2
    assert cli_main(["build", "--source", "local", "--out", "x"]) == 2  # no --input


def test_clip_row_round_trips_unknown_keys_and_to_pandas(tmp_path):
    out = tmp_path / "ds"
    build_dataset(SynthSource(num_items=2, item_seconds=4.5, seed=1), out,
                  BuildSettings(clip_seconds=2.0, sample_rate=16000), progress=False)
    lines = (out / "clips.jsonl").read_text().splitlines()
    raw = [json.loads(line) for line in lines]
    for row in raw:  # what a QA stage or a later version may add
        assert ClipRow.from_dict(row).to_dict() == row
    raw[0]["future"] = {"score": 0.93, "label": "kept"}
    raw[0]["hashes"] = {"audio.flac": "ab" * 32}
    raw[0]["stats"]["loudness_lufs"] = -23.0
    typed = ClipRow.from_dict(raw[0])
    assert typed.extra["future"]["score"] == 0.93 and typed.stats.extra == {"loudness_lufs": -23.0}
    assert typed.to_dict() == raw[0]
    assert typed["split"] == raw[0]["split"] and typed.get("future") == raw[0]["future"]
    (out / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in raw))
    ds = open_dataset(out)
    assert all(isinstance(r, ClipRow) for r in ds.rows)
    df = ds.to_pandas()
    assert list(df["id"]) == [r["id"] for r in raw]
    assert list(df["stats.notes"]) == [r["stats"]["notes"] for r in raw]
    assert df.loc[0, "future.score"] == 0.93 and df["future.score"].isna().sum() == len(raw) - 1
    assert df["qa.piano_score"].notna().all()  # the build's QA stage wrote every row's qa
    assert set(df["split"]) == {r["split"] for r in raw}
    with pytest.raises(KeyError, match="split"):
        ClipRow.from_dict({"id": "a.00000000"})
    partial = {k: v for k, v in raw[1].items() if k != "start"}
    with pytest.raises(KeyError, match="start"):  # nothing is filled in
        ClipRow.from_dict(partial)
    (out / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [raw[0], partial]))
    from copdata.dataset.validate import validate_dataset
    from copdata.errors import DatasetError

    with pytest.raises(DatasetError, match="start"):
        open_dataset(out)
    assert any("start" in p for p in validate_dataset(out, progress=False))
