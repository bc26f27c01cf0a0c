"""The ``youtube`` source: a CSV manifest of videos fetched with yt-dlp.

Manifest columns (see ``manifests/README.md``); lines starting with ``#`` are
comments:

* ``youtube_id`` (11 characters) **or** ``url`` (any URL yt-dlp supports,
  including a plain file URL): exactly one per row; a YouTube playlist or
  channel URL, or any URL with ``expand`` set to ``1``/``yes``/``true``, is
  expanded into one item per video (:mod:`copdata.sources.playlist`);
* ``split`` (default ``train``);
* optional keyboard crop box ``crop_x0, crop_y0, crop_x1, crop_y1`` in source
  pixels (x1, y1 exclusive), all four or none;
* optional ``start``, ``end``: seconds within the video;
* optional ``max_segments``: keep only the first N clips of the item (e.g. the
  published PianoYT-2h test set); the pipeline reads it from
  ``SourceItem.meta["max_segments"]``;
* optional ``id``: the source id to use instead of the one derived from the
  video id or URL (not on playlist rows).

The shared columns follow :mod:`copdata.sources.manifest`.

A malformed row does not stop the build: :meth:`YouTubeSource.items` yields it
with the problem recorded, and :meth:`YouTubeSource.fetch` raises
:class:`ManifestError` naming the row, which the build reports as a failed row.

Downloads go through :func:`copdata.media.download.download_media` into
``cache_dir/<source_id>/``; decoding (crop, start/end, constant fps,
resampling) through :func:`copdata.sources.local.performance_from_files`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ..errors import DownloadError, ManifestError
from ..ids import path_under, sanitize_source_id
from ..media.download import DownloadOptions, download_media
from ..options import number
from .base import BuildSettings, Performance, Source, SourceItem
from .manifest import ManifestRow, RowError, cell, item_meta, parse_common, read_rows
from .playlist import expand_playlist, wants_expansion

NAME = "youtube"
HELP = "a manifest of videos fetched with yt-dlp"
YOUTUBE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")
WATCH_URL = "https://www.youtube.com/watch?v={}"
_SECRET_KEY_RE = re.compile(r"pass|user|token|cookie|header|auth|key|secret|proxy", re.I)


def youtube_id_from_url(url: str) -> str | None:
    """The video id of a YouTube watch/short/embed URL, else None."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host == "youtu.be":
        candidate = parts.path.strip("/").split("/")[0]
    elif host.endswith("youtube.com") or host.endswith("youtube-nocookie.com"):
        candidate = (parse_qs(parts.query).get("v") or [""])[0]
        if not candidate:
            segs = [s for s in parts.path.split("/") if s]
            candidate = segs[1] if len(segs) >= 2 and segs[0] in ("shorts", "embed", "live",
                                                                      "v") else ""
    else:
        return None
    return candidate if YOUTUBE_ID_RE.match(candidate) else None


def source_id_for_url(url: str) -> str:
    """A stable source id for a URL: the YouTube id when it is one, else the file
    stem plus a hash of the whole URL (distinct URLs keep distinct ids)."""
    yid = youtube_id_from_url(url)
    if yid:
        return yid
    path = urlsplit(url).path.rstrip("/")
    stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0] or "video"
    digest = hashlib.sha1(url.encode("utf-8")).hexdigest()[:8]
    return sanitize_source_id(f"{stem[:40]}-{digest}")


OWN_COLUMNS = frozenset({"youtube_id", "url", "expand"})


def _media_fields(row: ManifestRow) -> dict:
    """The youtube-specific columns of a row; raises :class:`RowError`."""
    yid, url = cell(row, "youtube_id"), cell(row, "url")
    if bool(yid) == bool(url):
        raise RowError("give exactly one of youtube_id and url")
    if yid and not YOUTUBE_ID_RE.match(yid):
        raise RowError(f"youtube_id {yid!r} is not an 11-character YouTube id "
                       "(use the url column for other sites)")
    if url and urlsplit(url).scheme not in ("http", "https"):
        raise RowError(f"url {url!r} is not an http(s) URL")
    return {"youtube_id": yid or youtube_id_from_url(url), "url": url or WATCH_URL.format(yid),
            "derived_id": yid or source_id_for_url(url), "label": yid or url}


