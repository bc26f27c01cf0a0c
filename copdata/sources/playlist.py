"""Playlist and channel rows of a youtube manifest, expanded into one item per video.

A manifest row is a playlist when its ``url`` is a YouTube playlist or channel
(``/playlist?list=``, ``/channel/``, ``/c/``, ``/user/``, ``/@handle``, a
channel tab) or when its ``expand`` column is ``1``/``yes``/``true`` (any other
page yt-dlp lists videos from: an RSS feed, an XSPF playlist, a page of
several videos). :func:`expand_playlist` lists its entries with yt-dlp
(``extract_flat``: no video is fetched) and caches the listing in
``CACHE/playlists/<hash>.json``, so a resumed build sees the same entries;
delete that file to list the playlist again.

Each entry becomes an item with the row's split, crop box, start/end and
max_segments, and the playlist in its metadata: ``playlist_id``,
``playlist_title``, ``playlist_url``, ``playlist_index`` (1-based).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from ..errors import DownloadError
from ..media.download import DownloadOptions, classify_failure

log = logging.getLogger(__name__)
LISTING_VERSION = 1
_CHANNEL_PREFIXES = ("channel", "c", "user")
_TRUE = {"1", "yes", "true", "y"}
MAX_DEPTH = 3  # a channel lists tabs, a tab lists videos


def is_playlist_url(url: str) -> bool:
    """True for YouTube playlist and channel URLs (a watch URL with ``list=``
    is one video and stays one)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not (host.endswith("youtube.com") or host.endswith("youtube-nocookie.com")):
        return False
    segs = [s for s in parts.path.split("/") if s]
    query = parse_qs(parts.query)
    if segs and segs[0] == "playlist":
        return "list" in query
    if segs and (segs[0] in _CHANNEL_PREFIXES or segs[0].startswith("@")):
        return True
    return False


def wants_expansion(url: str, expand_cell: str) -> bool:
    """Whether a manifest row lists videos rather than naming one."""
    return is_playlist_url(url) or expand_cell.strip().lower() in _TRUE


def _entry_url(entry: dict) -> str | None:
    """The URL of one listed video (yt-dlp's smuggled extras removed)."""
    from yt_dlp.utils import unsmuggle_url

    for key in ("url", "webpage_url", "original_url"):
        value = entry.get(key)
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            return unsmuggle_url(value)[0]
    formats = entry.get("formats") or []
    urls = [f.get("url") for f in formats if isinstance(f, dict) and f.get("url")]
    return urls[-1] if urls else None


def _is_nested_playlist(entry: dict) -> bool:
    if entry.get("_type") == "playlist":
        return True
    url = entry.get("url") or ""
    return entry.get("_type") in ("url", "url_transparent") and is_playlist_url(url)


def _list_entries(ydl, info: dict, depth: int, out: list[dict]) -> None:
    for entry in info.get("entries") or []:
        if not isinstance(entry, dict):
            continue
        if _is_nested_playlist(entry) and depth < MAX_DEPTH:
            nested = entry if entry.get("_type") == "playlist" else \
                ydl.extract_info(entry["url"], download=False)
            _list_entries(ydl, nested, depth + 1, out)
            continue
        url = _entry_url(entry)
        if url:
            out.append({"url": url, "id": entry.get("id"), "title": entry.get("title")})


def _cache_path(cache_dir: Path, url: str) -> Path:
    digest = hashlib.sha1(url.encode("utf-8")).hexdigest()[:16]
    return cache_dir / "playlists" / f"{digest}.json"


def expand_playlist(url: str, cache_dir: str | Path, options: DownloadOptions | None = None,
                    label: str | None = None) -> dict:
    """The playlist's listing: ``{"id", "title", "url", "entries": [{"url", "id",
    "title"}, ...]}`` in playlist order, from the cache or from yt-dlp.

    Raises :class:`DownloadError` (with ``kind``) when yt-dlp cannot list it,
    and when it lists no videos.
    """
    import yt_dlp

    options = options or DownloadOptions()
    label = label or url
    path = _cache_path(Path(cache_dir), url)
    if path.is_file():
        try:
            cached = json.loads(path.read_text(encoding="utf-8"))
            if cached.get("version") == LISTING_VERSION and cached.get("url") == url:
                return cached
        except (OSError, ValueError):
            pass  # unreadable cache: list again
    params = dict(options.ytdlp_params(), noplaylist=False, extract_flat="in_playlist",
                  skip_download=True)
    try:
        with yt_dlp.YoutubeDL(params) as ydl:
            info = ydl.extract_info(url, download=False)
            entries: list[dict] = []
            if info.get("_type") in ("playlist", "multi_video"):
                _list_entries(ydl, info, 1, entries)
            elif _entry_url(info):  # the "playlist" is a single video
                entries.append({"url": info.get("webpage_url") or url, "id": info.get("id"),
                                "title": info.get("title")})
    except yt_dlp.utils.YoutubeDLError as exc:
        message = str(exc).replace("ERROR: ", "")
        kind = classify_failure(message)
        raise DownloadError(f"cannot list the playlist ({message})", item=label,
                            kind=kind) from exc
    if not entries:
        raise DownloadError("the playlist lists no videos", item=label, kind="unavailable")
    listing = {"version": LISTING_VERSION, "url": url, "id": str(info.get("id") or url),
               "title": info.get("title"), "entries": entries}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(listing, indent=2, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)
    log.info("%s: %d videos listed", label, len(entries))
    return listing
