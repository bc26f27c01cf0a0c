"""End-to-end builds of the local source on videos the tests encode."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from copdata import open_dataset
from copdata.build import build_dataset
from copdata.cli import main as cli_main
from copdata.dataset.validate import validate_dataset
from copdata.errors import BuildLockedError
from copdata.ids import is_valid_clip_id
from copdata.sources.base import BuildSettings
from copdata.sources.local import LocalSource

SETTINGS = BuildSettings(clip_seconds=2.0, fps=25.0, sample_rate=22050)
VIEWS_SAME_BYTES = ("audio.flac", "notes.mid", "roll.npy", "steps.json")


def _inputs(folder: Path, make_video) -> Path:
    folder.mkdir()
    make_video(str(folder / "good one.mp4"), seconds=5.0)
    # audio shorter than video: clips stop where the audio stops
    make_video(str(folder / "short_audio.mp4"), seconds=6.5, audio_seconds=4.3)
    shutil.copy(folder / "good one.mp4", folder / "a;$(rm -rf x)..b.mp4")
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "corrupt.mp4").write_bytes(os.urandom(5000))
    data = (folder / "good one.mp4").read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    make_video(str(folder / "no_audio.mp4"), seconds=3.0, with_audio=False)
    make_video(str(folder / "too_short.mp4"), seconds=1.0)
    return folder


def _report(out: Path) -> dict:
    return {r["source"].split("/")[-1]: r for r in json.loads((out / "report.json").read_text())}


def test_bad_inputs_are_failed_rows_and_good_items_build(tmp_path, make_video):
    src = _inputs(tmp_path / "in", make_video)
    out = tmp_path / "out"
    summary = build_dataset(LocalSource(src, test_fraction=0.5), out, SETTINGS, progress=False)
    report = _report(out)
    assert len(report) == 8
    assert {k for k, r in report.items() if r["status"] == "ok"} == {
        "good one.mp4", "short_audio.mp4", "a;$(rm -rf x)..b.mp4"}
    assert report["empty.mp4"]["error_class"] == "MediaError" and "empty" in report["empty.mp4"]["message"]
    assert report["corrupt.mp4"]["error_class"] == "MediaError"
    assert report["truncated.mp4"]["error_class"] == "MediaError"
    assert report["no_audio.mp4"]["error_class"] == "MissingStreamError"
    assert report["too_short.mp4"]["error_class"] == "TooShortError"
    assert summary.failed == 5 and summary.ok == 3
    assert report["good one.mp4"]["clips"] == 2  # 5 s -> two 2 s clips
    assert report["short_audio.mp4"]["clips"] == 2  # min(6.5 s video, 4.3 s audio)
    ds = open_dataset(out)
    assert all(is_valid_clip_id(cid) for cid in ds.ids())
    assert all(p.name in ds.ids() for p in (out / "clips").iterdir())  # nothing escaped
    assert not list(tmp_path.glob("x*"))
    assert validate_dataset(out, progress=False) == []
    clip = next(iter(ds))
    assert clip.frames().shape[0] == 50 and clip.audio().shape == (44100,)
    assert clip.roll().shape == (50, 88) and len(clip.steps()) >= 3
    assert clip.notes(), "the transcriber finds the melody's notes"


def test_rebuild_is_deterministic_and_validate_catches_tampering(tmp_path, make_video):
    src = tmp_path / "in"
    src.mkdir()
    make_video(str(src / "take1.mp4"), seconds=4.2)
    make_video(str(src / "take2.mp4"), seconds=4.0, fps=24)
    a, b = tmp_path / "a", tmp_path / "b"
    build_dataset(LocalSource(src), a, SETTINGS, progress=False)
    build_dataset(LocalSource(src), b, SETTINGS, workers=2, progress=False)
    assert (a / "clips.jsonl").read_bytes() == (b / "clips.jsonl").read_bytes()
    ids = open_dataset(a).ids()
    assert len(ids) == 4
    for cid in ids:
        for name in VIEWS_SAME_BYTES:
            assert (a / "clips" / cid / name).read_bytes() == (b / "clips" / cid / name).read_bytes()
    # tamper: a roll cell, the steps, a missing file, an extra folder
    roll_path = a / "clips" / ids[0] / "roll.npy"
    roll = np.load(roll_path)
    roll[0, 0] = 99
    np.save(roll_path, roll)
    steps_path = a / "clips" / ids[1] / "steps.json"
    steps_path.write_text(steps_path.read_text().replace("notes per second", "notes per minute"))
    (a / "clips" / ids[2] / "audio.flac").unlink()
    (a / "clips" / ".tmp-half").mkdir()
    problems = validate_dataset(a, progress=False)
    assert any(ids[0] in p and "roll differs" in p for p in problems)
    assert any(ids[1] in p and "steps" in p for p in problems)
    assert any(ids[2] in p and "audio.flac" in p for p in problems)
    assert any(".tmp-half" in p for p in problems)
    assert cli_main(["validate", str(a), "--quiet"]) == 1
    assert cli_main(["validate", str(b), "--quiet"]) == 0


def test_second_build_on_a_held_folder_refuses(tmp_path, make_video):
    import fcntl

    out = tmp_path / "out"
    out.mkdir()
    with open(out / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        src = tmp_path / "in"
        src.mkdir()
        make_video(str(src / "x.mp4"), seconds=2.5)
        with pytest.raises(BuildLockedError, match="another build"):
            build_dataset(LocalSource(src), out, SETTINGS, progress=False)
        assert cli_main(["build", "--source", "local", "--input", str(src), "--out", str(out),
                         "--quiet"]) == 2


def test_cli_exit_codes_and_settings_mismatch(tmp_path, make_video, capsys):
    src = tmp_path / "in"
    src.mkdir()
    make_video(str(src / "ok.mp4"), seconds=2.5)
    args = ["build", "--source", "local", "--input", str(src), "--out", str(tmp_path / "o"),
            "--clip-seconds", "2", "--quiet"]
    assert cli_main(args) == 0
    assert cli_main(args[:-2] + ["1", "--quiet"]) == 2  # other clip length
    assert "--force" in capsys.readouterr().err
    (src / "bad.mp4").write_bytes(b"nope")
    assert cli_main(args) == 1  # some item failed
    assert "1 failed" in capsys.readouterr().out


@pytest.mark.slow
def test_resume_after_sigkill_matches_an_uninterrupted_build(tmp_path, make_video):
    src = tmp_path / "in"
    src.mkdir()
    for k in range(5):
        make_video(str(src / f"take{k}.mp4"), seconds=6.1, size=(160 + 2 * k, 64))  # not copies
    ref = tmp_path / "ref"
    build_dataset(LocalSource(src), ref, SETTINGS, progress=False)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "copdata", "build", "--source", "local", "--input", str(src),
           "--out", str(out), "--clip-seconds", "2", "--sample-rate", "22050", "--quiet"]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).parents[1]))
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / ".state").glob("*.json"))) < 2:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "report.json").exists(), "killed before the end"
    subprocess.run(cmd, env=env, check=True)
    assert (out / "clips.jsonl").read_bytes() == (ref / "clips.jsonl").read_bytes()
    ids = open_dataset(out).ids()
    assert ids == open_dataset(ref).ids() and len(ids) == len(set(ids)) == 15
    for cid in ids:
        for name in VIEWS_SAME_BYTES:
            assert (out / "clips" / cid / name).read_bytes() == (ref / "clips" / cid / name).read_bytes()
    assert validate_dataset(out, progress=False) == []


def test_csv_input_with_crop_split_span_and_bad_rows(tmp_path, make_video):
    src = tmp_path / "in"
    src.mkdir()
    make_video(str(src / "wide.mp4"), seconds=7.0, size=(320, 96))
    (src / "list.csv").write_text(
        "path,split,crop_x0,crop_y0,crop_x1,crop_y1,start,end\n"
        "wide.mp4,test,20,10,220,70,1.0,5.5\n"     # 200x60 box, 4.5 s span -> 2 clips
        "wide.mp4,test,,,,,,\n"                    # same file again, whole frame, same split
        "wide.mp4,test,0,0,999,50,,\n"             # box outside the frame
        "wide.mp4,test,5,5,1,1,,\n"                # empty box
        "missing.mp4,train,,,,,,\n")
    out = tmp_path / "out"
    summary = build_dataset(LocalSource(src / "list.csv"), out, SETTINGS, progress=False)
    report = json.loads((out / "report.json").read_text())
    assert [r["status"] for r in report] == ["ok", "ok", "failed", "failed", "failed"]
    assert report[2]["error_class"] == "MediaError" and "crop box" in report[2]["message"]
    assert report[3]["error_class"] == "ManifestError"
    assert report[4]["error_class"] == "MediaError" and "not found" in report[4]["message"]
    assert summary.ok == 2
    ds = open_dataset(out)
    cropped = [c for c in ds if c.row["source_id"] == report[0]["source_id"]]
    assert len(cropped) == 2 and cropped[0].row["start"] == 1.0 and cropped[1].row["end"] == 5.0
    assert cropped[0].frames().shape[1:] == (60, 200, 3)
    whole = [c for c in ds if c.row["source_id"] == report[1]["source_id"]]
    assert {c.split for c in ds} == {"test"} and len(whole) == 3 and whole[0].frames().shape[1:] == (96, 320, 3)
    assert len({c.row["source_id"] for c in ds}) == 2  # the same file twice: two ids
    assert validate_dataset(out, progress=False) == []
