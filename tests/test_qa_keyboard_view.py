"""Keyboards from either long side, tilted, mirrored and partial (copdata.qa.orient).

Oracle: a rendered keyboard scene (copdata.qa.synthetic, copdata.render's
88-key keyboard) turned by a known transform with OpenCV's own rotation
(cv2.getRotationMatrix2D, not the code's view_matrix) or numpy flips; the
keyboard's corners go through the same transform, and the renderer's key
boxes give the visible keys of a cut keyboard.
"""

import numpy as np
import pytest

from copdata.qa.orient import MIN_CLAIM_KEYS, detect_keyboard_view, quad_iou
from copdata.qa.stage import claims
from copdata.qa.synthetic import KeyboardScene, keyboard_scene, write_scene_video

SIZE, BOX = (960, 720), (130, 330, 830, 410)


def _corners(box):
    x0, y0, x1, y1 = box  # low-back, high-back, high-front, low-front
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)


def _turned(image, corners, tilt_deg, far_side):
    """The scene seen from the far side (turned 180 degrees) and tilted
    counter-clockwise on screen by ``tilt_deg``, and where its corners go."""
    import cv2

    w, h = SIZE
    if far_side:
        image = np.ascontiguousarray(image[::-1, ::-1])
        corners = np.stack([w - corners[:, 0], h - corners[:, 1]], 1)
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), tilt_deg, 1.0)
    image = cv2.warpAffine(image, m, SIZE, borderMode=cv2.BORDER_REPLICATE)
    return image, (m[:, :2] @ (corners - 0.5).T).T + m[:, 2] + 0.5


@pytest.mark.parametrize("tilt,far_side", [(0.0, True), (12.0, False), (-20.0, True), (20.0, False),
                                           (-7.5, False)])
def test_turned_keyboard_is_found_with_its_angle_side_and_keys(tilt, far_side):
    image, corners = _turned(keyboard_scene(SIZE, BOX, seed=3), _corners(BOX), tilt, far_side)
    found = detect_keyboard_view(image)
    assert found.flipped is far_side and not found.mirrored
    assert abs(found.angle_deg - tilt) <= 0.5
    assert quad_iou(found.quad, corners) >= 0.95
    # the low-back corner is where A0's back lies (the side is right, not only the box)
    assert np.hypot(*(np.array(found.quad[0]) - corners[0])) < 10
    assert (found.lowest_key, found.highest_key, found.keys_visible, found.partial) == (21, 108, 88, False)


@pytest.mark.parametrize("axis", [1, 0])
def test_mirrored_whole_keyboard_is_told_by_its_ends(axis):
    """A mirrored picture of a whole 88-key keyboard: the end one white key from
    the first black key is A0's, wherever it is."""
    image = np.ascontiguousarray(np.flip(keyboard_scene(SIZE, BOX, seed=5), axis=axis))
    found = detect_keyboard_view(image)
    assert found.mirrored and found.direction_from == "ends"
    assert found.flipped is (axis == 0)  # black keys below the fronts: from the far side
    assert (found.lowest_key, found.highest_key) == (21, 108)


def test_partial_keyboard_reports_its_visible_keys_and_claims_no_keyboard_view():
    size, box = (1280, 360), (40, 200, 1240, 280)
    scene = KeyboardScene(size, box, seed=4, hands=0)
    cut = 620  # columns kept from here on: the low keys leave the frame (about 45 keys stay)
    frame = scene.frame()
    frame[box[1] - 10:box[3] + 10, box[2]:] = (35, 25, 20)  # the piano's cheek block at C8's end
    image = np.ascontiguousarray(frame[:, cut:])
    found = detect_keyboard_view(image)
    key_boxes = scene.renderer.key_boxes()
    visible = sorted(p for p, (x0, _, x1, _) in key_boxes.items() if (x0 + x1) / 2 + box[0] >= cut)
    assert found.partial and found.lowest_key is None
    assert abs(found.keys_visible - len(visible)) <= 2
    assert found.highest_name == "C"  # C8: the keyboard's own end
    names = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    assert found.lowest_name in {names[p % 12] for p in visible[:3]}
    assert found.keys_visible < MIN_CLAIM_KEYS
    qa = {"keyboard_score": found.confidence, "keyboard_keys": found.keys_visible, "piano_score": 0.9}
    assert found.confidence >= 0.5 and not claims(qa, 0.5, 0.5)["keyboard"]
    assert claims(dict(qa, keyboard_keys=88), 0.5, 0.5)["keyboard"]


def test_auto_crop_turns_a_far_side_tilted_keyboard_upright(tmp_path):
    """The local source's --auto-crop strip of a far-side keyboard tilted 10
    degrees looks like the upright keyboard (low keys on the left)."""
    from copdata.sources.base import BuildSettings
    from copdata.sources.local import LocalSource

    upright = KeyboardScene(SIZE, BOX, seed=6, hands=0).frame()
    image, _ = _turned(upright, _corners(BOX), 10.0, True)
    folder = tmp_path / "videos"
    folder.mkdir()
    write_scene_video(folder / "far.mp4", [image] * 10, np.zeros(22050, np.float32), 22050)
    source = LocalSource(folder, test_fraction=0.0)
    (item,) = source.items()
    perf = source.fetch(item, BuildSettings(sample_rate=22050, clip_seconds=0.2, auto_crop=True))
    meta = perf.meta["auto_crop"]
    assert meta["flipped"] is True and abs(meta["angle_deg"] - 10.0) <= 0.5
    first = next(iter(perf.frames()))
    strip = first.to_ndarray(format="rgb24") if hasattr(first, "to_ndarray") else first
    x0, y0, x1, y1 = BOX
    assert abs(strip.shape[1] - (x1 - x0)) <= 4 and abs(strip.shape[0] - (y1 - y0)) <= 4
    import cv2

    want = upright[y0:y1, x0:x1].mean(axis=2)
    got = cv2.resize(strip, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).mean(axis=2)
    r = np.corrcoef(want.ravel(), got.ravel())[0, 1]
    r_reversed = np.corrcoef(want.ravel(), got[:, ::-1].ravel())[0, 1]
    assert r > 0.8 and r > r_reversed + 0.2, (r, r_reversed)
