"""Publishing reads only regular files inside the dataset whose hashes match
clips.jsonl: the Hub export, the sample browser and the listening study refuse a
symlinked secret, an edited file and a row id that climbs out of the dataset
(issue 19, items 1, 2 and 6). Oracle: the secret's bytes never appear in anything
written, and a user's folder survives byte for byte."""

import json
import os
import shutil

import pytest
from mediafactory import build_synth_dataset

from copbench.errors import BenchError
from copbench.listen import StudyError, build_study
from copbench.run import run_benchmark
from copdata.errors import DatasetError
from copdata.export.hf import export_hf
from copdata.export.publish import UnpublishableError, publishable_views

SECRET = b"root:x:0:0:SECRET-" + os.urandom(8).hex().encode()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_synth_dataset(tmp_path_factory.mktemp("pub") / "D", 2, 2.0, 1.0)


@pytest.fixture
def dataset(built, tmp_path):
    root = tmp_path / "D"
    shutil.copytree(built, root, symlinks=True)
    secret = tmp_path / "private" / "passwd"
    secret.parent.mkdir()
    secret.write_bytes(SECRET)
    return root, secret


def _rows(root):
    return [json.loads(line) for line in (root / "clips.jsonl").read_text().splitlines()]


def _first_clip(root, split=None):
    row = next(r for r in _rows(root) if split is None or r["split"] == split)
    return root / "clips" / row["id"]


def _nothing_holds_secret(folder):
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.parent.name != "private":
            assert SECRET not in path.read_bytes(), path


def test_export_refuses_a_symlinked_secret(dataset, tmp_path):
    root, secret = dataset
    video = _first_clip(root) / "video.mp4"
    video.unlink()
    video.symlink_to(secret)
    with pytest.raises(UnpublishableError, match="symlink"):
        export_hf(root, tmp_path / "hf", progress=False)
    assert not (tmp_path / "hf").exists()
    _nothing_holds_secret(tmp_path)


def test_export_refuses_a_file_that_is_not_the_built_one(dataset, tmp_path):
    root, _ = dataset
    steps = _first_clip(root) / "steps.json"
    steps.write_text(json.dumps([{"step": "video", "text": "<img src=x onerror=alert(1)>"}]))
    with pytest.raises(UnpublishableError, match="sha256 differs"):
        export_hf(root, tmp_path / "hf", progress=False)


def test_export_refuses_a_row_id_that_leaves_the_dataset(dataset, tmp_path):
    root, _ = dataset
    # a complete clip, with matching hashes, planted outside the dataset
    outside = tmp_path / "X"
    shutil.copytree(_first_clip(root), outside)
    rows = _rows(root)
    rows[0]["id"] = os.path.relpath(outside, root / "clips")
    assert rows[0]["id"].startswith("..")
    (root / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DatasetError, match="not a clip id"):
        export_hf(root, tmp_path / "hf", progress=False)
    assert not (tmp_path / "hf").exists()


def test_the_gate_reads_verified_bytes_of_every_view(built):
    from copdata import open_dataset
    ds = open_dataset(built)
    views = publishable_views(built, ds.rows[0])
    assert {n: v == (built / "clips" / ds.rows[0].id / n).read_bytes()
            for n, v in views.items()} == dict.fromkeys(views, True)
    assert len(views) == 5


def test_sample_browser_refuses_a_symlinked_secret_and_keeps_a_users_folder(dataset, tmp_path):
    from copbench.leaderboard import render_leaderboard
    root, secret = dataset
    results = tmp_path / "results"
    run_benchmark("silence", root, metrics=["si_sdr"], out=results, progress=False)
    pub = tmp_path / "pub"
    pub.mkdir()
    # a folder of the user's where the media would go: never deleted
    mine = pub / "board_files"
    mine.mkdir()
    (mine / "thesis.tex").write_text("mine")
    with pytest.raises(BenchError, match="not written by a copbench sample browser"):
        render_leaderboard(results, "html", samples=2, out=pub / "board.html")
    assert (mine / "thesis.tex").read_text() == "mine"
    shutil.rmtree(mine)
    for clip in (root / "clips").iterdir():
        (clip / "video.mp4").unlink()
        (clip / "video.mp4").symlink_to(secret)
    with pytest.raises(UnpublishableError, match="symlink"):
        render_leaderboard(results, "html", samples=2, out=pub / "board.html")
    _nothing_holds_secret(pub)


def test_listening_study_refuses_a_symlinked_secret(dataset, tmp_path):
    root, secret = dataset
    for clip in (root / "clips").iterdir():
        (clip / "video.mp4").unlink()
        (clip / "video.mp4").symlink_to(secret)
    with pytest.raises(UnpublishableError, match="symlink"):
        build_study(root, "silence", tmp_path / "study", clips=1, progress=False)
    _nothing_holds_secret(tmp_path / "study") if (tmp_path / "study").exists() else None


def test_listening_study_refuses_a_model_named_like_the_anchor(dataset, tmp_path):
    root, _ = dataset
    import numpy as np
    import soundfile
    folder = tmp_path / "noise"  # the user's outputs, named like the noise anchor
    folder.mkdir()
    for row in _rows(root):
        soundfile.write(folder / f"{row['id']}.wav", np.zeros(22050, np.float32), 22050)
    with pytest.raises(StudyError, match="name of the study's anchor"):
        build_study(root, str(folder), tmp_path / "study", clips=1, progress=False)


def test_validate_lists_a_300_character_clip_id(dataset, capsys):
    from copdata.cli import main
    root, _ = dataset
    rows = _rows(root)
    rows[0]["id"] = "a" * 291 + ".00000000"
    (root / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["validate", str(root), "--quiet"]) == 1
    assert "unsafe clip id 'aaaa" in capsys.readouterr().out
