"""The youtube source and the yt-dlp download path, against a loopback HTTP server.

Media files are encoded here with PyAV (H.264 + AAC); yt-dlp's generic
extractor handles plain file URLs (one progressive file) and DASH manifests
(separate video-only and audio-only files).
"""

from __future__ import annotations

import argparse
import http.server
import json
import threading
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest

from copdata.errors import DownloadError, ManifestError
from copdata.media.download import (FAILURE_KINDS, MARKER, DownloadOptions, classify_failure,
                                    download_media)
from copdata.sources.base import BuildSettings
from copdata.sources.youtube import (YouTubeSource, add_cli_arguments, parse_ytdlp_opt,
                                     read_manifest, source_from_args, source_id_for_url)

REPO = Path(__file__).resolve().parents[1]
FAST = dict(backoff_base=0.001, max_backoff=0.01)


def encode_media(path: Path, seconds: float = 2.0, fps: int = 25, width: int = 96,
                 height: int = 64, video: bool = True, audio: bool = True,
                 sample_rate: int = 22050) -> bytes:
    """An mp4/m4a with a moving bar (H.264) and a 440 Hz tone (AAC); returns its bytes."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as c:
        vs = c.add_stream("libx264", rate=fps) if video else None
        st = c.add_stream("aac", rate=sample_rate, layout="mono") if audio else None
        if vs is not None:
            vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
            for i in range(int(seconds * fps)):
                img = np.zeros((height, width, 3), np.uint8)
                img[:, (i * 3) % width] = 255
                for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(p)
            for p in vs.encode():
                c.mux(p)
        if st is not None:
            t = np.arange(int(seconds * sample_rate)) / sample_rate
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for k in range(0, len(tone), 1024):
                frame = av.AudioFrame.from_ndarray(tone[None, k:k + 1024], format="flt",
                                                   layout="mono")
                frame.sample_rate = sample_rate
                for p in st.encode(frame):
                    c.mux(p)
            for p in st.encode():
                c.mux(p)
    return path.read_bytes()


def dash_manifest(videos: dict[str, int], audio: str) -> bytes:
    reps = "".join(
        f'<Representation id="v{h}" codecs="avc1.64000d" width="{h * 3 // 2}" height="{h}" '
        f'bandwidth="{1000 * h}"><BaseURL>{name}</BaseURL></Representation>'
        for name, h in videos.items())
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" '
        'mediaPresentationDuration="PT2S" minBufferTime="PT1S" '
        'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011"><Period>'
        f'<AdaptationSet mimeType="video/mp4" contentType="video">{reps}</AdaptationSet>'
        '<AdaptationSet mimeType="audio/mp4" contentType="audio"><Representation id="a1" '
        'codecs="mp4a.40.2" audioSamplingRate="22050" bandwidth="64000">'
        f'<BaseURL>{audio}</BaseURL></Representation></AdaptationSet></Period></MPD>'
    ).encode()


class MediaServer:
    """Routes: path -> (status, body, content type, bytes actually sent or None).
    ``fail_first[path] = n`` answers 500 to the first n requests of that path."""

    def __init__(self):
        self.routes: dict[str, tuple[int, bytes, str, int | None]] = {}
        self.fail_first: Counter = Counter()
        self.hits: Counter = Counter()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = self.path.split("?")[0]
                server.hits[path] += 1
                if server.fail_first[path] > 0:
                    server.fail_first[path] -= 1
                    self.send_error(500)
                    return
                status, body, ctype, sent = server.routes.get(path, (404, b"", "text/plain", None))
                if status != 200:
                    self.send_error(status)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[:sent] if sent is not None else body)
                self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    return {
        "good": encode_media(d / "good.mp4", seconds=2.0),
        "long": encode_media(d / "long.mp4", seconds=3.0, width=160, height=96),
        "v64": encode_media(d / "v64.mp4", audio=False, height=64),
        "v128": encode_media(d / "v128.mp4", audio=False, width=192, height=128),
        "a": encode_media(d / "a.m4a", video=False),
    }


@pytest.fixture
def server(media):
    srv = MediaServer()
    srv.routes["/good.mp4"] = (200, media["good"], "video/mp4", None)
    yield srv
    srv.close()


def test_classify_failure_on_ytdlp_messages():
    cases = {
        "ERROR: [youtube] abcdefghijk: Video unavailable. This video has been removed by the "
        "uploader": "unavailable",
        "ERROR: [youtube] abcdefghijk: Private video. Sign in if you've been granted access "
        "to this video": "unavailable",
        "ERROR: [youtube] abcdefghijk: Video unavailable. This video is no longer available "
        "because the YouTube account associated with this video has been terminated.":
            "unavailable",
        "ERROR: [generic] e404: Unable to download webpage: HTTP Error 404: Not Found "
        "(caused by <HTTPError 404: Not Found>)": "unavailable",
        "ERROR: [youtube] abcdefghijk: Sign in to confirm your age. This video may be "
        "inappropriate for some users. Use --cookies-from-browser or --cookies": "gated",
        "ERROR: [youtube] abcdefghijk: Join this channel to get access to members-only "
        "content like this video, and other exclusive perks.": "gated",
        "ERROR: [youtube] abcdefghijk: Sign in to confirm you\u2019re not a bot. Use "
        "--cookies-from-browser or --cookies for the authentication.": "bot_check",
        "ERROR: [youtube] abcdefghijk: Sign in to confirm you're not a bot. This helps "
        "protect our community. Learn more": "bot_check",
        "ERROR: unable to download video data: HTTP Error 429: Too Many Requests": "rate_limited",
        "ERROR: [youtube] abcdefghijk: The current session has been rate-limited by YouTube "
        "for up to an hour.": "rate_limited",
        "ERROR: [generic] e500: Unable to download webpage: HTTP Error 500: Internal Server "
        "Error (caused by <HTTPError 500: Internal Server Error>)": "network",
        "ERROR: \r[download] Got error: 16725 bytes read, 16725 more expected": "network",
        "ERROR: [youtube] abcdefghijk: Unable to download API page: <urlopen error [Errno "
        "111] Connection refused> (caused by TransportError('<urlopen error [Errno 111] "
        "Connection refused>'))": "network",
        "ERROR: unable to download video data: The read operation timed out": "network",
        "ERROR: [youtube] abcdefghijk: Requested format is not available. Use --list-formats "
        "for a list of available formats": "other",
        "ERROR: something nobody anticipated": "other",
        "the downloaded file is not playable media: audio does not decode": "content",
    }
    got = {msg: classify_failure(msg) for msg in cases}
    assert got == cases
    assert set(got.values()) == set(FAILURE_KINDS)


def test_progressive_file_is_downloaded_verified_and_cached(server, tmp_path):
    url = server.url("/good.mp4")
    first = download_media(url, tmp_path / "good", DownloadOptions(**FAST))
    assert not first.from_cache and first.audio_path is None
    assert first.video_path.parent == tmp_path / "good"
    assert first.video_path.read_bytes() == server.routes["/good.mp4"][1]
    assert first.info["id"] == "good" and first.info["webpage_url"] == url
    assert (tmp_path / "good" / MARKER).is_file()
    assert not [p for p in (tmp_path / "good").iterdir() if p.name.startswith(".partial")]
    hits = server.hits["/good.mp4"]
    assert hits >= 1
    again = download_media(url, tmp_path / "good", DownloadOptions(**FAST))
    assert again.from_cache and again.video_path == first.video_path
    assert server.hits["/good.mp4"] == hits  # no HTTP request the second time
    # A different height cap is a different request: downloaded again.
    download_media(url, tmp_path / "good", DownloadOptions(height_cap=480, **FAST))
    assert server.hits["/good.mp4"] > hits


def test_dash_gives_separate_video_and_audio_under_the_height_cap(server, media, tmp_path):
    server.routes["/v64.mp4"] = (200, media["v64"], "video/mp4", None)
    server.routes["/v128.mp4"] = (200, media["v128"], "video/mp4", None)
    server.routes["/a.m4a"] = (200, media["a"], "audio/mp4", None)
    server.routes["/show.mpd"] = (200, dash_manifest({"v64.mp4": 64, "v128.mp4": 128}, "a.m4a"),
                                  "application/dash+xml", None)
    got = download_media(server.url("/show.mpd"), tmp_path / "show",
                         DownloadOptions(height_cap=100, **FAST))
    assert got.audio_path is not None and got.video_path != got.audio_path, server.hits
    assert got.video_path.read_bytes() == media["v64"]
    assert got.audio_path.read_bytes() == media["a"]
    assert server.hits["/v128.mp4"] == 0
    best = download_media(server.url("/show.mpd"), tmp_path / "best", DownloadOptions(**FAST))
    assert best.video_path.read_bytes() == media["v128"]


def test_404_is_unavailable_and_not_retried(server, tmp_path):
    with pytest.raises(DownloadError) as err:
        download_media(server.url("/gone.mp4"), tmp_path / "gone",
                       DownloadOptions(retries=3, **FAST))
    assert err.value.kind == "unavailable"
    assert err.value.error_class == "DownloadError.unavailable"
    assert "404" in str(err.value)
    assert server.hits["/gone.mp4"] == 1
    assert not (tmp_path / "gone" / MARKER).exists()


def test_server_error_is_retried_with_backoff_then_fails(server, tmp_path):
    server.fail_first["/good.mp4"] = 100
    with pytest.raises(DownloadError) as err:
        download_media(server.url("/good.mp4"), tmp_path / "e500",
                       DownloadOptions(retries=2, **FAST))
    assert err.value.kind == "network" and "500" in str(err.value)
    assert server.hits["/good.mp4"] == 3  # first try + 2 retries
    assert not (tmp_path / "e500" / MARKER).exists()


def test_transient_errors_then_success(server, tmp_path):
    server.fail_first["/good.mp4"] = 2
    got = download_media(server.url("/good.mp4"), tmp_path / "flaky",
                         DownloadOptions(retries=2, **FAST))
    assert got.video_path.read_bytes() == server.routes["/good.mp4"][1]


def test_rate_limit_is_retried_and_classified(server, tmp_path):
    server.routes["/busy.mp4"] = (429, b"", "text/plain", None)
    with pytest.raises(DownloadError) as err:
        download_media(server.url("/busy.mp4"), tmp_path / "busy",
                       DownloadOptions(retries=1, **FAST))
    assert err.value.kind == "rate_limited"
    assert server.hits["/busy.mp4"] == 2


def test_truncated_download_is_never_a_success(server, media, tmp_path):
    body = media["long"]
    server.routes["/cut.mp4"] = (200, body, "video/mp4", len(body) // 2)
    with pytest.raises(DownloadError) as err:
        download_media(server.url("/cut.mp4"), tmp_path / "cut",
                       DownloadOptions(retries=1, **FAST))
    assert err.value.kind == "network"
    entry = tmp_path / "cut"
    assert not (entry / MARKER).exists()
    assert [p.name for p in entry.iterdir()] == []  # no partial file left behind


def test_file_that_does_not_decode_is_rejected(server, media, tmp_path):
    # Complete HTTP transfer, but only the first half of the bytes: the mp4 index
    # (faststart) opens, the media data ends early.
    body = media["long"]
    server.routes["/half.mp4"] = (200, body[: len(body) // 2], "video/mp4", None)
    server.routes["/text.mp4"] = (200, b"<html>not a video</html>" * 50, "video/mp4", None)
    for name in ("half", "text"):
        with pytest.raises(DownloadError) as err:
            download_media(server.url(f"/{name}.mp4"), tmp_path / name,
                           DownloadOptions(retries=0, **FAST))
        assert err.value.kind == "content" and "not playable media" in str(err.value)
        assert not (tmp_path / name / MARKER).exists()


def test_served_corrupt_or_silent_file_is_a_content_error_not_retried(server, media, tmp_path):
    """A complete transfer of a file that is not a video with sound is the content's
    fault: classed `content`, downloaded once, and the advice says so."""
    body = media["long"]
    server.routes["/corrupt.mp4"] = (200, body[:2000] + bytes(len(body) - 2000), "video/mp4",
                                     None)
    server.routes["/noaudio.mp4"] = (200, media["v64"], "video/mp4", None)
    for name in ("corrupt", "noaudio"):
        with pytest.raises(DownloadError) as err:
            download_media(server.url(f"/{name}.mp4"), tmp_path / name,
                           DownloadOptions(retries=3, **FAST))
        assert err.value.kind == "content" and err.value.error_class == "DownloadError.content"
        assert "network" not in str(err.value) and "not retried" in str(err.value)
        assert server.hits[f"/{name}.mp4"] <= 2  # one attempt (probe + download), no retries
    assert "no audio stream" in str(err.value)


def write_manifest(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_manifest_rows_and_malformed_rows(tmp_path):
    manifest = write_manifest(tmp_path / "m.csv", (
        "# comment line\n"
        "youtube_id,url,split,crop_x0,crop_y0,crop_x1,crop_y1,start,end,max_segments,note\n"
        "nwwHuxHMIpc,,test,43,675,1883,875,5,65.5,3,hello\n"
        ",https://youtu.be/u5nBBJndN3I,train,,,,,,,,\n"
        ",http://example.org/a/b/take 1.mp4,valid,,,,,,,,\n"
        "nwwHuxHMIpc,,train,,,,,,,,\n"               # duplicate id
        "short,,train,,,,,,,,\n"                     # not an 11-char id
        "u5nBBJndN3I,http://x.org/v.mp4,train,,,,,,,,\n"  # both
        ",,train,,,,,,,,\n"                          # neither
        ",http://x.org/c.mp4,train,10,10,5,20,,,,\n"  # bad crop
        ",http://x.org/d.mp4,train,1,2,3,,,,,\n"       # partial crop
        ",http://x.org/e.mp4,train,,,,,9,3,,\n"        # end before start
        ",http://x.org/f.mp4,train,,,,,abc,,,\n"       # not a number
        ",ftp://x.org/g.mp4,train,,,,,,,,\n"           # not http
    ))
    items = read_manifest(manifest)
    assert len(items) == 12
    first = items[0]
    assert (first.source_id, first.split, first.crop) == ("nwwHuxHMIpc", "test",
                                                          (43, 675, 1883, 875))
    assert (first.start, first.end, first.meta["max_segments"]) == (5.0, 65.5, 3)
    assert first.meta["url"] == "https://www.youtube.com/watch?v=nwwHuxHMIpc"
    assert first.meta["note"] == "hello"
    assert items[1].source_id == "u5nBBJndN3I" and items[1].meta["youtube_id"] == "u5nBBJndN3I"
    assert items[2].split == "valid" and items[2].meta["url"].endswith("take 1.mp4")
    assert all(ch.isalnum() or ch in "_-" for ch in items[2].source_id)
    errors = [it.meta.get("manifest_error", "") for it in items[3:]]
    assert all(errors), errors
    for needle, err in zip(["repeats", "11-character", "exactly one", "exactly one", "0 <= x0",
                            "all of", "after start", "not a number", "http"], errors):
        assert needle in err, (needle, err)
    assert len({it.source_id for it in items}) == len(items)
    assert items[3].meta["manifest_error"].startswith("m.csv:6:")


def test_malformed_row_fails_in_fetch_not_in_items(tmp_path):
    manifest = write_manifest(tmp_path / "m.csv", "youtube_id,split\nbad,train\n")
    source = YouTubeSource(manifest, tmp_path / "cache")
    (item,) = source.items()
    with pytest.raises(ManifestError, match="11-character"):
        source.fetch(item, BuildSettings())
    assert not (tmp_path / "cache").exists()


def test_manifest_level_errors(tmp_path):
    with pytest.raises(ManifestError, match="cannot read"):
        read_manifest(tmp_path / "missing.csv")
    with pytest.raises(ManifestError, match="neither"):
        read_manifest(write_manifest(tmp_path / "h.csv", "video,split\nabc,train\n"))
    latin1 = tmp_path / "l.csv"
    latin1.write_bytes("url,split\nhttp://x.org/prélude.mp4,train\n".encode("latin-1"))
    with pytest.raises(ManifestError, match="not UTF-8"):
        read_manifest(latin1)
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffyoutube_id,split\nnwwHuxHMIpc,test\n".encode("utf-8"))
    assert [i.split for i in read_manifest(bom)] == ["test"]


def test_pianoyt2h_manifest_reproduces_the_published_test_set():
    items = read_manifest(REPO / "manifests" / "pianoyt2h.csv")
    assert len(items) == 27 and not [i for i in items if "manifest_error" in i.meta]
    test = [i for i in items if i.split == "test"]
    assert len(test) == 3 and sum(i.meta["max_segments"] for i in test) == 76
    assert all("max_segments" not in i.meta for i in items if i.split == "train")
    box = {i.source_id: i.crop for i in items}["nwwHuxHMIpc"]
    assert (box[2] - box[0], box[3] - box[1]) == (1840, 200)
    assert all(i.source_id == i.meta["youtube_id"] for i in test)


def test_url_ids_are_stable_and_distinct():
    a = source_id_for_url("http://h1/x/clip.mp4")
    assert a == source_id_for_url("http://h1/x/clip.mp4")
    assert a != source_id_for_url("http://h2/x/clip.mp4") and a.startswith("clip-")
    assert source_id_for_url("https://www.youtube.com/watch?v=nwwHuxHMIpc&t=3") == "nwwHuxHMIpc"
    assert source_id_for_url("https://www.youtube.com/shorts/nwwHuxHMIpc") == "nwwHuxHMIpc"


def test_cli_arguments_and_describe_hide_secrets(tmp_path):
    manifest = write_manifest(tmp_path / "m.csv", "youtube_id,split\nnwwHuxHMIpc,test\n")
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n.youtube.com\tTRUE\t/\tTRUE\t0\tSID\tsecret\n")
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    add_cli_arguments(parser)
    args = parser.parse_args([
        "--out", str(tmp_path / "out"), "--manifest", str(manifest), "--cookies", str(cookies),
        "--proxy", "http://alice:pw123@proxy.local:3128", "--rate-limit", "2M",
        "--sleep-interval", "1.5", "--retries", "5", "--height-cap", "720",
        "--ytdlp-opt", "socket_timeout=7", "--ytdlp-opt", 'http_headers={"Authorization": "t"}',
        "--ytdlp-opt", "extractor_args={\"youtube\": {\"player_client\": [\"web\"]}}"])
    source = source_from_args(args)
    assert source.cache_dir == tmp_path / "out" / "downloads"
    params = source.options.ytdlp_params()
    assert params["cookiefile"] == str(cookies) and params["ratelimit"] == 2 * 1024 ** 2
    assert params["sleep_interval"] == 1.5 and params["socket_timeout"] == 7
    assert params["extractor_args"] == {"youtube": {"player_client": ["web"]}}
    assert params["proxy"] == "http://alice:pw123@proxy.local:3128"
    described = json.dumps([source.describe(), source.download_settings()])
    for secret in ("secret", "pw123", "alice", str(cookies)):
        assert secret not in described
    d, dl = source.describe(), source.download_settings()
    assert dl["proxy"] == "http://proxy.local:3128" and dl["cookies"] is True
    assert dl["retries"] == 5 and "720" in d["video_format"] and d["height_cap"] == 720
    assert d["ytdlp_options"]["http_headers"] == "<redacted>"
    assert d["ytdlp_options"]["socket_timeout"] == 7
    assert parse_ytdlp_opt("noplaylist=true") == ("noplaylist", True)
    assert parse_ytdlp_opt("format_sort=res,ext") == ("format_sort", "res,ext")
    with pytest.raises(ValueError):
        parse_ytdlp_opt("no-equals")


def test_youtube_source_fetch_end_to_end(server, media, tmp_path):
    from copdata.sources import local
    assert hasattr(local, "performance_from_files")
    server.routes["/long.mp4"] = (200, media["long"], "video/mp4", None)
    manifest = write_manifest(tmp_path / "m.csv", (
        "url,split,crop_x0,crop_y0,crop_x1,crop_y1,start,max_segments\n"
        f"{server.url('/long.mp4')},test,10,20,90,60,0.5,1\n"
        f"{server.url('/nothere.mp4')},train,,,,,,\n"))
    source = YouTubeSource(manifest, tmp_path / "cache", **FAST)
    assert source.transcribes
    good, missing = source.items()
    settings = BuildSettings(fps=25.0, sample_rate=16000, clip_seconds=1.0)
    perf = source.fetch(good, settings)
    assert perf.meta["title"] == "long" and perf.meta["source_url"] == server.url("/long.mp4")
    assert perf.duration == pytest.approx(2.5, abs=0.1)
    audio = np.concatenate(list(perf.audio_blocks()))
    assert abs(len(audio) - 2.5 * 16000) < 0.1 * 16000
    frames = list(perf.frames())
    assert len(frames) >= int(perf.duration * 25)
    first = frames[0].to_ndarray(format="rgb24") if hasattr(frames[0], "to_ndarray") else frames[0]
    assert first.shape == (40, 80, 3)
    hits = server.hits["/long.mp4"]
    source.fetch(good, settings)
    assert server.hits["/long.mp4"] == hits  # cached
    with pytest.raises(DownloadError) as err:
        source.fetch(missing, settings)
    assert err.value.kind == "unavailable"


def test_build_from_a_manifest_over_loopback(server, media, tmp_path):
    """The real pipeline: good rows become clips with source metadata, a 404 and a
    malformed row become failed report rows with their class, max_segments holds."""
    from copdata import open_dataset
    from copdata.build import build_dataset

    server.routes["/long.mp4"] = (200, media["long"], "video/mp4", None)
    manifest = write_manifest(tmp_path / "m.csv", (
        "url,split,max_segments\n"
        f"{server.url('/long.mp4')},train,\n"
        f"{server.url('/good.mp4')},test,1\n"
        f"{server.url('/gone.mp4')},train,\n"
        "nope,train,\n"))
    source = YouTubeSource(manifest, tmp_path / "cache", retries=0, **FAST)
    settings = BuildSettings(fps=25.0, sample_rate=22050, clip_seconds=1.0)
    summary = build_dataset(source, tmp_path / "out", settings, progress=False)
    assert (summary.ok, summary.failed) == (2, 2)
    report = {r["source"]: r for r in json.loads((tmp_path / "out" / "report.json").read_text())}
    assert report[server.url("/gone.mp4")]["error_class"] == "DownloadError.unavailable"
    assert report["m.csv:5"]["error_class"] == "ManifestError"
    ds = open_dataset(tmp_path / "out")
    by_split = {s: ds.ids(s) for s in ("train", "test")}
    assert len(by_split["train"]) == 3 and len(by_split["test"]) == 1  # 3 s video; max 1
    assert by_split["test"][0].endswith(".00000000")
    row = ds[by_split["train"][0]].row
    assert row["meta"]["title"] == "long" and row["meta"]["source_url"] == server.url("/long.mp4")
    assert "long" in ds[by_split["train"][0]].caption  # title feeds the text steps
    assert ds.settings["source"]["name"] == "youtube"
    hits = dict(server.hits)
    again = build_dataset(YouTubeSource(manifest, tmp_path / "cache", retries=0, **FAST),
                          tmp_path / "out2", settings, progress=False)
    assert again.ok == 2 and server.hits["/long.mp4"] == hits["/long.mp4"]  # cache reused


def test_malformed_row_with_a_colliding_fallback_id_fails_alone(server, tmp_path):
    from copdata.build import build_dataset

    manifest = write_manifest(tmp_path / "m.csv", (
        "url,split,id\n"
        f"{server.url('/good.mp4')},train,row00003-nope\n"   # explicit id = row 3's fallback
        "nope,train,\n"                                      # malformed (not http)
        "ftp://x,test,row00003-nope-1\n"))                  # malformed; id taken too
    items = read_manifest(manifest)
    assert len({i.source_id for i in items}) == 3
    source = YouTubeSource(manifest, tmp_path / "cache", retries=0, **FAST)
    settings = BuildSettings(fps=25.0, sample_rate=22050, clip_seconds=1.0)
    summary = build_dataset(source, tmp_path / "out", settings, progress=False)
    assert (summary.ok, summary.failed) == (1, 2)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [r["status"] for r in report] == ["ok", "failed", "failed"]
    assert report[0]["source_id"] == "row00003-nope"


def test_published_test_segments_script(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "pianoyt2h_test_segments", REPO / "manifests" / "pianoyt2h_test_segments.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ids = mod.test_clip_ids()
    assert len(ids) == len(set(ids)) == 76
    counts = Counter(i.split(".")[0] for i in ids)
    assert counts == {"u5nBBJndN3I": 25, "nwwHuxHMIpc": 27, "ra1jf2nzJPg": 24}
    assert "nwwHuxHMIpc.00000026" in ids and "nwwHuxHMIpc.00000027" not in ids
    assert mod.main(["--write-manifest", str(tmp_path / "t.csv")]) == 0
    items = read_manifest(tmp_path / "t.csv")
    assert [i.split for i in items] == ["test"] * 3
    assert sum(i.meta["max_segments"] for i in items) == 76


def test_cli_build_youtube(server, tmp_path, capsys):
    from copdata.cli import main as cli_main

    manifest = write_manifest(tmp_path / "m.csv", f"url,split\n{server.url('/good.mp4')},train\n")
    out = tmp_path / "out"
    code = cli_main(["build", "--source", "youtube", "--manifest", str(manifest), "--out",
                     str(out), "--clip-seconds", "1", "--sample-rate", "22050", "--quiet",
                     "--retries", "0", "--ytdlp-opt", "socket_timeout=5"])
    assert code == 0, capsys.readouterr()
    assert any((out / "downloads").iterdir())  # default cache under the output folder
    settings = json.loads((out / "dataset.json").read_text())
    assert settings["source"]["ytdlp_options"] == {"socket_timeout": 5}
    assert len((out / "clips.jsonl").read_text().splitlines()) == 2
