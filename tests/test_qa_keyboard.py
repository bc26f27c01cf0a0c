"""Keyboard detection on rendered scenes: clutter, positions, scales, hands."""

import json

import numpy as np
import pytest

from copdata.cli import main
from copdata.qa.keyboard import detect_keyboard, iou, keyboard_score
from copdata.qa.synthetic import KeyboardScene, keyboard_scene, write_scene_video

SCENES = [  # (frame size, keyboard keys box)
    ((1280, 720), (100, 400, 1100, 520)),
    ((1280, 720), (300, 100, 820, 180)),
    ((1280, 720), (200, 500, 1240, 640)),
    ((640, 360), (20, 200, 600, 260)),
]
# PianoYT-2h geometry (manifests/pianoyt2h.csv): 1920x1080 frames
PIANOYT = [((1920, 1080), (68, 674, 1869, 863)), ((1920, 1080), (30, 451, 1249, 583))]


@pytest.mark.parametrize("size,box", SCENES + PIANOYT)
@pytest.mark.parametrize("seed", [0, 1])
def test_box_matches_the_rendered_keyboard(size, box, seed):
    found = detect_keyboard([keyboard_scene(size, box, seed=seed + 7 * box[0])])
    assert found.box is not None
    assert iou(found.box, box) >= 0.9, (found, box)
    assert found.confidence > 0.5


def test_median_over_frames_removes_moving_hands():
    size, box = (960, 540), (60, 300, 900, 380)
    frames = [KeyboardScene(size, box, seed=s, hands=3).frame() for s in range(5)]
    found = detect_keyboard(frames)
    assert iou(found.box, box) >= 0.9


def test_clutter_without_a_keyboard_scores_zero():
    rng = np.random.default_rng(0)
    frame = keyboard_scene((1280, 720), (100, 400, 1100, 520), seed=5)
    frame[380:560] = rng.integers(0, 256, (180, 1280, 3))  # the keyboard is gone
    assert keyboard_score([frame]) < 0.2
    grating = np.full((200, 800, 3), 230, np.uint8)
    grating[50:120, :, :] = np.where((np.arange(800) // 8) % 2 == 0, 20, 230)[None, :, None]
    assert keyboard_score([grating]) < 0.2  # evenly spaced bars are not black keys


def test_detect_keyboard_cli(tmp_path, capsys):
    size, box = (640, 360), (40, 200, 600, 270)
    scene = KeyboardScene(size, box, seed=3)
    video = tmp_path / "kb.mp4"
    write_scene_video(video, [scene.frame() for _ in range(20)], np.zeros(22050, np.float32), 22050)
    assert main(["detect-keyboard", str(video), "--frames", "3", "--json",
                 "--out", str(tmp_path / "box.png")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[0]
    found = json.loads(line)
    assert {"box", "confidence", "angle_deg", "flipped", "quad", "keys_visible", "partial"} <= set(found)
    assert found["flipped"] is False and abs(found["angle_deg"]) < 1.0
    assert iou(found["box"], box) >= 0.9
    assert (tmp_path / "box.png").stat().st_size > 0
    blank = tmp_path / "blank.mp4"
    write_scene_video(blank, [np.full((120, 160, 3), 128, np.uint8)] * 10, np.zeros(22050, np.float32), 22050)
    assert main(["detect-keyboard", str(blank)]) == 1
    assert "no keyboard found" in capsys.readouterr().out


def test_auto_crop_on_the_youtube_source_over_loopback(tmp_path):
    """A manifest row without a crop box gets the detected box; it is recorded."""
    import functools
    import http.server
    import threading

    from copdata.sources.base import BuildSettings
    from copdata.sources.youtube import YouTubeSource

    size, box = (640, 360), (40, 200, 600, 260)
    scene = KeyboardScene(size, box, seed=9)
    (tmp_path / "www").mkdir()
    write_scene_video(tmp_path / "www" / "kb.mp4", [scene.frame() for _ in range(40)],
                      0.1 * np.sin(np.arange(2 * 22050) * 0.05).astype(np.float32), 22050)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/kb.mp4"
        manifest = tmp_path / "m.csv"
        manifest.write_text(f"url,split\n{url},train\n", encoding="utf-8")
        source = YouTubeSource(manifest, tmp_path / "cache", backoff_base=0.001, max_backoff=0.01)
        (item,) = source.items()
        perf = source.fetch(item, BuildSettings(sample_rate=22050, clip_seconds=1.0, auto_crop=True))
    finally:
        httpd.shutdown()
        httpd.server_close()
    found = perf.meta["auto_crop"]
    assert iou(found["box"], box) >= 0.9 and found["confidence"] > 0.5
    first = next(iter(perf.frames()))
    first = first.to_ndarray(format="rgb24") if hasattr(first, "to_ndarray") else first
    x0, y0, x1, y1 = found["box"]
    assert abs(first.shape[1] - (x1 - x0)) <= 1 and abs(first.shape[0] - (y1 - y0)) <= 1


@pytest.mark.parametrize("count", [2, 3, 4, 5])
def test_median_grey_is_numpys_median_with_ties(count):
    """Oracle: np.median over every tuple of 0..3 (ties included), per pixel."""
    import itertools

    from copdata.qa.keyboard import median_grey

    values = np.array(list(itertools.product(range(4), repeat=count)), np.float32)
    frames = [values[:, k].reshape(-1, 4) for k in range(count)]
    np.testing.assert_array_equal(median_grey(frames), np.median(values, axis=1).reshape(-1, 4))
