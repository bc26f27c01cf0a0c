"""Synth builds end to end: contract, determinism, CLI stats/show."""

import json

import numpy as np
import pytest

from copdata import open_dataset
from copdata.build import build_dataset
from copdata.cli import main as cli_main
from copdata.dataset.validate import validate_dataset
from copdata.sources.base import BuildSettings
from copdata.sources.synth import SynthSource

SETTINGS = BuildSettings(clip_seconds=4.0, fps=25.0, sample_rate=22050, seed=3)
FILES = ("video.mp4", "audio.flac", "notes.mid", "roll.npy", "steps.json")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    a = root / "a"
    build_dataset(SynthSource(num_items=3, item_seconds=9.0, seed=3), a, SETTINGS, progress=False)
    return root, a


def test_synth_build_meets_the_contract(built):
    _, a = built
    assert validate_dataset(a, progress=False) == []
    ds = open_dataset(a)
    assert len(ds) == 6 and ds.settings["midi_origin"] == "ground_truth"
    assert {c.split for c in ds} == {"train", "test"}
    # a performance never straddles splits
    by_source = {}
    for row in ds.rows:
        by_source.setdefault(row["source_id"], set()).add(row["split"])
    assert all(len(s) == 1 for s in by_source.values())
    clip = ds[ds.ids()[0]]
    frames, roll = clip.frames(), clip.roll()
    assert frames.shape[0] == roll.shape[0] == 100
    # pressed keys are visible: frames with more active keys differ more from an idle frame
    busy = roll.astype(bool).sum(1)
    assert busy.max() > 0
    steps = clip.steps()
    notes = clip.notes()
    assert f"{len(notes)} note" in steps[2]["text"]


def test_same_seed_gives_identical_files_other_seed_differs(built, tmp_path):
    _, a = built
    b = tmp_path / "b"
    build_dataset(SynthSource(num_items=3, item_seconds=9.0, seed=3), b, SETTINGS, progress=False)
    ids = open_dataset(a).ids()
    assert open_dataset(b).ids() == ids
    for cid in ids:
        for name in FILES[1:]:
            assert (a / "clips" / cid / name).read_bytes() == (b / "clips" / cid / name).read_bytes()
        fa, fb = open_dataset(a)[cid].frames(), open_dataset(b)[cid].frames()
        assert np.array_equal(fa, fb)
    c = tmp_path / "c"
    build_dataset(SynthSource(num_items=3, item_seconds=9.0, seed=4), c,
                  BuildSettings(clip_seconds=4.0, sample_rate=22050, seed=4), progress=False)
    other = open_dataset(c)
    assert other[other.ids()[0]].notes() != open_dataset(a)[ids[0]].notes()


def test_stats_and_show(built, tmp_path, capsys):
    _, a = built
    plot = tmp_path / "stats.png"
    assert cli_main(["stats", str(a), "--json", "--plot", str(plot)]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert stats["clips"] == 6 and stats["hours"] == pytest.approx(24 / 3600, abs=1e-4)
    assert sum(stats["clips_per_split"].values()) == 6 and stats["items_failed"] == 0
    cid = open_dataset(a).ids()[1]
    out = tmp_path / "clip.png"
    assert cli_main(["show", str(a), cid, "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20000
    assert cli_main(["show", str(a), "no_such.00000000", "--out", str(out)]) == 2
