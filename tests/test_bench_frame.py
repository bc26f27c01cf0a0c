"""Results as DataFrames, leaderboards rendered from them, and the sample browser in Chromium."""

import json
import time

import pytest

import copbench
from browser import chrome
from copbench.cli import main
from copbench.leaderboard import render_leaderboard
from copbench.run import run_benchmark

MODELS = ("oracle", "silence", "noise")


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COPBENCH_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield _results(tmp_path_factory)


def _results(tmp_path_factory):
    from copdata.build import build_dataset
    from copdata.sources.base import BuildSettings
    from copdata.sources.synth import SynthSource
    root = tmp_path_factory.mktemp("frame")
    build_dataset(SynthSource(num_items=3, item_seconds=3.0, seed=0, test_fraction=0.5,
                              frame_size=(320, 64)), root / "data", BuildSettings(clip_seconds=1.0),
                  progress=False)
    for model in MODELS:
        run_benchmark(model, root / "data", metrics=["si_sdr", "fad_mel"], out=root / "results",
                      progress=False, command=["copbench", "run", "--model", model])
    # what a metric entry may carry besides mean/ci: flags and convention counts
    path = root / "results" / "silence.json"
    res = json.loads(path.read_text())
    res["metrics"]["si_sdr"]["conventions"] = {"silent_output": 3}
    res["metrics"]["fad_mel"]["flags"] = ["rank_deficient"]
    res["pairing"]["missing"] = ["gone.00000000"]  # as `run --allow-failures` records it
    res.update(n_missing=1, complete=False)
    path.write_text(json.dumps(res))
    return root / "results"


def test_load_results_frame(results_dir):
    frame = copbench.load_results(results_dir)
    n_entries = {m: len(json.loads((results_dir / f"{m}.json").read_text())["metrics"])
                 for m in MODELS}
    assert len(frame) == sum(n_entries.values()) and min(n_entries.values()) >= 2
    assert frame.groupby("model").size().to_dict() == n_entries
    assert {"model", "metric", "mean", "ci_low", "ci_high", "n", "flags", "conventions",
            "n_conventions", "group"} <= set(frame.columns)
    row = frame.set_index(["model", "metric"]).loc[("silence", "si_sdr")]
    assert row["mean"] == -100.0 and row["conventions"] == {"silent_output": 3}
    assert row["n_conventions"] == 3 and row["group"] == "quality" and row["n_missing"] == 1
    assert frame.set_index(["model", "metric"]).loc[("silence", "fad_mel"), "flags"] == ("rank_deficient",)
    oracle = json.loads((results_dir / "oracle.json").read_text())["metrics"]
    assert frame.set_index(["model", "metric"]).loc[("oracle", "fad_mel"), "flags"] == \
        tuple(sorted(oracle["fad_mel"].get("flags", [])))
    assert frame.set_index(["model", "metric"]).loc[("oracle", "si_sdr"), "flags"] == ()
    assert (frame["ci_low"] <= frame["mean"] + 1e-9).all()
    per_clip = copbench.load_per_clip(results_dir)
    assert set(per_clip.columns) == {"model", "clip", "metric", "group", "value"}
    assert len(per_clip[per_clip.metric == "si_sdr"]) == len(MODELS) * 3
    assert per_clip[(per_clip.model == "oracle") & (per_clip.metric == "si_sdr")]["value"].eq(100).all()


def test_leaderboards_show_flags_conventions_and_incomplete(results_dir):
    md = render_leaderboard(results_dir, "md")
    assert "| silence † | 3 (0 failed, 1 missing) |" in md and "c=3" in md and "⚑" in md
    assert "silence / fad_mel: flags rank_deficient" in md and "never marked best" in md
    assert "silence / si_sdr: conventions silent_output 3/3" in md
    frame = copbench.load_results(results_dir)
    assert not frame.set_index("model").loc["silence", "complete"].any()
    csv_text = render_leaderboard(results_dir, "csv")
    header = csv_text.splitlines()[0].split(",")
    assert header[:2] == ["model", "n"] and "flags" in header and "conventions" in header
    silence = next(line for line in csv_text.splitlines() if line.startswith("silence,"))
    assert "fad_mel:rank_deficient" in silence and "si_sdr:3" in silence
    import csv
    import io
    cells = next(r for r in csv.DictReader(io.StringIO(csv_text)) if r["model"] == "silence")
    assert cells["n_missing"] == "1" and cells["n_failed"] == "0" and cells["best"] == ""
    page = render_leaderboard(results_dir, "html")
    assert "<h2>Audio quality</h2>" in page
    assert page.count("<svg") == copbench.load_results(results_dir)["metric"].nunique()


def test_sample_browser_in_chromium(results_dir, tmp_path):
    out = tmp_path / "board.html"
    assert main(["leaderboard", str(results_dir), "--format", "html", "--samples", "1",
                 "--out", str(out)]) == 0
    files = sorted(p.name for p in (tmp_path / "board_files").iterdir() if p.name[0] != ".")
    assert files[0] == "clip01.mp4" and sum(f.endswith(".png") for f in files) == 3
    driver = chrome()
    try:
        driver.get(out.as_uri())
        cards = driver.find_elements("css selector", "section.clip .card")
        assert [c.find_element("tag name", "b").text for c in cards] == ["reference", "noise",
                                                                         "silence"]
        loaded = driver.execute_script(
            "return Array.from(document.querySelectorAll('section.clip img'))"
            ".map(i => i.complete && i.naturalWidth > 0)")
        assert loaded == [True, True, True]
        driver.execute_script("document.querySelectorAll('section.clip audio')[1].play()")
        end = time.time() + 10
        while time.time() < end:
            state = driver.execute_script(
                "var v = document.querySelector('section.clip video'),"
                " a = document.querySelectorAll('section.clip audio')[1];"
                "return [a.currentTime, v.currentTime, a.error, v.error];")
            if state[0] > 0.3 and state[1] > 0.3:
                break
            time.sleep(0.05)
        assert state[0] > 0.3 and state[1] > 0.3 and state[2] is None and state[3] is None
        tables = driver.find_elements("css selector", "table")
        assert len(tables) == 1 and tables[0].size["width"] < 1100  # fits a laptop screen
    finally:
        driver.quit()
