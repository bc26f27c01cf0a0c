"""The ``youtube`` source: a CSV manifest of videos fetched with yt-dlp.

Manifest columns (see ``manifests/README.md``); lines starting with ``#`` are
comments:

* ``youtube_id`` (11 characters) **or** ``url`` (any URL yt-dlp supports,
  including a plain file URL): exactly one per row;
* ``split`` (default ``train``);
* optional keyboard crop box ``crop_x0, crop_y0, crop_x1, crop_y1`` in source
  pixels (x1, y1 exclusive), all four or none;
* optional ``start``, ``end``: seconds within the video;
* optional ``max_segments``: keep only the first N clips of the item (e.g. the
  published PianoYT-2h test set); the pipeline reads it from
  ``SourceItem.meta["max_segments"]``;
* optional ``id``: the source id to use instead of the one derived from the
  video id or URL.

A malformed row does not stop the build: :meth:`YouTubeSource.items` yields it
with the problem recorded, and :meth:`YouTubeSource.fetch` raises
:class:`ManifestError` naming the row, which the build reports as a failed row.

Downloads go through :func:`copdata.download.download_media` into
``cache_dir/<source_id>/``; decoding (crop, start/end, constant fps,
resampling) through :func:`copdata.sources.local.performance_from_files`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ..download import DownloadOptions, download_media
from ..errors import ManifestError
from ..ids import path_under, sanitize_source_id
from .base import BuildSettings, Performance, Source, SourceItem, read_manifest_text, split_problem

YOUTUBE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")
CROP_COLUMNS = ("crop_x0", "crop_y0", "crop_x1", "crop_y1")
KNOWN_COLUMNS = {"youtube_id", "url", "split", "start", "end", "max_segments", "id",
                 *CROP_COLUMNS}
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


def _number(row: dict, key: str, cast=float):
    raw = (row.get(key) or "").strip()
    if not raw:
        return None
    try:
        return cast(raw)
    except ValueError:
        raise ValueError(f"{key}={raw!r} is not a{'n integer' if cast is int else ' number'}")


def _parse_row(row: dict) -> dict:
    """Validated fields of one manifest row; raises ValueError with the reason."""
    yid = (row.get("youtube_id") or "").strip()
    url = (row.get("url") or "").strip()
    if bool(yid) == bool(url):
        raise ValueError("give exactly one of youtube_id and url")
    if yid and not YOUTUBE_ID_RE.match(yid):
        raise ValueError(f"youtube_id {yid!r} is not an 11-character YouTube id "
                         "(use the url column for other sites)")
    if url and urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"url {url!r} is not an http(s) URL")
    split = (row.get("split") or "").strip() or "train"
    if split_problem(split):
        raise ValueError(split_problem(split))
    crop_values = [_number(row, k, int) for k in CROP_COLUMNS]
    crop = None
    if any(v is not None for v in crop_values):
        if any(v is None for v in crop_values):
            raise ValueError("a crop box needs all of crop_x0, crop_y0, crop_x1, crop_y1")
        x0, y0, x1, y1 = crop_values
        if min(crop_values) < 0 or x1 <= x0 or y1 <= y0:
            raise ValueError(f"crop box {tuple(crop_values)} must have 0 <= x0 < x1, "
                             "0 <= y0 < y1 (source pixels, x1/y1 exclusive)")
        crop = (x0, y0, x1, y1)
    start, end = _number(row, "start"), _number(row, "end")
    if start is not None and start < 0:
        raise ValueError(f"start={start} is negative")
    if end is not None and end <= (start or 0.0):
        raise ValueError(f"end={end} must be after start={start or 0.0}")
    max_segments = _number(row, "max_segments", int)
    if max_segments is not None and max_segments < 1:
        raise ValueError(f"max_segments={max_segments} must be at least 1")
    explicit = (row.get("id") or "").strip()
    raw_id = explicit or yid or source_id_for_url(url)
    return {"youtube_id": yid or youtube_id_from_url(url), "url": url or WATCH_URL.format(yid),
            "split": split, "crop": crop, "start": start, "end": end,
            "max_segments": max_segments, "source_id": sanitize_source_id(raw_id),
            "label": yid or url}


def read_manifest(path: str | Path) -> list[SourceItem]:
    """Parse a manifest into items, in file order. Rows that are malformed (or
    repeat an earlier id) become items whose ``meta["manifest_error"]`` says why.
    A missing or header-less file raises :class:`ManifestError`."""
    path = Path(path)
    text = read_manifest_text(path)
    lines = [(n, line) for n, line in enumerate(text.splitlines(keepends=True), start=1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise ManifestError("manifest is empty; it needs a header row", item=str(path))
    reader = csv.DictReader([line for _, line in lines])
    columns = set(reader.fieldnames or [])
    if not columns & {"youtube_id", "url"}:
        raise ManifestError(f"header {sorted(columns)} has neither a youtube_id nor a url "
                            "column; see manifests/README.md", item=str(path))
    parsed: list[tuple[int, str, dict, dict | str]] = []  # line, where, row, fields | error
    seen: set[str] = set()
    for (line_no, _), row in zip(lines[1:], reader):
        where = f"{path.name}:{line_no}"
        try:
            if None in row:
                raise ValueError(f"row has {len(row[None])} more fields than the header")
            fields = _parse_row(row)
            if fields["source_id"] in seen:
                raise ValueError(f"source id {fields['source_id']!r} repeats an earlier row")
        except ValueError as exc:
            parsed.append((line_no, where, row, f"{where}: {exc}"))
            continue
        seen.add(fields["source_id"])
        parsed.append((line_no, where, row, fields))
    items: list[SourceItem] = []
    for line_no, where, row, fields in parsed:
        if isinstance(fields, str):  # a malformed row: a failed item with an unused id
            raw = (row.get("youtube_id") or row.get("url") or "").strip()
            sid = fallback_id(line_no, raw, seen)
            items.append(SourceItem(source_id=sid, label=where, split="train",
                                    meta={"manifest_error": fields, "manifest_row": line_no}))
            continue
        extra = {k: v for k, v in row.items()
                 if k not in KNOWN_COLUMNS and k is not None and v not in (None, "")}
        meta = {"url": fields["url"], "manifest_row": line_no, **extra}
        if fields["youtube_id"]:
            meta["youtube_id"] = fields["youtube_id"]
        if fields["max_segments"] is not None:
            meta["max_segments"] = fields["max_segments"]
        items.append(SourceItem(source_id=fields["source_id"], label=fields["label"],
                                split=fields["split"], meta=meta, crop=fields["crop"],
                                start=fields["start"], end=fields["end"]))
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

    def items(self) -> list[SourceItem]:
        return list(self._items)

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


def add_cli_arguments(parser) -> None:
    """Options of ``copdata build --source youtube`` (argparse)."""
    g = parser.add_argument_group("youtube source")
    g.add_argument("--manifest", help="CSV manifest (youtube_id or url, split, crop box, ...)")
    g.add_argument("--cache-dir", help="download cache (default: OUT/downloads)")
    g.add_argument("--height-cap", type=int, default=None, help="max video height to fetch")
    g.add_argument("--cookies", default=None, help="cookies.txt (Netscape format) for yt-dlp")
    g.add_argument("--rate-limit", default=None, help="download rate cap, e.g. 2M (bytes/s)")
    g.add_argument("--sleep-interval", type=float, default=None,
                   help="seconds to sleep before each download")
    g.add_argument("--retries", type=int, default=3,
                   help="retries of transient failures (HTTP 429, network), exponential backoff")
    g.add_argument("--max-backoff", type=float, default=120.0, help="cap of one retry delay (s)")
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
