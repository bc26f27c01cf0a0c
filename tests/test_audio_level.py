"""Nothing clipped, nothing skipped: loud decoded audio, any container, report rows."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from copdata import open_dataset
from copdata.build import build_dataset
from copdata.build.cut import fit_full_scale
from copdata.dataset.validate import validate_dataset
from copdata.media.decode import read_audio
from copdata.media.encode import as_written, full_scale_gain, pcm16, write_audio
from copdata.sources.base import BuildSettings
from copdata.sources.local import LocalSource

SETTINGS = BuildSettings(clip_seconds=2.0, fps=25.0, sample_rate=22050, transcriber="basic-pitch")


def encode(path: Path, vcodec: str, acodec: str, amplitude: float, seconds: float = 2.6,
           fps: int = 25, sample_rate: int = 44100) -> Path:
    """A grey video with a decaying C4-E4-G4 arpeggio at ``amplitude`` (float
    samples, so a compressed track can decode above 1.0)."""
    with av.open(str(path), "w") as container:
        video = container.add_stream(vcodec, rate=fps)
        video.width, video.height, video.pix_fmt = 160, 64, "yuv420p"
        audio = container.add_stream(acodec, rate=sample_rate, layout="mono")
        audio.bit_rate = 128000
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((64, 160, 3), 20 + 5 * (i % 40), np.uint8),
                                               format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode(None):
            container.mux(packet)
        t = np.arange(int(seconds * sample_rate)) / sample_rate
        pitch = np.array([60, 64, 67])[(t // 0.5).astype(int) % 3]
        wave = amplitude * np.sin(2 * np.pi * 440 * 2 ** ((pitch - 69) / 12) * t) \
            * np.exp(-3 * (t % 0.5))
        wave = wave.astype(np.float32)
        size = audio.codec_context.frame_size or 1024
        for i in range(0, len(wave), size):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[None, i:i + size]),
                                               format="fltp", layout="mono")
            frame.sample_rate, frame.pts = sample_rate, i
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode(None):
            container.mux(packet)
    return path


def test_written_samples_law():
    # hand-worked: 1.0 -> 32767 -> 32767/32768 on reading; beyond full scale clips
    x = np.array([0.0, 0.5, 1.0, -1.0, 1.5], np.float32)
    assert pcm16(x).tolist() == [0, 16384, 32767, -32767, 32767]
    np.testing.assert_allclose(as_written(x)[:3], [0.0, 16384 / 32768, 32767 / 32768])
    assert full_scale_gain(1.25) == 0.8 and full_scale_gain(0.9) == 1.0 == full_scale_gain(1.0)
    loud = np.array([0.2, -1.6, 0.8], np.float32)
    fitted, gain = fit_full_scale(loud, full_scale_gain(1.25))  # the item's gain, then the clip's
    assert abs(gain - 1 / 1.6) < 1e-7  # float32 samples and np.max(np.abs(fitted)) <= 1.0 + 1e-7
    quiet, gain = fit_full_scale(np.array([0.1, -0.5], np.float32))
    assert gain == 1.0 and quiet.tolist() == [np.float32(0.1), -0.5]


def test_loud_source_builds_unclipped_and_validates_clean(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    loud = encode(src / "loud.mp4", "libx264", "aac", amplitude=1.3)
    wmv = encode(src / "take.wmv", "wmv2", "wmav2", amplitude=0.5)
    (src / "notes.txt").write_text("not a video\n")
    decoded, _ = read_audio(loud, SETTINGS.sample_rate)
    item_peak = float(np.max(np.abs(decoded)))
    assert item_peak > 1.05  # precondition: the decoded AAC peaks above full scale

    out = tmp_path / "out"
    build_dataset(LocalSource(src, test_fraction=0.0), out, SETTINGS, progress=False)
    report = {Path(r["source"]).name: r for r in json.loads((out / "report.json").read_text())}
    assert set(report) == {"loud.mp4", "take.wmv", "notes.txt"}  # nothing skipped
    assert report["take.wmv"]["status"] == "ok", report["take.wmv"]
    assert report["notes.txt"]["status"] == "failed"
    assert report["notes.txt"]["error_class"] == "MediaError"
    assert validate_dataset(out, progress=False) == []

    ds = open_dataset(out)
    loud_clips = [c for c in ds if c.row.source_id == "loud"]
    assert loud_clips
    for clip in loud_clips:
        written = clip.audio()
        stats = clip.row.stats.to_dict()
        # oracle: the item's own decode; one gain 1/peak for every clip of the item
        assert abs(stats["audio_gain_db"] - 20 * np.log10(1 / item_peak)) <= 0.02
        assert np.max(np.abs(written)) < 1.0
        full = np.sum(np.abs(written) >= 32767 / 32768)
        assert full <= 2, "no run of full-scale samples: nothing hard-clipped"
        assert stats["audio_peak_dbfs"] == round(20 * np.log10(np.max(np.abs(written))), 2)
    wmv_clip = next(c for c in ds if c.row.source_id == "take")
    assert wmv_clip.row.stats.to_dict()["audio_gain_db"] == 0.0
    info = json.loads((out / "dataset.json").read_text())
    assert "never hard-clipped" in info["audio_level"]


def test_validate_notices_a_wrong_peak(tmp_path):
    # planted: the written file's level no longer matches its row
    src = tmp_path / "in"
    src.mkdir()
    encode(src / "loud.mp4", "libx264", "aac", amplitude=1.3)
    out = tmp_path / "out"
    build_dataset(LocalSource(src, test_fraction=0.0), out, SETTINGS, progress=False)
    clip = next(iter(open_dataset(out)))
    write_audio(clip.dir / "audio.flac", clip.audio() * 0.5, SETTINGS.sample_rate)
    problems = validate_dataset(out, progress=False)
    assert any("audio_peak_dbfs" in p for p in problems), problems
