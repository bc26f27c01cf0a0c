"""Transcription with basic-pitch's ONNX model on audio rendered from known notes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import av
import mir_eval

from copdata.errors import (MediaError, MissingStreamError, SampleRateError,  # noqa: E402
                            SilentInputError, TooShortError)
from copdata.notes import Note, read_midi  # noqa: E402
from copdata.transcription import get_transcriber, transcribe_file  # noqa: E402
from copdata.transcription.basic_pitch import BasicPitchTranscriber  # noqa: E402
from copdata.transcription.basic_pitch_grid import (FRAMES_PER_SECOND,  # noqa: E402
                                                    MODEL_SAMPLE_RATE, frame_windows,
                                                    unwrap_windows)

REPO = Path(__file__).resolve().parents[1]


def tone(pitch: int, seconds: float, sample_rate: int, velocity: int) -> np.ndarray:
    """Piano-like additive tone: 8 slightly stretched partials, each decaying
    faster than the one below, 3 ms attack and 50 ms linear release."""
    freq = 440.0 * 2 ** ((pitch - 69) / 12)
    t = np.arange(int((seconds + 0.05) * sample_rate)) / sample_rate
    out = np.zeros_like(t)
    for k in range(1, 9):
        partial = k * freq * np.sqrt(1 + 0.0004 * k * k)
        if partial > sample_rate / 2 - 500:
            break
        out += np.sin(2 * np.pi * partial * t) / k ** 1.2 * np.exp(-t * (1.5 + 0.6 * k))
    release = int(0.05 * sample_rate)
    out *= np.minimum(1.0, t / 0.003)
    out[-release:] *= np.linspace(1.0, 0.0, release)
    return out * velocity / 127


def render(notes: list[Note], sample_rate: int, seconds: float) -> np.ndarray:
    audio = np.zeros(int(round(seconds * sample_rate)) + sample_rate)
    for n in notes:
        start = int(round(n.start * sample_rate))
        wave = tone(n.pitch, n.end - n.start, sample_rate, n.velocity)
        audio[start:start + wave.size] += wave[:audio.size - start]
    audio = audio[:int(round(seconds * sample_rate))]
    return (0.5 * audio / np.abs(audio).max()).astype(np.float32)


def melody(seed: int = 1, count: int = 20) -> tuple[list[Note], float]:
    """A melody in C3..B5 with a dyad (a third below) on every fourth note."""
    rng = np.random.default_rng(seed)
    notes, t = [], 0.3
    for i in range(count):
        length = float(rng.uniform(0.25, 0.5))
        pitch = int(rng.integers(52, 84))
        notes.append(Note(t, t + length, pitch, int(rng.integers(60, 110))))
        if i % 4 == 3:
            notes.append(Note(t, t + length, pitch - 4, 70))
        t += length + 0.05
    return notes, t + 0.5


def onset_f1(reference: list[Note], estimate: list[Note]) -> float:
    """mir_eval note onset F1 (50 ms onset tolerance, 50 cents, offsets ignored)."""
    def arrays(notes):
        intervals = np.array([[n.start, n.end] for n in notes], dtype=float).reshape(-1, 2)
        hz = 440.0 * 2 ** ((np.array([n.pitch for n in notes], dtype=float) - 69) / 12)
        return intervals, hz
    (ri, rp), (ei, ep) = arrays(reference), arrays(estimate)
    return mir_eval.transcription.precision_recall_f1_overlap(
        ri, rp, ei, ep, onset_tolerance=0.05, offset_ratio=None)[2]


@pytest.fixture(scope="module")
def song():
    notes, seconds = melody()
    return notes, seconds


@pytest.fixture(scope="module")
def transcriber():
    return get_transcriber()


@pytest.fixture(scope="module")
def notes_22k(song, transcriber):
    notes, seconds = song
    return transcriber.transcribe(render(notes, MODEL_SAMPLE_RATE, seconds), MODEL_SAMPLE_RATE)


def test_transcription_finds_rendered_notes(song, notes_22k):
    reference, seconds = song
    assert onset_f1(reference, notes_22k) >= 0.8
    assert all(0 <= n.start < n.end <= seconds and 21 <= n.pitch <= 108 and 1 <= n.velocity <= 127
               for n in notes_22k)
    assert notes_22k == sorted(notes_22k)


@pytest.mark.parametrize("sample_rate", [16000, 48000])
def test_other_sample_rates_give_the_same_notes(song, transcriber, notes_22k, sample_rate):
    notes, seconds = song
    other = transcriber.transcribe(render(notes, sample_rate, seconds), sample_rate)
    assert onset_f1(notes_22k, other) >= 0.95
    assert onset_f1(notes, other) >= 0.8


def test_multichannel_is_mixed_down(song, transcriber, notes_22k):
    notes, seconds = song
    mono = render(notes, MODEL_SAMPLE_RATE, seconds)
    stereo = np.stack([mono, mono])
    assert transcriber.transcribe(stereo, MODEL_SAMPLE_RATE) == notes_22k
    assert transcriber.transcribe(stereo.T.copy(), MODEL_SAMPLE_RATE) == notes_22k


def test_posteriors_shapes_and_timing(song, transcriber):
    notes, seconds = song
    audio = render(notes, MODEL_SAMPLE_RATE, seconds)
    post = transcriber.posteriors(audio, MODEL_SAMPLE_RATE)
    frames = int(np.floor(audio.size * FRAMES_PER_SECOND / MODEL_SAMPLE_RATE))
    assert post["note"].shape == post["onset"].shape == (frames, 88)
    assert post["contour"].shape == (frames, 264)
    assert all(np.all((v >= 0) & (v <= 1)) for v in post.values())
    # onsets light up at the notes' pitches within 50 ms of the notes' starts
    hits = [post["onset"][max(0, round(n.start * FRAMES_PER_SECOND) - 4):
                          round(n.start * FRAMES_PER_SECOND) + 5, n.pitch - 21].max() >= 0.5
            for n in notes]
    assert np.mean(hits) >= 0.8
    assert post["onset"][: round(notes[0].start * FRAMES_PER_SECOND) - 8].max() < 0.5


@pytest.mark.parametrize("num_samples", [100, 36164, 36164 * 3 - 3840, 50000, 150001])
def test_windowing_matches_basic_pitch(num_samples):
    get_transcriber()  # imports basic-pitch quietly first
    import basic_pitch.inference as inference
    audio = np.random.default_rng(num_samples).standard_normal(num_samples).astype(np.float32)
    padded = np.concatenate([np.zeros(3840, np.float32), audio])
    theirs = np.stack([w for w, _ in inference.window_audio_file(padded, 43844 - 30 * 256)])
    ours = frame_windows(audio)
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)
    fake = np.random.default_rng(0).random((ours.shape[0], 172, 88)).astype(np.float32)
    np.testing.assert_array_equal(unwrap_windows(fake, num_samples),
                                  inference.unwrap_output(fake, num_samples, 30))


def test_silent_and_invalid_input(transcriber):
    with pytest.raises(SilentInputError):
        transcriber.transcribe(np.zeros(22050, np.float32), 22050)
    quiet = 10 ** (-90 / 20) * np.sin(np.arange(22050) * 0.1)
    with pytest.raises(SilentInputError, match="dBFS"):
        transcriber.transcribe(quiet, 22050)
    with pytest.raises(SilentInputError):
        transcriber.posteriors(np.zeros(22050, np.float32), 22050)
    bad = np.ones(22050, np.float32)
    bad[100] = np.nan
    with pytest.raises(MediaError, match="NaN"):
        transcriber.transcribe(bad, 22050)
    bad[100] = np.inf
    with pytest.raises(MediaError):
        transcriber.transcribe(bad, 22050)
    with pytest.raises(TooShortError):
        transcriber.transcribe(np.zeros(0, np.float32), 22050)
    with pytest.raises(MediaError):
        transcriber.transcribe(np.ones((2, 3, 4), np.float32), 22050)
    for rate in (0, -22050, 22050.5, "22050"):
        with pytest.raises(SampleRateError):
            transcriber.transcribe(np.ones(22050, np.float32), rate)


def test_model_loads_once_per_process_and_info_records_settings(transcriber):
    assert get_transcriber() is transcriber
    assert get_transcriber(onset_threshold=0.5, frame_threshold=0.3) is transcriber
    strict = get_transcriber(onset_threshold=0.7, frame_threshold=0.4, min_note_ms=200.0)
    assert strict is not transcriber
    assert get_transcriber(onset_threshold=0.7, frame_threshold=0.4, min_note_ms=200.0) is strict
    info = strict.info()
    assert (info["onset_threshold"], info["frame_threshold"], info["min_note_ms"]) == (0.7, 0.4, 200.0)
    assert info["name"] == "basic-pitch" and info["version"] == "0.4.0"
    assert info["model"] == "nmp.onnx" and len(info["model_sha256"]) == 64
    assert info["runtime"].startswith("onnxruntime ") and info["resampler"]
    assert transcriber.info()["onset_threshold"] == 0.5


def test_thresholds_change_the_notes(song, transcriber, notes_22k):
    notes, seconds = song
    audio = render(notes, MODEL_SAMPLE_RATE, seconds)
    strict = BasicPitchTranscriber(onset_threshold=0.9, frame_threshold=0.6, min_note_ms=400.0)
    fewer = strict.transcribe(audio, MODEL_SAMPLE_RATE)
    assert len(fewer) < len(notes_22k)
    assert all(n.end - n.start >= 0.4 for n in fewer)


def encode_audio(path: Path, audio: np.ndarray, sample_rate: int, codec: str) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=sample_rate, layout="mono")
        sample_format = "s16" if codec in ("flac", "pcm_s16le") else "fltp"
        pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16) if sample_format == "s16" else audio
        for start in range(0, audio.size, 4096):
            frame = av.AudioFrame.from_ndarray(pcm[None, start:start + 4096], format=sample_format,
                                               layout="mono")
            frame.sample_rate = sample_rate
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


@pytest.mark.parametrize("name,codec", [("take 1;$(x).flac", "flac"), ("take.wav", "pcm_s16le")])
def test_transcribe_file_round_trip(tmp_path, song, notes_22k, name, codec):
    notes, seconds = song
    audio_path = tmp_path / name
    encode_audio(audio_path, render(notes, 44100, seconds), 44100, codec)
    out_mid = tmp_path / "out.mid"
    found = transcribe_file(audio_path, out_mid)
    assert onset_f1(notes, found) >= 0.8
    assert onset_f1(notes_22k, found) >= 0.95
    back = read_midi(out_mid)
    assert [(n.pitch, n.velocity) for n in back] == [(n.pitch, n.velocity) for n in found]
    assert np.allclose([n.start for n in back], [n.start for n in found], atol=1e-3)


def test_transcribe_file_bad_inputs(tmp_path):
    with pytest.raises(MediaError):
        transcribe_file(tmp_path / "missing.wav")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 100)
    with pytest.raises(MediaError):
        transcribe_file(garbage)
    silent = tmp_path / "silent.flac"
    encode_audio(silent, np.zeros(44100, np.float32), 44100, "flac")
    with pytest.raises(SilentInputError, match="silent.flac"):
        transcribe_file(silent)
    video = tmp_path / "no_audio.mp4"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        for i in range(10):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * 20, np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with pytest.raises(MissingStreamError):
        transcribe_file(video)


def test_import_is_quiet_and_tensorflow_free():
    code = ("import sys, logging; logging.basicConfig(level=logging.WARNING);"
            "from copdata.transcription import get_transcriber; get_transcriber();"
            "print('TF' if 'tensorflow' in sys.modules else 'noTF')")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120, check=True)
    assert done.stdout.strip() == "noTF"
    assert "not installed" not in done.stderr, done.stderr


def test_piano_renderer_if_present():
    from copdata.render import piano
    notes, seconds = melody(seed=5, count=12)
    audio = piano.render_notes(notes, 44100, seconds)
    assert onset_f1(notes, get_transcriber().transcribe(audio, 44100)) >= 0.8


def test_missing_model_file_names_the_fix(tmp_path):
    from copdata.errors import TranscriberError
    with pytest.raises(TranscriberError, match="basic-pitch"):
        BasicPitchTranscriber(model_path=tmp_path / "nmp.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx model")
    with pytest.raises(TranscriberError, match="onnxruntime"):
        BasicPitchTranscriber(model_path=broken)
