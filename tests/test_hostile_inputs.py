"""copdata against hostile or careless input: each test reproduces an attack or a
mistake on real media (issue 9) and checks the clear outcome."""

from __future__ import annotations

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
from copdata.sources.base import BuildSettings
from copdata.sources.local import LocalSource

SETTINGS = BuildSettings(clip_seconds=1.0, fps=25.0, sample_rate=22050)
ROOT = Path(__file__).parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def _report(out: Path) -> list[dict]:
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    from mediafactory import make_video

    src = tmp_path_factory.mktemp("videos")
    make_video(src / "take_a.mp4", seconds=2.1, fps=25, size=(64, 32), sample_rate=22050)
    make_video(src / "take_b.mp4", seconds=1.1, fps=25, size=(64, 32), sample_rate=22050)
    return src


def test_split_path_traversal_fails_the_row_and_nothing_leaves_out(videos, tmp_path):
    work = tmp_path / "a" / "b" / "c"
    work.mkdir(parents=True)
    for f in videos.iterdir():
        shutil.copy(f, work / f.name)
    (work / "list.csv").write_text("path,split\ntake_a.mp4,../../../EVIL\ntake_b.mp4,train\n",
                                   encoding="utf-8")
    out = work / "ds"
    summary = build_dataset(LocalSource(work / "list.csv"), out, SETTINGS, progress=False)
    report = _report(out)
    assert summary.ok == 1 and report[0]["status"] == "failed"
    assert report[0]["error_class"] == "ManifestError" and "split" in report[0]["message"]
    assert validate_dataset(out, progress=False) == []
    assert cli_main(["export", str(out), "--out", str(work / "hf"), "--quiet"]) == 0
    assert [p.name for p in (work / "hf" / "data").iterdir()] == ["train-00000-of-00001.parquet"]
    assert not [p for p in tmp_path.rglob("*") if "EVIL" in p.name]


def test_same_file_in_train_and_test_is_rejected(videos, tmp_path):
    csv = tmp_path / "list.csv"
    csv.write_text(f"path,split\n{videos}/take_b.mp4,train\n{videos}/../{videos.name}/take_b.mp4,test\n"
                   f"{videos}/take_a.mp4,\n{videos}/take_a.mp4,\n", encoding="utf-8")
    items = LocalSource(csv, test_fraction=0.5).items()
    assert "manifest_error" not in items[0].meta
    assert "leak" in items[1].meta["manifest_error"] and "'train'" in items[1].meta["manifest_error"]
    # unsplit rows of one file share a split, so they never leak by chance
    assert items[2].split == items[3].split and "manifest_error" not in items[3].meta


def test_utf8_bom_csv_is_read(videos, tmp_path):
    csv = tmp_path / "bom.csv"
    csv.write_bytes("\ufeffpath,split\r\ntake_b.mp4,train\r\n".encode("utf-8"))
    shutil.copy(videos / "take_b.mp4", tmp_path / "take_b.mp4")
    items = LocalSource(csv).items()
    assert [i.split for i in items] == ["train"] and "manifest_error" not in items[0].meta


def test_header_only_and_non_utf8_csv_exit_2_with_one_line(tmp_path, capsys):
    (tmp_path / "empty.csv").write_text("path,split\n", encoding="utf-8")
    (tmp_path / "latin1.csv").write_bytes("path,split\nprélude.mp4,train\n".encode("latin-1"))
    for name, words in (("empty.csv", "no rows"), ("latin1.csv", "not UTF-8")):
        code = cli_main(["build", "--source", "local", "--input", str(tmp_path / name),
                         "--out", str(tmp_path / f"out_{name}"), "--quiet"])
        err = capsys.readouterr().err
        assert code == 2 and words in err and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1