def read_manifest(path: str | Path) -> list[SourceItem]:
    """Parse a manifest into items, in file order. Rows that are malformed (or
    repeat an earlier id) become items whose ``meta["manifest_error"]`` says why.
    A missing, unreadable, non-UTF-8 or header-less file raises
    :class:`ManifestError`. The shared columns follow
    :mod:`copdata.sources.manifest`; ``split`` defaults to train. A playlist or
    channel row is one item with ``meta["expand"]``, expanded by
    :meth:`YouTubeSource.items`."""
    _, rows = read_rows(path, ("youtube_id", "url"))
    parsed: list[tuple[ManifestRow, SourceItem | str]] = []  # an item, or the row's error
    seen: set[str] = set()
    for row in rows:
        try:
            fields = parse_common(row, OWN_COLUMNS)
            media = _media_fields(row)
            if media["url"] and wants_expansion(media["url"], cell(row, "expand")):
                if fields.source_id:
                    raise RowError("a playlist row cannot take an id (each video gets its own)")
                parsed.append((row, SourceItem(
                    source_id=sanitize_source_id(f"playlist-row{row.line:05d}"),
                    label=media["label"], split=fields.split or "train", crop=fields.crop,
                    start=fields.start, end=fields.end,
                    meta={"expand": True, "playlist_url": media["url"],
                          "manifest_row": row.line, **item_meta(fields)})))
                continue
            source_id = fields.source_id or sanitize_source_id(media["derived_id"])
            if source_id in seen:
                raise RowError(f"source id {source_id!r} repeats an earlier row")
        except RowError as exc:
            parsed.append((row, f"{row.where}: {exc}"))
            continue
        seen.add(source_id)
        meta = {"url": media["url"], "manifest_row": row.line, **item_meta(fields)}
        if media["youtube_id"]:
            meta["youtube_id"] = media["youtube_id"]
        parsed.append((row, SourceItem(source_id=source_id, label=media["label"],
                                       split=fields.split or "train", meta=meta,
                                       crop=fields.crop, start=fields.start, end=fields.end)))
    seen.update(item.source_id for _, item in parsed if isinstance(item, SourceItem))
    items: list[SourceItem] = []
    for row, item in parsed:
        if isinstance(item, str):  # a malformed row: a failed item with an unused id
            raw = cell(row, "youtube_id") or cell(row, "url")
            item = SourceItem(source_id=fallback_id(row.line, raw, seen), label=row.where,
                              split="train",
                              meta={"manifest_error": item, "manifest_row": row.line})
        items.append(item)
    return items


def fallback_id(line_no: int, raw: str, taken: set[str]) -> str:
    """The source id of a malformed row: ``row<line>-<raw>``, made distinct from
    every id in ``taken`` (which it joins), so a malformed row whose id collides
    with another row fails alone instead of stopping the build."""
    base = sanitize_source_id(f"row{line_no:05d}-{raw}" if raw else f"row{line_no:05d}")
    sid, k = base, 1
    while sid in taken:
        sid = sanitize_source_id(f"{base}-{k}")
        k += 1
    taken.add(sid)
    return sid


def redact_proxy(proxy: str | None) -> str | None:
    """A proxy URL without its user name and password."""
    if not proxy:
        return proxy
    parts = urlsplit(proxy)
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return proxy


