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


def _finish_order_build(tmp_path, make_video, monkeypatch, *, fail_main_at=None, fail_finish_at=None,
                        slow_finish=0.0):
    """Build one 7 s item (three 2 s clips) with the clip writer's two threads
    observed: ``fail_main_at`` makes the k-th clip's video encoder fail on the
    calling thread, ``fail_finish_at`` the k-th clip's views fail on the
    finishing thread, ``slow_finish`` delays every clip's QA stage."""
    import threading

    import copdata.build.cut as cut

    src = tmp_path / "in"
    src.mkdir()
    make_video(str(src / "take.mp4"), seconds=7.0)
    events, opened = [], []
    real_encoder, real_qa, real_views = cut.ClipWriter.video_encoder, cut.clip_qa, cut.derive_views

    def encoder(self, *a, **kw):
        opened.append(self.final.name)
        events.append(("encode", self.final.name, threading.current_thread().name))
        if len(opened) == fail_main_at:
            raise RuntimeError("encoder broke")
        return real_encoder(self, *a, **kw)

    def qa(*a, **kw):
        time.sleep(slow_finish)
        return real_qa(*a, **kw)

    def views(*a, **kw):
        events.append(("views", None, threading.current_thread().name))
        if sum(e[0] == "views" for e in events) == fail_finish_at:
            raise RuntimeError("views broke")
        return real_views(*a, **kw)

    monkeypatch.setattr(cut.ClipWriter, "video_encoder", encoder)
    monkeypatch.setattr(cut, "clip_qa", qa)
    monkeypatch.setattr(cut, "derive_views", views)
    out = tmp_path / "out"
    build_dataset(LocalSource(src, test_fraction=0.0), out, SETTINGS, progress=False)
    return out, _report(out)["take.mp4"], events


def test_clips_finish_on_a_background_thread_in_order(tmp_path, make_video, monkeypatch):
    out, row, events = _finish_order_build(tmp_path, make_video, monkeypatch, slow_finish=0.3)
    assert row["status"] == "ok" and row["clips"] == 3
    rows = [json.loads(line) for line in (out / "clips.jsonl").read_text().splitlines()]
    assert [r["segment"] for r in rows] == [0, 1, 2]
    threads = {kind: {t for k, _, t in events if k == kind} for kind in ("encode", "views")}
    assert threads["encode"] == {"MainThread"}
    assert len(threads["views"]) == 1 and threads["views"] != {"MainThread"}
    # the next clip is encoded while the one before is finished (its QA sleeps 0.3 s):
    # clip 1's encoder opens before clip 0's views are made
    kinds = [k for k, _, _ in events]
    assert kinds.index("encode", 1) < kinds.index("views")
    assert sorted(p.name for p in (out / "clips").iterdir()) == [r["id"] for r in rows]
    assert validate_dataset(out, progress=False) == []


def test_an_error_while_finishing_a_clip_fails_the_item_and_leaves_no_clips(
        tmp_path, make_video, monkeypatch):
    out, row, _ = _finish_order_build(tmp_path, make_video, monkeypatch, fail_finish_at=2)
    assert row["status"] == "failed" and row["error_class"] == "InternalError.RuntimeError"
    assert "views broke" in row["message"]
    assert not list((out / "clips").iterdir())  # clip 0 was written, then removed


def test_a_failure_while_a_clip_is_finishing_waits_for_it_before_cleaning_up(
        tmp_path, make_video, monkeypatch):
    # clip 1's encoder fails on the calling thread while clip 0 is still in its QA stage:
    # clip 0 lands after the failure, and the cleanup must still remove it
    out, row, _ = _finish_order_build(tmp_path, make_video, monkeypatch, fail_main_at=2,
                                      slow_finish=0.5)
    assert row["status"] == "failed" and "encoder broke" in row["message"]
    assert not list((out / "clips").iterdir())


def test_an_item_runs_with_numpy_blas_on_one_thread(tmp_path, make_video, monkeypatch):
    from threadpoolctl import threadpool_info

    import copdata.build.item as item_module

    seen = []
    real = item_module._process_item

    def spy(*a, **kw):
        seen.extend(p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas")
        return real(*a, **kw)

    monkeypatch.setattr(item_module, "_process_item", spy)
    src = tmp_path / "in"
    src.mkdir()
    make_video(str(src / "take.mp4"), seconds=2.5)
    build_dataset(LocalSource(src), tmp_path / "out", SETTINGS, progress=False)
    assert seen and set(seen) == {1}