def test_symlink_loop_becomes_a_report_row(videos, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(videos / "take_b.mp4", src / "take_b.mp4")
    os.symlink(src / "loop_b.mp4", src / "loop_a.mp4")
    os.symlink(src / "loop_a.mp4", src / "loop_b.mp4")
    out = tmp_path / "out"
    summary = build_dataset(LocalSource(src), out, SETTINGS, progress=False)
    rows = {Path(r["source"]).name: r for r in _report(out)}
    assert set(rows) == {"take_b.mp4", "loop_a.mp4", "loop_b.mp4"}
    assert summary.ok == 1 and summary.failed == 2
    assert "symlink loop" in rows["loop_a.mp4"]["message"]


def test_force_never_deletes_a_folder_it_did_not_build(videos, tmp_path, capsys):
    mine = tmp_path / "mine"
    (mine / "clips").mkdir(parents=True)
    (mine / "clips" / "final_cut.txt").write_text("months of work", encoding="utf-8")
    (mine / "report.json").write_text("{}", encoding="utf-8")
    args = ["build", "--source", "local", "--input", str(videos), "--clip-seconds", "1",
            "--sample-rate", "22050", "--quiet", "--force", "--out"]
    assert cli_main(args + [str(mine)]) == 2
    assert "--force refuses" in capsys.readouterr().err
    assert (mine / "clips" / "final_cut.txt").read_text(encoding="utf-8") == "months of work"
    assert sorted(p.name for p in mine.iterdir()) == ["clips", "report.json"]  # no .lock left
    (mine / "dataset.json").write_text('{"name": "my project"}', encoding="utf-8")
    assert cli_main(args + [str(mine)]) == 2
    assert (mine / "clips" / "final_cut.txt").is_file()
    ours = tmp_path / "ours"
    assert cli_main(args[:-2] + ["--out", str(ours)]) == 0
    assert cli_main(args + [str(ours)]) == 0  # an earlier CoP build is ours to delete


def test_out_that_is_a_file_or_read_only_is_one_line(videos, tmp_path, capsys):
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    base = ["build", "--source", "local", "--input", str(videos), "--quiet", "--out"]
    assert cli_main(base + [str(tmp_path / "afile")]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "Traceback" not in err
    if os.geteuid() != 0:  # root ignores permissions
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            assert cli_main(base + [str(ro / "ds")]) == 2
            err = capsys.readouterr().err
            assert "cannot write" in err and "Traceback" not in err
        finally:
            ro.chmod(0o700)


def test_validate_exits_1_even_when_stdout_is_closed(videos, tmp_path):
    out = tmp_path / "ds"
    build_dataset(LocalSource(videos), out, SETTINGS, progress=False)
    for clip in open_dataset(out):
        (clip.dir / "roll.npy").unlink()
    cmd = [sys.executable, "-m", "copdata", "validate", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()  # like `| head` that has already exited
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err.decode()
    assert b"Traceback" not in err and b"Exception ignored" not in err


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_workers_exit_when_the_build_is_killed(tmp_path):
    out = tmp_path / "ds"
    cmd = [sys.executable, "-m", "copdata", "build", "--source", "synth", "--num-items", "6",
           "--item-seconds", "30", "--clip-seconds", "2", "--sample-rate", "22050",
           "--workers", "2", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 90
    workers: list[int] = []
    while time.time() < deadline:
        # the pool workers are the children that run a copdata item (not the resource tracker)
        workers = [p for p in _children(proc.pid)
                   if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]
        if len(workers) >= 2 and list((out / "clips").glob(".tmp-*")):
            break
        time.sleep(0.05)
    assert len(workers) >= 2, "the build never started two workers"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    alive = [p for p in workers if _alive(p)]
    for p in alive:  # clean up what the old code leaves behind
        os.kill(p, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived their build"


def test_validate_finds_swapped_audio_and_false_rows(videos, tmp_path):
    from copdata.dataset.store import read_jsonl, write_json_atomic

    out = tmp_path / "ds"
    build_dataset(LocalSource(videos), out, SETTINGS, progress=False)
    ds = open_dataset(out)
    assert len(ds) >= 3 and validate_dataset(out, progress=False) == []
    assert all(set(r["hashes"]) == {"video.mp4", "audio.flac", "notes.mid", "roll.npy",
                                     "steps.json"} for r in ds.rows)
    a, b, c = ds.ids()[:3]
    # audio swapped between two clips: every file still meets the contract
    fa, fb = out / "clips" / a / "audio.flac", out / "clips" / b / "audio.flac"
    data_a, data_b = fa.read_bytes(), fb.read_bytes()
    assert data_a != data_b
    fa.write_bytes(data_b)
    fb.write_bytes(data_a)
    rows = read_jsonl(out / "clips.jsonl")
    rows[2]["stats"]["notes"] += 5  # a false statistic
    assert rows[1]["source_id"] == rows[0]["source_id"]
    rows[1]["start"] += 0.5  # a false span (its source's first clip says otherwise)
    rows[1]["end"] += 0.5
    write_json_atomic(out / "clips.jsonl", rows, lines=True)
    problems = validate_dataset(out, progress=False)
    assert any(p.startswith(f"{a}: audio.flac is not the file") for p in problems), problems
    assert any(p.startswith(f"{b}: audio.flac is not the file") for p in problems)
    assert any(p.startswith(f"{c}: stats.notes") for p in problems)
    assert any(p.startswith(f"{b}: start is not") for p in problems)
    assert cli_main(["validate", str(out), "--quiet"]) == 1
    for row in rows:  # a dataset built before hashes were recorded: one line says so
        del row["hashes"]
    write_json_atomic(out / "clips.jsonl", rows, lines=True)
    problems = validate_dataset(out, progress=False)
    assert sum("no content hashes" in p for p in problems) == 1
    (out / "clips.jsonl").write_bytes("\xff\xfe".encode("latin-1"))  # not UTF-8: a finding
    assert len(validate_dataset(out, progress=False)) == 1
    assert cli_main(["validate", str(out), "--quiet"]) == 1


def test_transcription_writes_nothing_under_home(videos, tmp_path):
    """onnxruntime's telemetry would write ~/.cache/Microsoft/DeveloperTools/...;
    a transcription through the CLI leaves HOME as it found it."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in ENV.items() if k not in ("ORT_DISABLE_TELEMETRY", "XDG_CACHE_HOME")}
    env["HOME"] = str(home)
    proc = subprocess.run([sys.executable, "-m", "copdata", "transcribe",
                           str(videos / "take_a.mp4"), "--out", str(tmp_path / "a.mid")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a.mid").is_file()
    assert [str(p.relative_to(home)) for p in home.rglob("*")] == []


@pytest.mark.parametrize("module,commands", [
    ("copdata.cli", ["build", "validate", "stats", "show", "transcribe", "export"]),
    ("copbench.cli", ["run", "leaderboard", "compare"]),
    ("copmodel.cli", ["train", "sample", "prefs"]),
])
def test_every_command_documents_its_exit_status(module, commands, capsys):
    import importlib

    main = importlib.import_module(module).main
    for command in [None, *commands]:
        with pytest.raises(SystemExit) as done:
            main(([command] if command else []) + ["--help"])
        assert done.value.code == 0
        text = " ".join(capsys.readouterr().out.split())
        assert "exit status: 0" in text and "2 usage or input error" in text, (module, command)


def test_errors_are_one_line_and_a_traceback_needs_debug(tmp_path, capsys):
    from copbench.cli import main as bench_main
    from copmodel.cli import main as model_main

    (tmp_path / "afile").write_text("x", encoding="utf-8")
    cases = [
        (cli_main, ["stats", str(tmp_path)]),
        (bench_main, ["leaderboard", str(tmp_path / "afile")]),
        (model_main, ["sample", "--ckpt", str(tmp_path / "none.ckpt"), "--data", str(tmp_path),
                      "--out", str(tmp_path / "o")]),
    ]
    for main, argv in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
        assert main(["--debug", *argv]) == 2
        assert "Traceback" in capsys.readouterr().err


def test_writers_refuse_names_that_leave_their_root(tmp_path, monkeypatch):
    from copbench import cache
    from copdata.dataset.store import ClipWriter
    from copdata.errors import UnsafePathError
    from copdata.ids import path_under

    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)  # a symlink that leaves the root
    for parts in (("..", "x"), ("../../../EVIL",), ("link", "x"), ("/etc/passwd",)):
        with pytest.raises(UnsafePathError):
            path_under(root, *parts)
    assert path_under(root, "data", "train-00000.parquet") == root.resolve() / "data" / "train-00000.parquet"
    for bad in ("../x.00000000", "a/b.00000000", "x..00000000", "."):
        with pytest.raises(UnsafePathError):
            ClipWriter(root, bad)
    monkeypatch.setenv("COPBENCH_CACHE", str(root))
    with pytest.raises(UnsafePathError):
        cache.save("../escape", "k", {"a": np.zeros(2)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root"]
