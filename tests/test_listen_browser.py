"""The listening study as a rater uses it, in headless Chromium, then `copbench mos` on it."""

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mediafactory import build_synth_dataset

from browser import chrome, requested_urls
from copbench.cli import main
from copbench.listen import build_study, read_key, trial_order

SYSTEMS = ("oracle", "resynth", "silence", "noise")
QUALITY = {"oracle": 5, "resynth": 4, "silence": 2, "noise": 1}
MATCH = {"oracle": 5, "resynth": 3, "silence": 1, "noise": 1}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_synth_dataset(tmp_path_factory.mktemp("ds") / "tiny", 3, 3.0, 1.0)


class _Collector(BaseHTTPRequestHandler):
    bodies: list = []

    def do_POST(self):  # noqa: N802 (http.server API)
        length = int(self.headers.get("Content-Length", 0))
        type(self).bodies.append(self.rfile.read(length).decode("utf-8"))
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def plausible_ratings(key, rater, quality, match, seconds=None):
    """A ratings file as the page writes it for ``rater``: the page's order,
    each clip listened to the end, 20 s per trial (oracle: the page's format)."""
    seconds = seconds or key.settings["clip_seconds"]
    order = trial_order(key.test_stimuli(), key.spec["order_seed"], rater)
    rows = []
    for i, s in enumerate(order):
        system = key.stimuli[s].system
        rows.append({"trial": i + 1, "stimulus": s, "quality": quality[system],
                     "match": match[system], "play_count": 1, "listened_s": seconds,
                     "shown": f"2026-01-01T10:{i:02d}:00Z", "time": f"2026-01-01T10:{i:02d}:20Z"})
    return {"format": "copbench-ratings", "version": 1, "study_id": key.study_id,
            "study_hash": key.study_hash, "rater_id": rater, "training": [], "ratings": rows}


def _no_system_name(text: str, where: str):
    for name in SYSTEMS:
        assert not re.search(name, text, re.I), f"{name!r} appears in {where}"


def _wait(driver, script, timeout=15.0):
    end = time.time() + timeout
    while time.time() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {script}")


def _pick(driver, question, value):
    driver.find_element("css selector", f'input[name="{question}"][value="{value}"]').find_element(
        "xpath", "..").click()


