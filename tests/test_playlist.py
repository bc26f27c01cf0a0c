"""Playlist/channel rows expanded through yt-dlp (loopback), and --target-hours."""

import json

import pytest

from copdata import open_dataset
from copdata.build import build_dataset
from copdata.cli import main as cli_main
from copdata.sources.base import BuildSettings
from copdata.sources.playlist import is_playlist_url
from copdata.sources.synth import SynthSource
from copdata.sources.youtube import YouTubeSource
from test_youtube import FAST, MediaServer, encode_media


def rss_feed(title: str, urls: list[str]) -> bytes:
    items = "".join(f"<item><title>take {k}</title><enclosure url=\"{u}\" type=\"video/mp4\"/>"
                    f"<guid>take-{k}</guid></item>" for k, u in enumerate(urls))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title>'
            f"<description>piano</description>{items}</channel></rss>").encode()


def xspf_playlist(title: str, urls: list[str]) -> bytes:
    tracks = "".join(f"<track><title>take {k}</title><location>{u}</location></track>"
                     for k, u in enumerate(urls))
    return (f'<?xml version="1.0" encoding="UTF-8"?><playlist version="1" '
            f'xmlns="http://xspf.org/ns/0/"><title>{title}</title><trackList>{tracks}'
            "</trackList></playlist>").encode()


@pytest.fixture(scope="module")
def takes(tmp_path_factory):
    d = tmp_path_factory.mktemp("takes")
    return [encode_media(d / f"t{k}.mp4", seconds=2.2, width=64, height=48) for k in range(3)]


@pytest.fixture
def server(takes):
    srv = MediaServer()
    for k, body in enumerate(takes):
        srv.routes[f"/v/take{k}.mp4"] = (200, body, "video/mp4", None)
    yield srv
    srv.close()


@pytest.mark.parametrize("kind", ["rss", "xspf"])
def test_playlist_rows_expand_into_one_item_per_video(tmp_path, server, kind):
    urls = [server.url(f"/v/take{k}.mp4") for k in range(3)]
    body = rss_feed("Bach on loop", urls) if kind == "rss" else xspf_playlist("Bach on loop", urls)
    server.routes["/list"] = (200, body, "application/xml", None)
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "url,split,crop_x0,crop_y0,crop_x1,crop_y1,max_segments,expand,pianist\n"
        f"{server.url('/list')},test,0,8,64,40,1,yes,Anna\n"
        f"{urls[1]},train,,,,,,,\n",  # the same video again, as a plain row
        encoding="utf-8")
    source = YouTubeSource(manifest, tmp_path / "cache", retries=0, **FAST)
    items = source.items()
    assert len(items) == 4
    entries, repeat = items[:3], items[3]
    assert [i.meta["url"] for i in entries] == urls
    assert [i.meta["playlist_index"] for i in entries] == [1, 2, 3]
    assert {i.meta["playlist_url"] for i in entries} == {server.url("/list")}
    assert len({i.meta["playlist_id"] for i in entries}) == 1 and entries[0].meta["playlist_id"]
    assert all(i.split == "test" and i.crop == (0, 8, 64, 40) for i in entries)
    assert all(i.meta["max_segments"] == 1 and i.meta["pianist"] == "Anna" for i in entries)
    assert len({i.source_id for i in items}) == 4
    assert "repeats source id" in repeat.meta["manifest_error"]
    if kind == "rss":
        assert entries[0].meta["playlist_title"] == "Bach on loop"
    # the listing is cached: a second source lists the playlist without a request
    hits = server.hits["/list"]
    again = YouTubeSource(manifest, tmp_path / "cache", retries=0, **FAST).items()
    assert server.hits["/list"] == hits and [i.source_id for i in again] == \
        [i.source_id for i in items]
    out = tmp_path / "out"
    summary = build_dataset(source, out, BuildSettings(fps=25.0, sample_rate=16000,
                                                       clip_seconds=1.0), progress=False)
    report = json.loads((out / "report.json").read_text())
    assert [r["status"] for r in report] == ["ok", "ok", "ok", "failed"]
    assert report[3]["error_class"] == "ManifestError"
    ds = open_dataset(out)
    assert summary.clips == len(ds) == 3  # max_segments=1 per video
    assert {r.meta["playlist_id"] for r in ds.rows} == {entries[0].meta["playlist_id"]}
    assert sorted(r.meta["playlist_index"] for r in ds.rows) == [1, 2, 3]


