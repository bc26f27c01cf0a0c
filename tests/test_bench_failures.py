"""copbench against broken or careless model outputs (issue 9): a broken or
missing output is a failure of the model, never a favourable score."""

import json

import numpy as np
import pytest
from mediafactory import build_synth_dataset
import soundfile

from copbench.cli import main
from copbench.errors import IncompleteOutputsError, ModelError, ResultsConflictError
from copbench.leaderboard import render_leaderboard
from copbench.run import run_benchmark


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_synth_dataset(tmp_path_factory.mktemp("ds") / "tiny", 4, 2.0, 1.0,
                               frame_size=(224, 32))


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COPBENCH_CACHE", str(tmp_path / "cache"))


def _test_clips(dataset):
    from copdata import open_dataset
    ds = open_dataset(dataset)
    return [ds[i] for i in sorted(ds.ids("test"))]


def _outputs(folder, clips, broken: dict[int, str]):
    """Copies of the reference audio (perfect outputs), except ``broken``:
    clip index -> ``nan`` | ``empty`` | ``text`` | ``missing``."""
    folder.mkdir(parents=True)
    for k, clip in enumerate(clips):
        path = folder / f"{clip.id}.wav"
        kind = broken.get(k)
        if kind == "nan":
            audio = clip.audio().copy()
            audio[100] = np.nan
            soundfile.write(path, audio, clip.sample_rate, subtype="FLOAT")
        elif kind == "empty":
            path.write_bytes(b"")
        elif kind == "text":
            path.write_text("this is not audio", encoding="utf-8")
        elif kind != "missing":
            soundfile.write(path, clip.audio(), clip.sample_rate, subtype="FLOAT")
    return folder


def test_broken_outputs_fail_the_run_unless_allowed(dataset, tmp_path, capsys):
    clips = _test_clips(dataset)
    assert len(clips) >= 4
    gen = _outputs(tmp_path / "gen", clips, {0: "nan", 1: "empty", 2: "text"})
    res_dir = tmp_path / "res"
    args = ["run", "--model", str(gen), "--data", str(dataset), "--metrics", "si_sdr",
            "--out", str(res_dir), "--no-progress"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "3 of" in err and "broken outputs" in err and "--allow-failures" in err
    assert not res_dir.exists() or not list(res_dir.glob("*.json"))  # nothing to rank
    assert main(args + ["--allow-failures"]) == 0
    out = capsys.readouterr().out
    assert f"{len(clips) - 3} of {len(clips)} clips scored; 3 failed" in out and "INCOMPLETE" in out
    res = json.loads((res_dir / "gen.json").read_text())
    assert res["complete"] is False and res["n_failed"] == 3 and res["n_missing"] == 0
    assert res["metrics"]["si_sdr"]["n"] == len(clips) - 3
    assert set(res["errors"]) == {c.id for c in clips[:3]}


def test_an_incomplete_model_is_never_marked_best(dataset, tmp_path):
    clips = _test_clips(dataset)
    res_dir = tmp_path / "res"
    # perfect on every clip but one, whose output is NaN / missing
    for name, kind in (("partial", "nan"), ("gappy", "missing")):
        folder = _outputs(tmp_path / name, clips, {len(clips) - 1: kind})
        with pytest.raises(IncompleteOutputsError):
            run_benchmark(str(folder), dataset, metrics=["si_sdr"], progress=False)
        run_benchmark(str(folder), dataset, metrics=["si_sdr"], out=res_dir, progress=False,
                      allow_failures=True)
    run_benchmark("resynth", dataset, metrics=["si_sdr"], out=res_dir, progress=False)
    md = render_leaderboard(res_dir, "md")
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| ")}
    n = len(clips)
    assert f"{n - 1} (1 failed, 0 missing)" in rows["partial †"]
    assert f"{n - 1} (0 failed, 1 missing)" in rows["gappy †"]
    assert "**" in rows["resynth"] and "**" not in rows["partial †"] + rows["gappy †"]
    assert "never marked best" in md
    csv_text = render_leaderboard(res_dir, "csv")
    header = csv_text.splitlines()[0].split(",")
    partial = next(line for line in csv_text.splitlines() if line.startswith("partial,"))
    cells = dict(zip(header, partial.split(",")))
    assert cells["n_failed"] == "1" and cells["n_missing"] == "0" and cells["best"] == ""
    assert "†" in render_leaderboard(res_dir, "html")


def test_empty_metric_list_is_a_usage_error(dataset, tmp_path, capsys):
    code = main(["run", "--model", "silence", "--data", str(dataset), "--metrics", ",",
                 "--out", str(tmp_path / "res"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "no metric" in err and "Traceback" not in err
    assert not (tmp_path / "res").exists()


def test_a_folder_named_like_a_baseline_is_never_silently_shadowed(dataset, tmp_path,
                                                                    monkeypatch, capsys):
    clips = _test_clips(dataset)
    monkeypatch.chdir(tmp_path)
    _outputs(tmp_path / "oracle", clips, {})
    with pytest.raises(ModelError, match="baseline:oracle"):
        run_benchmark("oracle", dataset, metrics=["si_sdr"], progress=False)
    base = run_benchmark("baseline:oracle", dataset, metrics=["si_sdr"], progress=False)
    folder = run_benchmark("./oracle", dataset, metrics=["si_sdr"], progress=False)
    assert base["provenance"]["model"]["kind"] == "baseline"
    assert folder["provenance"]["model"]["kind"] == "folder"
    assert main(["run", "--model", "oracle", "--data", str(dataset), "--metrics", "si_sdr",
                 "--no-progress"]) == 2
    assert "both a baseline and a path" in capsys.readouterr().err


def test_results_of_two_folders_with_one_name_never_overwrite_each_other(dataset, tmp_path):
    clips = _test_clips(dataset)
    a = _outputs(tmp_path / "a" / "samples", clips, {})
    b = _outputs(tmp_path / "b" / "samples", clips, {})
    res_dir = tmp_path / "res"
    run_benchmark(str(a), dataset, metrics=["si_sdr"], out=res_dir, progress=False)
    before = (res_dir / "samples.json").read_bytes()
    with pytest.raises(ResultsConflictError, match="--name"):
        run_benchmark(str(b), dataset, metrics=["si_sdr"], out=res_dir, progress=False)
    assert (res_dir / "samples.json").read_bytes() == before
    run_benchmark(str(b), dataset, metrics=["si_sdr"], out=res_dir, progress=False,
                  name="samples-b")
    run_benchmark(str(a), dataset, metrics=["si_sdr"], out=res_dir, progress=False)  # same model
    saved = {p.name: json.loads(p.read_text())["provenance"]["model"]["path"]
             for p in res_dir.glob("*.json")}
    assert saved == {"samples.json": str(a.resolve()), "samples-b.json": str(b.resolve())}


def test_bad_results_folder_and_out_file_are_one_line(dataset, tmp_path, capsys):
    res_dir = tmp_path / "res"
    res_dir.mkdir()
    (res_dir / "broken.json").write_text('{"model": ', encoding="utf-8")
    assert main(["leaderboard", str(res_dir)]) == 2
    err = capsys.readouterr().err
    assert "broken.json" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "afile").write_text("x", encoding="utf-8")
    assert main(["run", "--model", "silence", "--data", str(dataset), "--metrics", "si_sdr",
                 "--out", str(tmp_path / "afile"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "is a file" in err and "Traceback" not in err
