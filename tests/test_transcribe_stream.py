"""Streaming: audio blocks equal a whole decode, seams give a whole-file pass's
notes, and a build's peak memory does not grow with the source's length."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from copdata.media.blocks import AudioCursor, array_blocks, iter_audio_blocks
from copdata.notes import snap_notes
from copdata.render.performance import generate_performance
from copdata.render.piano import render_audio
from copdata.transcription import get_transcriber
from copdata.transcription.stream import transcribe_blocks
from mediafactory import make_long_video, pyav_decode

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def transcriber():
    return get_transcriber()


@pytest.fixture(scope="module")
def piano():
    """40 s of rendered piano (sections of scales, arpeggios, chords)."""
    notes, _ = generate_performance(11, 40.0)
    sr = 44100
    return render_audio(snap_notes(notes, max_seconds=40.0), sr, 40.0, None), sr


@pytest.mark.parametrize("chunk,context,block", [(6.0, 3.0, 10007), (9.5, 4.0, 65536)])
def test_seams_give_the_whole_file_notes(transcriber, piano, chunk, context, block):
    audio, sr = piano
    whole = transcriber.transcribe(audio, sr)
    streamed, summary = transcribe_blocks(transcriber, array_blocks(audio, block), sr,
                                          chunk_seconds=chunk, context_seconds=context)
    assert len(whole) > 100
    assert 40.0 / chunk > 4  # several seams inside the signal
    assert streamed == whole  # same pitches, times and velocities
    assert summary.samples == len(audio)
    assert summary.peak == pytest.approx(float(np.abs(audio).max()), rel=1e-6)


def test_stream_at_the_model_rate_and_a_silent_stream(transcriber, piano):
    audio, sr = piano
    from copdata.errors import SilentInputError
    from copdata.transcription.basic_pitch_grid import to_model_rate

    audio_22k = to_model_rate(audio[: 20 * sr], sr)
    whole = transcriber.transcribe(audio_22k, 22050)
    streamed, _ = transcribe_blocks(transcriber, array_blocks(audio_22k, 30000), 22050,
                                    chunk_seconds=5.0, context_seconds=3.0)
    assert streamed == whole and len(whole) > 30
    with pytest.raises(SilentInputError, match="dBFS"):
        transcribe_blocks(transcriber, array_blocks(np.zeros(sr * 3, np.float32)), sr)


def test_audio_blocks_equal_a_whole_decode(make_video):
    # oracle: the whole stream decoded and resampled in the test (mediafactory.pyav_decode)
    video = make_video("v.mp4", seconds=6.0, size=(64, 32))
    full = pyav_decode(video, 16000)
    for start, end in [(0.0, None), (0.37, 4.2), (1.2, 1.9)]:
        whole = full[round(start * 16000):None if end is None else round(end * 16000)]
        blocks = list(iter_audio_blocks(video, 16000, start, end, block_samples=3000))
        assert len(blocks) > 1 or len(whole) < 3000
        assert np.array_equal(np.concatenate(blocks), whole), (start, end)
    # (a start past 1 s seeks, which restarts the resampler: that path is checked
    # exactly on a WAV at its own rate in test_media.py)


def test_audio_cursor_takes_consecutive_spans():
    audio = np.arange(10_000, dtype=np.float32)
    cursor = AudioCursor(array_blocks(audio, 777))
    assert np.array_equal(cursor.take(0, 1000), audio[:1000])
    assert np.array_equal(cursor.take(1500, 2000), audio[1500:3500])
    assert np.array_equal(cursor.take(3500, 10), audio[3500:3510])
    tail = cursor.take(9000, 2000)
    assert np.array_equal(tail, audio[9000:]) and cursor.exhausted
    assert cursor.samples_read == 10_000 and len(cursor.take(10_000, 5)) == 0
    with pytest.raises(ValueError):
        cursor.take(100, 5)


_CHILD = """
import json, resource, sys
from copdata.build import build_dataset
from copdata.sources.base import BuildSettings
from copdata.sources.local import LocalSource
summary = build_dataset(LocalSource(sys.argv[1], test_fraction=0.0), sys.argv[2],
                        BuildSettings(fps=10.0, sample_rate=44100, clip_seconds=10.0),
                        progress=False)
print(json.dumps({"clips": summary.clips, "failed": summary.failed,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _peak_rss(folder: Path, out: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(folder), str(out)],
                          capture_output=True, text=True, cwd=REPO, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_source_length(tmp_path):
    runs = {}
    for minutes in (1.2, 4.2):
        folder = tmp_path / f"src{minutes:g}"
        folder.mkdir()
        make_long_video(folder / "take.mp4", minutes * 60.0)
        runs[minutes] = _peak_rss(folder, tmp_path / f"out{minutes:g}")
        assert runs[minutes]["failed"] == 0
        assert runs[minutes]["clips"] == int(minutes * 6)
    short, long = runs[1.2]["peak_mb"], runs[4.2]["peak_mb"]
    # Holding the whole source (audio, posteriors, note tracking) costs 60-75 MB
    # per minute: three more minutes would add ~200 MB. Streamed, the peak is
    # set by the model batches and one note chunk, whatever the length.
    assert long - short < 40.0, runs
    assert long < 1.1 * short, runs
