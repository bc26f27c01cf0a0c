"""The Ray executor runs the same per-item function: identical output to local."""

import pytest

from copdata import open_dataset
from copdata.build import build_dataset
from copdata.sources.base import BuildSettings
from copdata.sources.local import LocalSource

import ray


@pytest.mark.slow
def test_ray_build_equals_local_build(tmp_path, make_video):
    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):
        make_video(str(src / f"take{k}.mp4"), seconds=4.5)
    (src / "broken.mp4").write_bytes(b"\x00" * 100)
    settings = BuildSettings(clip_seconds=2.0, sample_rate=22050)
    local, remote = tmp_path / "local", tmp_path / "ray"
    build_dataset(LocalSource(src), local, settings, progress=False)
    try:
        summary = build_dataset(LocalSource(src), remote, settings, workers=2, executor="ray",
                                progress=False)
    finally:
        ray.shutdown()
    assert summary.ok == 3 and summary.failed == 1
    assert (local / "clips.jsonl").read_bytes() == (remote / "clips.jsonl").read_bytes()
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_seconds"} for r in rows]
    assert strip(open_dataset(local).report) == strip(open_dataset(remote).report)
    for cid in open_dataset(local).ids():
        for name in ("audio.flac", "notes.mid", "roll.npy", "steps.json"):
            assert (local / "clips" / cid / name).read_bytes() == (remote / "clips" / cid / name).read_bytes()