class YouTubeSource(Source):
    """Videos listed in a manifest, downloaded with yt-dlp into ``cache_dir``."""

    name = "youtube"

    def __init__(self, manifest: str | Path, cache_dir: str | Path, height_cap: int | None = None,
                 cookies: str | Path | None = None, rate_limit: str | float | None = None,
                 sleep_interval: float | None = None, retries: int = 3,
                 proxy: str | None = None, ytdlp_options: dict | None = None,
                 backoff_base: float = 2.0, max_backoff: float = 120.0):
        self.manifest = Path(manifest)
        self.cache_dir = Path(cache_dir)
        if cookies is not None and not Path(cookies).is_file():
            raise ManifestError("cookies file not found (export cookies.txt in Netscape "
                                "format from a browser session)", item=str(cookies))
        self.options = DownloadOptions(
            height_cap=height_cap, cookies=str(cookies) if cookies else None,
            rate_limit=rate_limit, sleep_interval=sleep_interval, proxy=proxy,
            retries=int(retries), backoff_base=float(backoff_base),
            max_backoff=float(max_backoff), ytdlp_options=dict(ytdlp_options or {}))
        self._items = read_manifest(self.manifest)
        self._expanded: list[SourceItem] | None = None

    def items(self) -> list[SourceItem]:
        """The manifest's items with playlist and channel rows expanded into
        one item per video (listed once, then from the cache; see
        :mod:`copdata.sources.playlist`). A playlist that cannot be listed is
        one item that fails with the listing's :class:`DownloadError`; a video
        whose source id repeats an earlier one fails with :class:`ManifestError`."""
        if self._expanded is None:
            out: list[SourceItem] = []
            seen: set[str] = set()
            for item in self._items:
                for entry in self._expand(item):
                    if entry.source_id in seen and "manifest_error" not in entry.meta:
                        where = f"{self.manifest.name}:{entry.meta.get('manifest_row')}"
                        index = entry.meta.get("playlist_index")
                        entry = replace(entry, source_id=sanitize_source_id(
                            f"dup-{entry.source_id}-{entry.meta.get('manifest_row')}-{index}"),
                            meta={"manifest_error": f"{where}: playlist video {index} "
                                  f"({entry.meta.get('url')}) repeats source id "
                                  f"{entry.source_id!r} of an earlier row",
                                  "manifest_row": entry.meta.get("manifest_row")})
                    seen.add(entry.source_id)
                    out.append(entry)
            self._expanded = out
        return list(self._expanded)

    def _expand(self, item: SourceItem) -> list[SourceItem]:
        if not item.meta.get("expand"):
            return [item]
        url = item.meta["playlist_url"]
        try:
            listing = expand_playlist(url, self.cache_dir, self.options, label=item.label)
        except DownloadError as exc:
            return [replace(item, meta={"playlist_url": url, "playlist_error": str(exc),
                                        "error_kind": exc.kind,
                                        "manifest_row": item.meta.get("manifest_row")})]
        common = {k: v for k, v in item.meta.items() if k not in ("expand", "playlist_url")}
        entries = []
        for index, entry in enumerate(listing["entries"], start=1):
            meta = {**common, "url": entry["url"], "playlist_id": listing["id"],
                    "playlist_title": listing.get("title"), "playlist_url": url,
                    "playlist_index": index}
            yid = youtube_id_from_url(entry["url"])
            if yid:
                meta["youtube_id"] = yid
            meta = {k: v for k, v in meta.items() if v is not None}
            entries.append(replace(item, source_id=source_id_for_url(entry["url"]),
                                   label=entry["url"], meta=meta))
        return entries

    @property
    def transcribes(self) -> bool:
        return True

    def describe(self) -> dict:
        """Settings that shape the output, for ``dataset.json`` (a rebuild with other
        values is a different dataset). Download knobs that do not change the
        output (cookies, rate limit, sleep, retries, proxy) are in
        :meth:`download_settings`, so a resumed build may change them."""
        o = self.options
        ytdlp = {k: ("<redacted>" if _SECRET_KEY_RE.search(k) else v)
                 for k, v in sorted(o.ytdlp_options.items())}
        return {"name": self.name, "manifest": self.manifest.name, "height_cap": o.height_cap,
                "video_format": o.video_format(), "audio_format": o.audio_format,
                "ytdlp_options": json.loads(json.dumps(ytdlp, default=str)),
                "downloader": f"yt-dlp {_ytdlp_version()}"}

    def download_settings(self) -> dict:
        """Non-secret download knobs: no cookie contents or path, no proxy credentials."""
        o = self.options
        return {"cookies": bool(o.cookies), "rate_limit": o.rate_limit,
                "sleep_interval": o.sleep_interval, "retries": o.retries,
                "backoff_base": o.backoff_base, "max_backoff": o.max_backoff,
                "proxy": redact_proxy(o.proxy), "cache_dir": str(self.cache_dir)}

    def fetch(self, item: SourceItem, settings: BuildSettings) -> Performance:
        """Download (or reuse the cache), then decode through the local source."""
        if "manifest_error" in item.meta:
            raise ManifestError(item.meta["manifest_error"], item=str(self.manifest))
        if "playlist_error" in item.meta:
            raise DownloadError(item.meta["playlist_error"], kind=item.meta["error_kind"])
        from .local import performance_from_files

        files = download_media(item.meta["url"], path_under(self.cache_dir, item.source_id),
                               self.options, label=item.label)
        performance = performance_from_files(files.video_path, files.audio_path, item, settings)
        info = files.info
        source_meta = {"title": info.get("title"), "uploader": info.get("uploader"),
                       "channel": info.get("channel"), "license": info.get("license"),
                       "source_url": info.get("webpage_url") or item.meta["url"],
                       "source_video_id": info.get("id"), "extractor": info.get("extractor"),
                       "source_duration": info.get("duration"),
                       "upload_date": info.get("upload_date")}
        performance.meta.update({k: v for k, v in source_meta.items() if v is not None})
        return performance


