"""Download one video with yt-dlp into a cache, verified, without external ffmpeg.

:func:`download_media` fetches one URL (YouTube or any site yt-dlp supports,
including a plain file URL) into ``cache_dir/<key>/`` and returns the files:

* formats that need no ffmpeg: the best video-only stream under the height cap
  plus the best audio-only stream, as two separate files, falling back to one
  progressive file holding both (what a plain file URL gives);
* files are downloaded into a private temporary folder, opened and decoded with
  PyAV (first and last frames of each stream) and only then moved into place;
  ``complete.json`` is written last, so a cache entry either holds verified
  files or is ignored and downloaded again (a rebuild never downloads twice);
* failures are classified from yt-dlp's messages into :data:`FAILURE_KINDS`; a
  complete transfer that is not playable media (corrupt, an HTML page, no audio
  stream) is ``content``, never ``network``;
  only transient kinds (:data:`TRANSIENT_KINDS`) are retried, with exponential
  backoff ``min(max_backoff, backoff_base * 2**attempt)``; a final failure
  raises :class:`copdata.errors.DownloadError` with its kind.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import av

from ..errors import DownloadError, MediaError
from .container import AV_ERRORS
from .decode import MIN_VIDEO_SIDE, probe

log = logging.getLogger(__name__)

FAILURE_KINDS = ("unavailable", "gated", "bot_check", "rate_limited", "network", "content",
                 "other")
TRANSIENT_KINDS = frozenset({"rate_limited", "network"})
MARKER = "complete.json"
MARKER_VERSION = 1

# Checked in this order: the first matching kind wins. Patterns match yt-dlp's
# (and YouTube's) wording, lower-cased; e.g. "Private video. Sign in if you've
# been granted access" is `unavailable`, not `gated`, because it comes first.
_PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("other", (r"requested format is not available", r"ffmpeg")),
    # The transfer completed but the file is not playable media (corrupt, an HTML
    # page, no audio/video stream): downloading it again gives the same file.
    ("content", (r"does not decode", r"has no (audio|video) stream", r"not playable media")),
    ("bot_check", (r"not a bot", r"confirm you.?re not a robot", r"captcha",
                   r"unusual traffic")),
    ("rate_limited", (r"http error 429", r"too many requests", r"rate.?limit")),
    ("unavailable", (r"video unavailable", r"is unavailable", r"not available",
                     r"no longer available", r"private video", r"video is private",
                     r"has been removed", r"been terminated", r"does not exist",
                     r"http error 404", r"http error 410", r"not found",
                     r"unsupported url", r"is not a valid url", r"no video formats found")),
    ("gated", (r"confirm your age", r"age.?restricted", r"inappropriate for some users",
               r"sign in", r"log ?in", r"members.?only", r"channel.?s members",
               r"join this channel", r"requires payment", r"premium")),
    ("network", (r"timed out", r"timeout", r"connection", r"errno", r"urlopen error",
                 r"name resolution", r"network is unreachable", r"http error 5\d\d",
                 r"bytes read", r"more expected", r"incomplete", r"truncated",
                 r"did not get any data", r"content too short", r"ssl", r"proxy",
                 r"remote end closed", r"broken pipe")),
)


def classify_failure(message: str) -> str:
    """Kind of a yt-dlp failure message (one of :data:`FAILURE_KINDS`)."""
    text = message.lower()
    for kind, patterns in _PATTERNS:
        if any(re.search(p, text) for p in patterns):
            return kind
    return "other"


@dataclass(frozen=True)
class DownloadOptions:
    """yt-dlp settings for one build (picklable; no secrets are logged)."""

    height_cap: int | None = None
    cookies: str | None = None  # Netscape cookies.txt path
    rate_limit: str | float | None = None  # bytes/s, or "1M", "500K"
    sleep_interval: float | None = None  # seconds before each download
    proxy: str | None = None
    retries: int = 3  # retries of transient failures (rate_limited, network)
    backoff_base: float = 2.0  # seconds; delay = min(max_backoff, base * 2**attempt)
    max_backoff: float = 120.0
    ytdlp_options: dict = field(default_factory=dict)  # passed to yt_dlp.YoutubeDL as is

    audio_format: str = "ba[ext=m4a]/ba"

    def video_format(self) -> str:
        """Best video stream (video-only preferred) under the height cap, mp4 first."""
        h = f"[height<=?{int(self.height_cap)}]" if self.height_cap else ""
        return f"bv*{h}[ext=mp4]/bv*{h}/b{h}/bv*/b"

    def ytdlp_params(self) -> dict:
        params: dict = {
            "quiet": True, "no_warnings": False, "noprogress": True, "noplaylist": True,
            "logger": _YtDlpLogger(), "overwrites": True, "continuedl": False,
            "retries": 0, "fragment_retries": 0, "extractor_retries": 0,
            "file_access_retries": 0, "postprocessors": [], "noresizebuffer": False,
        }
        if self.cookies:
            params["cookiefile"] = str(self.cookies)
        if self.rate_limit is not None:
            params["ratelimit"] = _parse_rate(self.rate_limit)
        if self.sleep_interval:
            params["sleep_interval"] = float(self.sleep_interval)
        if self.proxy:
            params["proxy"] = self.proxy
        params.update(self.ytdlp_options)
        return params


def _parse_rate(value: str | float) -> float:
    from yt_dlp.utils import parse_bytes

    if isinstance(value, (int, float)):
        return float(value)
    rate = parse_bytes(str(value))
    if rate is None:
        raise ValueError(f"rate limit {value!r} is not a byte rate such as 500K or 2M")
    return float(rate)


class _YtDlpLogger:
    """Routes yt-dlp's output to :mod:`logging` (errors come back as exceptions)."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    info = debug

    def warning(self, msg: str) -> None:
        log.info("yt-dlp: %s", msg)

    def error(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)


