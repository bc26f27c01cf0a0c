"""Stimulus media for a listening study: the clip's video with one system's audio.

:func:`write_stimulus` remuxes the clip's H.264 video stream unchanged (no
re-encode) and encodes the audio as AAC (FFmpeg's native encoder, 160 kb/s)
into an mp4 that every current browser plays. Metadata is stripped: the
container and its streams carry no tags besides FFmpeg's own ``encoder`` line,
and ``-fflags +bitexact`` keeps even its version out. :func:`normalize_level`
puts every stimulus at the same RMS level (default -26 dBFS, peak kept under
-1 dBFS) so that loudness does not decide the rating (ITU-T P.800 practice);
digital silence stays silence.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from copdata.errors import MediaError

AUDIO_BITRATE = 160_000
TARGET_DBFS = -26.0
PEAK_LIMIT = 10 ** (-1.0 / 20)


def normalize_level(audio: np.ndarray, target_dbfs: float = TARGET_DBFS) -> np.ndarray:
    """Scale ``audio`` to ``target_dbfs`` RMS, then down if its peak would pass -1 dBFS."""
    audio = np.asarray(audio, dtype=np.float64).reshape(-1)
    rms = float(np.sqrt(np.mean(audio ** 2))) if audio.size else 0.0
    if rms <= 1e-9:
        return np.zeros(audio.shape, np.float32)
    gain = 10 ** (target_dbfs / 20) / rms
    peak = float(np.max(np.abs(audio))) * gain
    if peak > PEAK_LIMIT:
        gain *= PEAK_LIMIT / peak
    return (audio * gain).astype(np.float32)


def _clear(metadata) -> None:
    for key in list(metadata):
        del metadata[key]


def write_stimulus(video_path: str | Path, audio: np.ndarray, sample_rate: int,
                   out_path: str | Path, with_video: bool = True) -> Path:
    """Write ``out_path`` (.mp4 with video, .m4a without): the video stream of
    ``video_path`` copied as is plus ``audio`` (mono float) as AAC; no tags."""
    out_path = Path(out_path)
    pcm = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    try:
        src = None
        if with_video:  # a path, or a file object holding the (verified) clip video
            src = av.open(video_path if hasattr(video_path, "read") else str(video_path))
    except (av.error.FFmpegError, OSError) as exc:
        raise MediaError(f"cannot open the clip video ({exc})", item=str(video_path)) from exc
    try:
        with av.open(str(out_path), mode="w", format="mp4",
                     options={"fflags": "+bitexact", "movflags": "+faststart"}) as out:
            _clear(out.metadata)
            vin = vout = None
            if src is not None:
                vin = src.streams.video[0]
                vout = out.add_stream_from_template(vin)
                _clear(vout.metadata)
            aout = out.add_stream("aac", rate=int(sample_rate), layout="mono")
            aout.bit_rate = AUDIO_BITRATE
            aout.options = {"flags": "+bitexact"}
            _clear(aout.metadata)
            if src is not None:
                for packet in src.demux(vin):
                    if packet.dts is None:
                        continue
                    packet.stream = vout
                    out.mux(packet)
            frame_size = 1024
            aout.time_base = Fraction(1, int(sample_rate))
            for i in range(0, len(pcm), frame_size):
                frame = av.AudioFrame.from_ndarray(pcm[None, i:i + frame_size], format="flt",
                                                   layout="mono")
                frame.sample_rate = int(sample_rate)
                frame.pts = i
                frame.time_base = Fraction(1, int(sample_rate))
                for packet in aout.encode(frame):
                    out.mux(packet)
            for packet in aout.encode(None):
                out.mux(packet)
    finally:
        if src is not None:
            src.close()
    return out_path


def media_tags(path: str | Path) -> dict[str, str]:
    """Every metadata tag of a media file (container and streams), for checks."""
    tags: dict[str, str] = {}
    with av.open(str(path)) as container:
        tags.update({f"container.{k}": str(v) for k, v in container.metadata.items()})
        for stream in container.streams:
            tags.update({f"stream{stream.index}.{k}": str(v) for k, v in stream.metadata.items()})
    return tags