def _ytdlp_version() -> str:
    from yt_dlp.version import __version__

    return __version__


# ---------------------------------------------------------------- CLI helpers

def parse_ytdlp_opt(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` -> (key, value); VALUE is parsed as JSON when it is JSON
    (numbers, true/false, lists, objects), else kept as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--ytdlp-opt {text!r} is not KEY=VALUE")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    return key.strip(), parsed


def add_cli_arguments(g) -> None:
    """Options of ``copdata build --source youtube`` (an argparse group)."""
    g.add_argument("--manifest", help="CSV manifest (youtube_id or url, split, crop box, ...; "
                   "playlist and channel URLs expand into their videos; see manifests/README.md)")
    g.add_argument("--cache-dir", help="download cache (default: OUT/downloads)")
    g.add_argument("--height-cap", type=number(int, 16, 8640), default=None, help="max video height to fetch")
    g.add_argument("--cookies", default=None, help="cookies.txt (Netscape format) for yt-dlp")
    g.add_argument("--rate-limit", default=None, help="download rate cap, e.g. 2M (bytes/s)")
    g.add_argument("--sleep-interval", type=number(float, 0, 3600), default=None,
                   help="seconds to sleep before each download")
    g.add_argument("--retries", type=number(int, 0, 100), default=3,
                   help="retries of transient failures (HTTP 429, network), exponential backoff")
    g.add_argument("--max-backoff", type=number(float, 0, 86400), default=120.0, help="cap of one retry delay (s)")
    g.add_argument("--proxy", default=None, help="proxy URL passed to yt-dlp")
    g.add_argument("--ytdlp-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="any other yt_dlp.YoutubeDL option (VALUE parsed as JSON); repeatable")


def source_from_args(args) -> YouTubeSource:
    """Build the source from parsed CLI arguments (``args.out`` is the output folder)."""
    if not getattr(args, "manifest", None):
        raise ManifestError("--source youtube needs --manifest FILE.csv "
                            "(see manifests/README.md)")
    try:
        extra = dict(parse_ytdlp_opt(t) for t in args.ytdlp_opt)
    except ValueError as exc:
        raise ManifestError(str(exc)) from exc
    cache = args.cache_dir or str(Path(args.out) / "downloads")
    return YouTubeSource(args.manifest, cache, height_cap=args.height_cap, cookies=args.cookies,
                         rate_limit=args.rate_limit, sleep_interval=args.sleep_interval,
                         retries=args.retries, proxy=args.proxy, ytdlp_options=extra,
                         max_backoff=args.max_backoff)