@dataclass(frozen=True)
class DownloadedMedia:
    """Verified files of one video in the cache and its metadata."""

    video_path: Path
    audio_path: Path | None  # None: the video file holds the audio too
    info: dict  # id, title, uploader, duration, license, webpage_url, ...
    from_cache: bool


INFO_KEYS = ("id", "title", "uploader", "channel", "duration", "license", "webpage_url",
             "extractor", "upload_date", "width", "height")


def read_cache(entry: Path) -> DownloadedMedia | None:
    """The cached download in ``entry`` when complete and its files exist, else None."""
    marker = entry / MARKER
    try:
        record = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("version") != MARKER_VERSION:
        return None
    video = entry / record["video"]
    audio = entry / record["audio"] if record.get("audio") else None
    if not video.is_file() or (audio is not None and not audio.is_file()):
        return None
    return DownloadedMedia(video, audio, record.get("info", {}), from_cache=True)


def verify_media(path: Path, need_video: bool, need_audio: bool) -> None:
    """Open ``path`` with PyAV and decode the first and the last frames of the streams
    it must hold; raises :class:`MediaError` for a truncated or corrupt file."""
    info = probe(path)
    if need_video and not info.has_video:
        raise MediaError("downloaded file has no video stream", item=str(path))
    if need_audio and not info.has_audio:
        raise MediaError("downloaded file has no audio stream", item=str(path))
    if need_video and min(info.width, info.height) < MIN_VIDEO_SIDE:
        raise MediaError(f"downloaded video is {info.width}x{info.height} pixels, too small to "
                         "show a keyboard", item=str(path))
    kinds = [k for k, need in (("video", need_video), ("audio", need_audio)) if need]
    kind = "media"
    try:
        with av.open(str(path)) as container:
            for kind in kinds:
                stream = getattr(container.streams, kind)[0]
                duration = info.video_duration if kind == "video" else info.audio_duration
                duration = duration or info.duration
                for position in (0.0, max(duration - 1.0, 0.0)):
                    container.seek(int(position / float(stream.time_base)), stream=stream,
                                   backward=True, any_frame=False)
                    if next(iter(container.decode(stream)), None) is None:
                        raise MediaError(f"no {kind} frame decodes at {position:.1f} s",
                                         item=str(path))
    except AV_ERRORS as exc:  # FFmpeg's errors and what PyAV raises for unreadable codecs
        raise MediaError(f"{kind} does not decode ({type(exc).__name__}: {exc})",
                         item=str(path)) from exc


def _copy_info(info: dict) -> dict:
    try:
        return copy.deepcopy(info)
    except (TypeError, copy.Error):  # e.g. a fragment generator
        return dict(info)


def _downloaded_path(result: dict) -> Path:
    downloads = result.get("requested_downloads") or [result]
    path = downloads[0].get("filepath") or downloads[0].get("_filename")
    if not path or not os.path.isfile(path):
        raise DownloadError("yt-dlp reported success but wrote no file", kind="other")
    return Path(path)