def test_rater_completes_study_and_mos_reads_it(dataset, tmp_path):
    _Collector.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    study = tmp_path / "study"
    key = build_study(dataset, "resynth,silence", study, clips=2, raters_seed=7, anchor="noise",
                      post_url=f"http://127.0.0.1:{server.server_address[1]}/ratings",
                      study_id="pilot", progress=False)
    assert sorted({s.system for s in key.stimuli.values()}) == sorted(SYSTEMS)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = chrome(downloads)
    try:
        driver.get((study / "index.html").as_uri() + "?rater=alice")
        _no_system_name(driver.page_source, "the page source")
        driver.find_element("id", "start").click()
        seen, reloaded = [], False
        n_total = len(key.spec["training"]) + len(key.spec["trials"])
        for i in range(n_total):
            if driver.find_element("id", "break").is_displayed():
                driver.find_element("id", "continue").click()
            _wait(driver, "return document.getElementById('player').readyState >= 1")
            src = driver.execute_script("return document.getElementById('player').currentSrc")
            stim = re.search(r"media/(s[0-9a-f]+)\.mp4$", src).group(1)
            system = key.stimuli[stim].system
            # rating is blocked before playback
            radio = driver.find_element("css selector", 'input[name="quality"][value="3"]')
            assert not radio.is_enabled()
            _pick(driver, "quality", 3)
            assert not radio.is_selected()
            assert not driver.find_element("id", "next").is_enabled()
            if i == 0:  # jumping to the end is not listening: still blocked
                driver.find_element("id", "play").click()
                driver.execute_script("var v = document.getElementById('player');"
                                      "v.currentTime = v.duration - 0.05;")
                _wait(driver, "return document.getElementById('player').ended")
                _wait(driver, "return /whole clip/.test("
                              "document.getElementById('play-status').textContent)")
                assert not radio.is_enabled()
            driver.execute_script("var v = document.getElementById('player');"
                                  "v.defaultPlaybackRate = 4; v.playbackRate = 4;")
            driver.find_element("id", "play").click()
            _wait(driver, "return !document.getElementById('q-quality').disabled")
            assert driver.execute_script("return document.getElementById('player').ended")
            if not key.stimuli[stim].training:
                seen.append(stim)
                left = driver.find_element("id", "left").text
                assert left == f"{len(key.spec['trials']) - len(seen) + 1} left"
            _pick(driver, "quality", QUALITY[system])
            assert not driver.find_element("id", "next").is_enabled()  # both questions needed
            _pick(driver, "match", MATCH[system])
            _no_system_name(driver.execute_script("return document.documentElement.outerHTML"),
                            "the DOM")
            driver.find_element("id", "next").click()
            if len(seen) == 1 and not reloaded:  # a reload resumes where the rater was
                reloaded = True
                driver.get((study / "index.html").as_uri() + "?rater=alice")
                driver.find_element("id", "start").click()
                assert driver.find_element("id", "phase").text == \
                    f"Trial 2 of {len(key.spec['trials'])}"
        assert driver.find_element("id", "done").is_displayed()
        driver.find_element("id", "download").click()
        path = downloads / "ratings-pilot-alice.json"
        end = time.time() + 10
        while not path.is_file() and time.time() < end:
            time.sleep(0.05)
        _wait(driver, "return /sent/.test(document.getElementById('post-status').textContent)")
        urls = requested_urls(driver)
    finally:
        driver.quit()
        server.shutdown()
    ratings = json.loads(path.read_text())
    assert json.loads(_Collector.bodies[0]) == ratings  # the POST carried the same document
    assert ratings["study_hash"] == key.study_hash and ratings["rater_id"] == "alice"
    assert len(ratings["training"]) == len(key.spec["training"])
    assert seen == trial_order(key.test_stimuli(), 7, "alice")  # the seeded per-rater order
    assert [r["stimulus"] for r in ratings["ratings"]] == seen
    assert all(r["play_count"] == 1 and r["listened_s"] > 0.8 for r in ratings["ratings"])
    assert ratings["training"][0]["play_count"] == 2
    for url in urls:
        _no_system_name(url, f"a requested URL ({url})")
        assert "key" not in url.rsplit("/", 1)[-1]
    assert {u.rsplit("/", 1)[-1] for u in urls if "/media/" in u} == \
        {f"{s}.mp4" for s in list(key.stimuli)}

    results = tmp_path / "results"
    assert main(["mos", str(study), str(path), "--out", str(results)]) == 0
    for system in SYSTEMS:
        metrics = json.loads((results / f"{system}.json").read_text())["metrics"]
        assert metrics["mos_quality"]["mean"] == QUALITY[system]
        assert metrics["mos_match"]["mean"] == MATCH[system]
        assert metrics["mos_quality"]["n_raters"] == 1 and metrics["mos_quality"]["n_ratings"] == 2
    assert main(["leaderboard", str(results)]) == 0


def test_tampered_ratings_are_rejected(dataset, tmp_path, capsys):
    study = tmp_path / "study"
    key = build_study(dataset, "silence", study, clips=1, raters_seed=1, training=False,
                      progress=False)
    good = plausible_ratings(key, "bob", QUALITY, MATCH)
    eve = plausible_ratings(key, "eve", QUALITY, MATCH)
    files = {}
    for name, change in {"good": {}, "other-study": {"study_hash": "0" * 64},
                         "unplayed": {"rater_id": "eve", "ratings": [
                             dict(eve["ratings"][0], play_count=0)]}}.items():
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(dict(good, **change)))
    code = main(["mos", str(study), *map(str, files.values()), "--out", str(tmp_path / "res")])
    out = capsys.readouterr().out
    assert code == 3
    assert "REJECTED" in out and "another study" in out and "without being played" in out
    assert read_key(study).study_hash == key.study_hash
