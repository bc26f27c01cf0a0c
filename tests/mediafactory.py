"""Media the tests make: PyAV-encoded videos with known content."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def tone_track(seconds: float, sample_rate: int, notes: list[tuple[float, float, int]]) -> np.ndarray:
    """Piano-ish tones: (start, end, midi pitch) with decaying harmonics."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    x = np.zeros_like(t)
    for start, end, pitch in notes:
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        m = (t >= start) & (t < end)
        tt = t[m] - start
        env = np.exp(-2.5 * tt) * np.minimum(1.0, tt / 0.005)
        x[m] += 0.25 * env * (np.sin(2 * np.pi * f0 * tt) + 0.4 * np.sin(4 * np.pi * f0 * tt)
                              + 0.15 * np.sin(6 * np.pi * f0 * tt))
    return x.astype(np.float32)


def melody(seconds: float, step: float = 0.5, base: int = 60) -> list[tuple[float, float, int]]:
    pattern = [0, 4, 7, 12, 7, 4, 2, 5, 9, 5]
    return [(s, s + step * 0.8, base + pattern[k % len(pattern)])
            for k, s in enumerate(np.arange(0.0, seconds - step, step))]


def level(i: int) -> int:
    """Grey level that identifies source frame i (decodable after H.264)."""
    return 20 + 5 * (i % 44)


def decode_level(frame: np.ndarray) -> int:
    return int(round((float(frame.mean()) - 20) / 5))


def make_video(path: str | Path, seconds: float = 6.0, fps: float = 30, size=(160, 64),
               audio_seconds: float | None = None, sample_rate: int = 44100,
               frame_times: list[float] | None = None, with_audio: bool = True,
               pix_fmt: str = "yuv420p", channels: int = 1) -> Path:
    """Encode an mp4 whose frame i is uniformly grey at :func:`level` (i).

    ``frame_times`` gives explicit presentation times (variable frame rate);
    the audio track (``audio_seconds`` long, default = video length) holds
    :func:`melody` tones.
    """
    path = Path(path)
    w, h = size
    times = frame_times if frame_times is not None else [i / fps for i in range(int(round(seconds * fps)))]
    container = av.open(str(path), "w")
    vs = container.add_stream("libx264", rate=int(fps))
    vs.width, vs.height, vs.pix_fmt = w, h, pix_fmt
    vs.codec_context.time_base = Fraction(1, 1000)
    vs.options = {"qp": "0"} if pix_fmt == "yuv444p" else {"crf": "10"}
    a_stream = None
    if with_audio:
        a_stream = container.add_stream("aac", rate=sample_rate,
                                        layout="mono" if channels == 1 else "stereo")
    for i, t in enumerate(times):
        frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), level(i), np.uint8), format="rgb24")
        frame.pts = int(round(t * 1000))
        frame.time_base = Fraction(1, 1000)
        for packet in vs.encode(frame):
            container.mux(packet)
    for packet in vs.encode(None):
        container.mux(packet)
    if with_audio:
        secs = audio_seconds if audio_seconds is not None else seconds
        x = tone_track(secs, sample_rate, melody(secs))
        for i in range(0, len(x), 1024):
            chunk = x[None, i:i + 1024]
            if channels == 2:
                chunk = np.concatenate([chunk, chunk])
                fr = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
            else:
                fr = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
            fr.sample_rate = sample_rate
            fr.pts = i
            for packet in a_stream.encode(fr):
                container.mux(packet)
        for packet in a_stream.encode(None):
            container.mux(packet)
    container.close()
    return path


def make_long_video(path: str | Path, seconds: float, fps: int = 10, size=(64, 32),
                    sample_rate: int = 22050, block_seconds: float = 10.0) -> Path:
    """A long mp4 (H.264 + AAC mono) written block by block, so making it does
    not take memory in proportion to its length: frame i is grey at
    :func:`level` (i); the audio repeats :func:`melody` every block."""
    path = Path(path)
    w, h = size
    block = tone_track(block_seconds, sample_rate, melody(block_seconds, step=0.4))
    with av.open(str(path), "w") as container:
        vs = container.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "ultrafast"}
        a_stream = container.add_stream("aac", rate=sample_rate, layout="mono")
        total = int(round(seconds * sample_rate))
        frame_index = 0
        for b0 in range(0, total, len(block)):
            x = block[: min(len(block), total - b0)]
            for i in range(0, len(x), 1024):
                fr = av.AudioFrame.from_ndarray(x[None, i:i + 1024], format="flt", layout="mono")
                fr.sample_rate = sample_rate
                fr.pts = b0 + i
                for packet in a_stream.encode(fr):
                    container.mux(packet)
            while frame_index < int(round((b0 + len(x)) / sample_rate * fps)):
                image = np.full((h, w, 3), level(frame_index), np.uint8)
                for packet in vs.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                    container.mux(packet)
                frame_index += 1
        for stream in (vs, a_stream):
            for packet in stream.encode(None):
                container.mux(packet)
    return path


def build_synth_dataset(out, num_items: int, item_seconds: float, clip_seconds: float,
                        frame_size=(320, 64), seed: int = 0, test_fraction: float = 0.5):
    """A small synthetic CoP dataset at ``out`` (the fixture many test files share)."""
    from copdata.build import build_dataset
    from copdata.sources.base import BuildSettings
    from copdata.sources.synth import SynthSource
    build_dataset(SynthSource(num_items=num_items, item_seconds=item_seconds, seed=seed,
                              test_fraction=test_fraction, frame_size=frame_size),
                  Path(out), BuildSettings(clip_seconds=clip_seconds), progress=False)
    return Path(out)


def pyav_decode(path, rate):
    """An independent whole-file decode: PyAV's own resampler over every frame, the
    stream's first sample placed at its container time (no seeking, no blocks)."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        origin = container.start_time / 1e6 if container.start_time else 0.0
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks, first = [], None
        for frame in container.decode(stream):
            if first is None:
                first = frame.time - origin
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    audio = np.concatenate(chunks)
    lead = int(round(first * rate))
    return np.concatenate([np.zeros(lead, np.float32), audio]) if lead > 0 else audio[-lead:]