def _download_once(url: str, entry: Path, options: DownloadOptions) -> DownloadedMedia:
    """One attempt: extract, download video (and audio), verify, move into ``entry``."""
    import yt_dlp

    entry.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".partial-", dir=entry))
    try:
        base = options.ytdlp_params()
        with yt_dlp.YoutubeDL(base) as ydl:
            # Unprocessed: no format picked yet, so each download below picks its own.
            info = ydl.extract_info(url, download=False, process=False)
        if info.get("_type") in ("playlist", "multi_video"):
            raise DownloadError("URL is a playlist; set expand=1 on its manifest row to build "
                                "each of its videos (see manifests/README.md)", kind="other")
        picked = {}
        for name, fmt in (("video", options.video_format()), ("audio", options.audio_format)):
            if name == "audio" and picked["video"][1].get("acodec") != "none":
                break  # the video file carries (or may carry) the audio
            params = dict(base, format=fmt, outtmpl={"default": str(work / f"{name}.%(ext)s")})
            with yt_dlp.YoutubeDL(params) as ydl:
                result = ydl.process_ie_result(_copy_info(info), download=True)
            picked[name] = (_downloaded_path(result), result)
        video_path, video_info = picked["video"]
        audio_path = picked["audio"][0] if "audio" in picked else None
        try:
            verify_media(video_path, need_video=True, need_audio=audio_path is None)
            if audio_path is not None:
                verify_media(audio_path, need_video=False, need_audio=True)
        except MediaError as exc:
            # yt-dlp checked the transfer (a short read is a `network` error above),
            # so the server sent this file: a content error, not retried.
            raise DownloadError(f"the downloaded file is not playable media: {exc}",
                                kind="content") from exc
        for stale in (entry / MARKER, *entry.glob("video.*"), *entry.glob("audio.*")):
            stale.unlink(missing_ok=True)
        final_video = entry / video_path.name
        os.replace(video_path, final_video)
        final_audio = None
        if audio_path is not None:
            final_audio = entry / audio_path.name
            os.replace(audio_path, final_audio)
        meta = {k: video_info.get(k, info.get(k)) for k in INFO_KEYS}
        meta = {k: v for k, v in meta.items() if v is not None}
        record = {"version": MARKER_VERSION, "url": url, "video": final_video.name,
                  "audio": final_audio.name if final_audio else None,
                  "height_cap": options.height_cap, "info": meta}
        tmp = entry / f".{MARKER}.tmp"
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, entry / MARKER)
        return DownloadedMedia(final_video, final_audio, meta, from_cache=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def download_media(url: str, entry: str | Path, options: DownloadOptions | None = None,
                   label: str | None = None) -> DownloadedMedia:
    """Return the verified files of ``url`` cached in folder ``entry``, downloading
    them when the cache has no complete copy made with the same height cap.

    Retries transient failures ``options.retries`` times with exponential
    backoff; raises :class:`DownloadError` (with ``kind``) on final failure.
    """
    import yt_dlp

    options = options or DownloadOptions()
    entry = Path(entry)
    label = label or url
    cached = read_cache(entry)
    if cached is not None:
        record = json.loads((entry / MARKER).read_text(encoding="utf-8"))
        if record.get("height_cap") == options.height_cap:
            log.debug("%s: using cached download in %s", label, entry)
            return cached
    attempt = 0
    while True:
        try:
            return _download_once(url, entry, options)
        except (yt_dlp.utils.YoutubeDLError, DownloadError) as exc:
            message = _clean_message(str(exc))
            kind = exc.kind if isinstance(exc, DownloadError) else classify_failure(message)
        if kind not in TRANSIENT_KINDS or attempt >= options.retries:
            tries = f" after {attempt + 1} attempts" if attempt else ""
            raise DownloadError(f"{message}{tries} [{kind}]; {_ADVICE[kind]}", item=label,
                                kind=kind)
        delay = min(options.max_backoff, options.backoff_base * 2 ** attempt)
        log.warning("%s: %s failure (%s); retry %d/%d in %.1f s", label, kind, message,
                    attempt + 1, options.retries, delay)
        time.sleep(delay)
        attempt += 1


def _clean_message(message: str) -> str:
    message = re.sub(r"\s+", " ", message.replace("\r", " ")).strip()
    return re.sub(r"^ERROR:\s*", "", message)


_ADVICE = {
    "unavailable": "the video is gone or private; remove it from the manifest",
    "gated": "the video needs a signed-in account; pass --cookies FILE (cookies.txt of a "
             "browser session that may watch it)",
    "bot_check": "YouTube asks for a bot check; pass --cookies FILE and slow down with "
                 "--sleep-interval / --rate-limit, or retry later",
    "rate_limited": "the site throttles this client; raise --sleep-interval, lower "
                    "--rate-limit or retry later",
    "network": "a network or server error persisted; check the connection (or --proxy) "
               "and rerun the build, which resumes",
    "content": "the server sent a complete file that is not a video with sound (corrupt, a "
               "web page, or no audio/video stream); downloading again would give the same "
               "file, so it was not retried: fix the URL or remove the row",
    "other": "see the message; pass yt-dlp options with --ytdlp-opt KEY=VALUE if needed",
}