def test_a_playlist_that_cannot_be_listed_is_one_failed_row(tmp_path, server):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"url,expand\n{server.url('/gone')},1\n"
                        f"{server.url('/v/take0.mp4')},\n", encoding="utf-8")
    source = YouTubeSource(manifest, tmp_path / "cache", retries=0, **FAST)
    gone, take = source.items()
    assert "playlist_error" in gone.meta and take.meta["url"].endswith("take0.mp4")
    out = tmp_path / "out"
    build_dataset(source, out, BuildSettings(sample_rate=16000, clip_seconds=1.0),
                  progress=False)
    report = {r["source"]: r for r in json.loads((out / "report.json").read_text())}
    failed = report[server.url("/gone")]
    assert failed["status"] == "failed" and failed["error_class"].startswith("DownloadError")
    assert "cannot list the playlist" in failed["message"]


def test_playlist_rows_cannot_take_an_id(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("url,id\nhttps://www.youtube.com/playlist?list=PLabc,mine\n",
                        encoding="utf-8")
    (item,) = YouTubeSource(manifest, tmp_path / "cache").items()
    assert "cannot take an id" in item.meta["manifest_error"]


def test_youtube_playlist_and_channel_urls_are_recognised():
    for url in ("https://www.youtube.com/playlist?list=PLx7", "https://www.youtube.com/@pianist",
                "https://www.youtube.com/@pianist/videos", "https://youtube.com/channel/UCabc",
                "https://www.youtube.com/c/SomeName", "https://www.youtube.com/user/someone"):
        assert is_playlist_url(url), url
    for url in ("https://www.youtube.com/watch?v=nwwHuxHMIpc&list=PLx7",
                "https://youtu.be/nwwHuxHMIpc", "https://example.org/list.xml",
                "https://www.youtube.com/playlist"):
        assert not is_playlist_url(url), url


def test_target_hours_stops_queueing_and_a_rerun_continues(tmp_path):
    source = SynthSource(num_items=4, item_seconds=4.2, seed=2)
    settings = BuildSettings(clip_seconds=2.0, sample_rate=16000, seed=2)
    out = tmp_path / "out"
    # 2 clips (4 s) per item: the target of 6 s is passed after the second item
    summary = build_dataset(source, out, settings, progress=False, target_hours=6.0 / 3600)
    report = json.loads((out / "report.json").read_text())
    assert [r["status"] for r in report] == ["ok", "ok", "not_queued", "not_queued"]
    assert "--target-hours" in report[2]["message"]
    assert summary.ok == 2 and summary.not_queued == 2 and summary.failed == 0
    assert summary.accepted_seconds == 8.0 and "2 items not queued" in summary.line()
    assert len(open_dataset(out)) == 4
    # a larger target resumes: the finished items count, one more is enough
    summary = build_dataset(source, out, settings, progress=False, target_hours=10.0 / 3600)
    report = json.loads((out / "report.json").read_text())
    assert [r["status"] for r in report] == ["ok", "ok", "ok", "not_queued"]
    assert summary.skipped == 2 and len(open_dataset(out)) == 6
    assert cli_main(["build", "--source", "synth", "--num-items", "4", "--item-seconds",
                     "4.2", "--seed", "2", "--clip-seconds", "2", "--sample-rate", "16000",
                     "--out", str(out), "--quiet"]) == 0
    assert len(open_dataset(out)) == 8
