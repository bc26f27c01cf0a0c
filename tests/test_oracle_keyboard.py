"""``copdata.qa.keyboard`` on keyboards drawn with numpy at a known place (issue 21).

Oracle: :func:`_draw` paints a top-down keyboard pixel by pixel: ``n_white``
white keys of ``w`` pixels from ``x0`` (1-pixel gap lines between them), and a
black key of ``0.6 w`` centred on the boundary after every C, D, F, G and A
(the piano's 2-3 grouping), the black keys ``black_len`` rows long from the
top ``y0``. So the box (x0, y0, x0 + n_white * w, y0 + white_len), the black
keys' centres, the white-key width and the bright share of the white-key band
are known by construction, without the detector. Laws: moving the picture
moves the box by the same amount; a mirrored picture gives the mirrored box; a
blank picture or one without the black-key pattern gives nothing.

This is the fast test selection of ``copdata/qa/keyboard.py`` for ``make mutate``.
"""

import itertools

import numpy as np
import pytest

from copdata.qa.keyboard import (KeyboardBox, _chains, _pattern_segments, _white_width,
                                 detect_keyboard, frames_grey, iou, keyboard_score, median_grey,
                                 to_grey)

BLACK_AFTER = {0, 1, 3, 4, 5}  # C, D, F, G, A (0..6 = C..B) have a black key to their right
WHITE, BLACK, GAP, BG = 235, 25, 110, 70


def _draw(shape=(200, 800), x0=50, y0=60, w=12, white_len=60, black_len=38, first_white=5,
          n_white=52, bg=BG, black=BLACK, gap=GAP):
    """A grey keyboard picture, its box and its black keys' centres. ``first_white``
    is the first white key's name (5 = A: A0..C8 is 52 white keys). The keyboard
    may leave the frame (drawn on a wider canvas, then cut)."""
    h, width = shape
    pad = n_white * w
    img = np.full((h, width + 2 * pad), bg, np.uint8)
    left = x0 + pad
    img[y0:y0 + white_len, left:left + n_white * w] = WHITE
    for k in range(1, n_white):  # the gaps run under the black keys, drawn next
        img[y0:y0 + white_len, left + k * w] = gap
    bw = int(round(0.6 * w))
    centres = []
    for k in range(n_white - 1):
        if (first_white + k) % 7 in BLACK_AFTER:
            a = left + (k + 1) * w - bw // 2
            img[y0:y0 + black_len, a:a + bw] = black
            centres.append(a + (bw - 1) / 2 - pad)
    return img[:, pad:pad + width], (x0, y0, x0 + n_white * w, y0 + white_len), centres


def _fill(box, centres, w):
    """Share of the white-key band's columns between the outermost black keys
    that are bright: all but the gap lines."""
    cols = np.arange(int(centres[0]), int(centres[-1]) + 1)
    gaps = (cols - box[0]) % w == 0
    return float(np.mean(~gaps))


# ---- whole keyboards at known places ---------------------------------------------------

@pytest.mark.parametrize("shape,x0,y0,w", [((200, 800), 50, 60, 12), ((150, 600), 20, 30, 10),
                                          ((300, 1000), 40, 100, 16), ((200, 800), 3, 60, 12)])
def test_an_88_key_keyboard_is_found_where_it_was_drawn(shape, x0, y0, w):
    img, box, centres = _draw(shape, x0=x0, y0=y0, w=w)
    found = detect_keyboard(img)
    assert found.box == box
    assert found.black_keys == 36 and len(centres) == 36
    assert found.centres == tuple(centres)
    assert found.white_key_width == w
    assert found.ends_found == (True, True)
    # every spacing is one or two white keys, 14 of 35 long: pattern 1; 36 keys >= 24: 1
    assert found.confidence == round(_fill(box, centres, w), 4)
    assert keyboard_score(img) == found.confidence


def test_a_61_key_keyboard_c_to_c():
    img, box, centres = _draw(first_white=0, n_white=36, x0=100)
    found = detect_keyboard(img)
    assert (found.box, found.black_keys, found.centres) == (box, 25, tuple(centres))
    assert found.confidence == round(_fill(box, centres, 12), 4)


def test_a_short_keyboard_scores_by_its_share_of_24_keys():
    """Two octaves C..C (15 white keys, 10 black keys): keys/24 scales the confidence."""
    img, box, centres = _draw(first_white=0, n_white=15, x0=100)
    found = detect_keyboard(img)
    assert found.box == box and found.black_keys == 10
    assert found.confidence == round(_fill(box, centres, 12) * 10 / 24, 4)


def test_rgb_frames_and_a_grey_frame_agree():
    img, box, _ = _draw()
    rgb = np.repeat(img[:, :, None], 3, axis=2)
    assert detect_keyboard(rgb) == detect_keyboard(img) == detect_keyboard(rgb[None])
    assert detect_keyboard([rgb, rgb, rgb]).box == box


# ---- laws ------------------------------------------------------------------------------

@pytest.mark.parametrize("dx,dy", [(37, 0), (0, 25), (-41, 17), (90, -40)])
def test_moving_the_picture_moves_the_box(dx, dy):
    base, box, centres = _draw(x0=60, y0=70)
    moved, moved_box, _ = _draw(x0=60 + dx, y0=70 + dy)
    a, b = detect_keyboard(base), detect_keyboard(moved)
    assert b.box == (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy) == moved_box
    assert b.centres == tuple(c + dx for c in a.centres)
    assert b.confidence == a.confidence and b.white_key_width == a.white_key_width


def test_a_mirrored_picture_gives_the_mirrored_box():
    img, box, centres = _draw(x0=50)
    width = img.shape[1]
    found = detect_keyboard(np.ascontiguousarray(img[:, ::-1]))
    assert found.box == (width - box[2], box[1], width - box[0], box[3])
    assert found.centres == tuple(width - 1 - c for c in reversed(centres))
    assert found.ends_found == (True, True)


def test_a_blank_or_patternless_picture_finds_nothing():
    for img in (np.full((120, 400), 128, np.uint8), np.zeros((120, 400, 3), np.uint8)):
        assert detect_keyboard(img) == KeyboardBox(None, 0.0)
    # a keyboard seen upside down: the white keys are above the black keys
    img, _, _ = _draw()
    assert detect_keyboard(img[::-1]).box is None


def test_a_grating_has_no_piano_grouping():
    """Bars evenly spaced (every spacing one white key): no 2-3 grouping, so nothing."""
    img = np.full((200, 800), BG, np.uint8)
    img[60:120, 50:674] = WHITE
    for x in range(62, 670, 12):
        img[60:98, x - 3:x + 4] = BLACK
    assert detect_keyboard(img).confidence == 0.0


def test_black_keys_without_contrast_are_not_keys():
    """The dark mask needs a local range of at least MIN_CONTRAST = 60 grey levels:
    black keys 60 levels below the white are seen, 59 below are not."""
    seen, box, _ = _draw(black=WHITE - 60, gap=WHITE, bg=WHITE)
    assert detect_keyboard(seen).black_keys == 36
    unseen, _, _ = _draw(black=WHITE - 59, gap=WHITE, bg=WHITE)
    assert detect_keyboard(unseen).box is None


# ---- keyboards cut by the frame or partly hidden ---------------------------------------

@pytest.mark.parametrize("x0,visible", [(-30, 35), (-6, 36), (0, 36)])
def test_a_keyboard_cut_by_the_left_edge(x0, visible):
    img, box, centres = _draw(x0=x0)
    found = detect_keyboard(img)
    inside = [c for c in centres if c >= 3]  # a black key cut to under half its width is lost
    assert found.black_keys == visible == len(inside)
    assert found.centres == tuple(inside)
    assert found.box == (0, box[1], box[2], box[3])
    assert found.ends_found == (False, True)


@pytest.mark.parametrize("x0,visible", [(800 - 624 + 30, 35), (800 - 624, 36)])
def test_a_keyboard_cut_by_the_right_edge(x0, visible):
    img, box, centres = _draw(x0=x0)
    found = detect_keyboard(img)
    assert found.black_keys == visible
    assert found.box == (box[0], box[1], 800, box[3])
    assert found.ends_found == (True, False)


def test_a_hand_over_some_black_keys_is_bridged():
    """A hand (a skin-coloured block) hides three black keys of one octave: the keys
    either side are still one keyboard, the box is the drawn one."""
    img, box, centres = _draw()
    hidden = [c for c in centres if 300 <= c <= 340]
    assert len(hidden) == 3
    img[40:110, 296:345] = 160
    found = detect_keyboard(img)
    assert found.box == box
    assert found.black_keys == 36 - len(hidden)
    assert found.centres == tuple(c for c in centres if c not in hidden)


def test_the_median_of_three_frames_removes_a_moving_hand():
    img, box, centres = _draw()
    frames = []
    for x in (100, 300, 500):
        f = img.copy()
        f[40:110, x:x + 60] = 160
        frames.append(f)
    found = detect_keyboard(frames)
    assert found.box == box and found.centres == tuple(centres)


# ---- the parts -------------------------------------------------------------------------

def test_to_grey_weights_and_shapes():
    rgb = np.zeros((1, 4, 3), np.uint8)
    rgb[0, 0] = (100, 0, 0)
    rgb[0, 1] = (0, 100, 0)
    rgb[0, 2] = (0, 0, 100)
    rgb[0, 3] = (200, 200, 200)
    np.testing.assert_allclose(to_grey(rgb)[0], [29.9, 58.7, 11.4, 200.0], rtol=1e-6)
    rgba = np.concatenate([rgb, np.full((1, 4, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(to_grey(rgba), to_grey(rgb))  # alpha is ignored
    grey = to_grey(np.array([[1, 2]], np.uint8))
    assert grey.dtype == np.float32 and grey.tolist() == [[1.0, 2.0]]
    for bad in (np.zeros((2, 2, 2)), np.zeros(4), np.zeros((1, 2, 2, 3))):
        with pytest.raises(ValueError):
            to_grey(bad)


def test_frames_grey_takes_one_frame_a_list_or_a_stack():
    a = np.full((2, 3), 10, np.uint8)
    b = np.full((2, 3), 30, np.uint8)
    c = np.full((2, 3), 20, np.uint8)
    assert frames_grey(a).tolist() == [[10.0] * 3] * 2
    assert frames_grey([a, b, c]).tolist() == [[20.0] * 3] * 2
    stack = np.stack([np.repeat(f[:, :, None], 3, axis=2) for f in (a, b, c)])
    assert frames_grey(stack).tolist() == [[20.0] * 3] * 2
    with pytest.raises(ValueError, match="no frames"):
        frames_grey([])


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 6])
def test_median_grey_is_numpys_median(count):
    """Every tuple of 0..2 per pixel (ties included), against np.median."""
    values = np.array(list(itertools.product(range(3), repeat=count)), np.float32)
    frames = [values[:, k].reshape(-1, 1).astype(np.uint8) for k in range(count)]
    out = median_grey(frames)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0], np.median(values, axis=1))


def test_median_grey_of_frames_of_different_sizes_is_an_error():
    with pytest.raises(ValueError):
        median_grey([np.zeros((2, 2))] * 2 + [np.zeros((3, 3))])


def test_chains_by_hand():
    # widths 3,3,3 spaced 6 (<= 4.5 * 3): one chain; then a width-10 run (> 2x): a break;
    # a 1-pixel run is no key; a run 40 further on is too far to chain
    starts = np.array([0, 6, 12, 18, 40, 60, 100])
    ends = np.array([3, 9, 15, 28, 41, 63, 103])
    assert _chains(starts, ends, max_width=12) == [(0, 3), (3, 4), (5, 6), (6, 7)]
    # a width above max_width is not a key
    assert _chains(starts[:3], ends[:3], max_width=2.5) == []
    # spacing exactly 4.5 widths still chains; just over does not
    assert _chains(np.array([0, 9]), np.array([2, 11]), 10) == [(0, 2)]
    assert _chains(np.array([0, 10]), np.array([2, 12]), 10) == [(0, 1), (1, 2)]
    # widths 2 and 4 (ratio exactly 2) chain; 2 and 5 do not
    assert _chains(np.array([0, 5]), np.array([2, 9]), 10) == [(0, 2)]
    assert _chains(np.array([0, 5]), np.array([2, 10]), 10) == [(0, 1), (1, 2)]


def test_pattern_segments_and_white_width_by_hand():
    w = 10.0
    # C# D# . F# G# A# . C# D# ...: spacings 1,2,1,1,2 white keys, repeated
    steps = [1, 2, 1, 1, 2] * 3
    centres = np.concatenate([[0.0], np.cumsum(steps) * w])
    (segment,) = _pattern_segments(centres)
    np.testing.assert_array_equal(segment, centres)
    assert _white_width(centres) == w  # five black keys on: an octave, 7 white keys
    # an even grating has no long spacings; one long in five is not the piano either
    assert _pattern_segments(np.arange(12) * w) == []
    assert _pattern_segments(np.cumsum([0, 1, 1, 1, 1, 2, 1, 1, 1, 1, 2]) * w) == []


def test_iou_by_hand():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # touching edges (ends exclusive)
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == 50 / 150
    assert iou((0, 0, 10, 10), (2, 3, 6, 8)) == 20 / 100
    assert iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_keyboard_box_to_and_from_dict():
    kb = KeyboardBox((1, 2, 3, 4), 0.5, 36, 12.0)
    assert kb.to_dict() == {"box": [1, 2, 3, 4], "confidence": 0.5}
    assert KeyboardBox.from_dict({"box": [1.0, 2, 3, 4], "confidence": 0.5}) == KeyboardBox((1, 2, 3, 4), 0.5)
    assert KeyboardBox(None, 0.0).to_dict() == {"box": None, "confidence": 0.0}
    assert KeyboardBox.from_dict({"box": None}) == KeyboardBox(None, 0.0)


# ---- the walk along the lattice, and the box's bottom -----------------------------------

def test_white_keys_are_searched_one_black_key_length_below():
    """White keys longer than two black-key lengths: the bottom is taken one
    black-key length below the black keys (y0 + 2 * black_len)."""
    img, box, _ = _draw(shape=(220, 800), white_len=100, black_len=30)
    assert detect_keyboard(img).box == (box[0], box[1], box[2], box[1] + 2 * 30)


def test_an_odd_black_key_length_with_long_white_keys():
    img, box, _ = _draw(shape=(220, 800), white_len=100, black_len=31)
    assert detect_keyboard(img).box == (box[0], box[1], box[2], box[1] + 2 * 31)


def test_white_keys_shorter_than_their_black_keys_length():
    img, box, _ = _draw(white_len=50, black_len=30)
    assert detect_keyboard(img).box == box


def test_a_hand_wider_than_nine_white_keys_splits_the_keyboard():
    """Twelve white keys hidden (more than MAX_BRIDGE_WHITE_KEYS = 9): the larger
    part right of the hand is the keyboard, its left end the default 1.15 white
    keys left of its first black key (the hand is bright: no end is seen)."""
    img, box, centres = _draw()
    img[40:110, 200:344] = 160
    right = [c for c in centres if c > 344]
    found = detect_keyboard(img)
    assert found.centres == tuple(right)
    assert found.box == (round(right[0] - 1.15 * 12), box[1], box[2], box[3])
    assert found.ends_found == (False, True)


def test_keys_wider_than_a_piano_keep_a_pianos_span():
    """70 white keys from C (50 black keys): the kept keys span at most 49 white
    keys from the first (A#0..A#7 on a piano): the first 36; the right end is the
    default 1.85 white keys right of the last kept key."""
    img, box, centres = _draw(shape=(200, 720), first_white=0, n_white=70, x0=5, w=10)
    found = detect_keyboard(img)
    kept = [c for c in centres if c - centres[0] <= 49.9 * 10]
    assert len(centres) == 50 and len(kept) == 36
    assert found.centres == tuple(kept)
    assert found.box == (box[0], box[1], round(kept[-1] + 1.85 * 10), box[3])
    assert found.ends_found == (True, False)


def test_a_grating_beside_a_keyboard_is_not_part_of_it():
    """Evenly spaced bars right of a three-octave keyboard, in the same rows: the
    walk stops after MAX_LATTICE_MISSES off-lattice bars."""
    img, box, centres = _draw(first_white=0, n_white=22, x0=40)
    for x in range(box[2] + 20, 790, 12):
        img[60:98, x - 3:x + 4] = BLACK
    found = detect_keyboard(img)
    assert found.box == box and found.centres == tuple(centres)


def test_of_two_keyboards_the_more_confident_wins():
    top, top_box, _ = _draw(shape=(300, 800), y0=20)
    low, low_box, _ = _draw(shape=(300, 800), y0=180, x0=100, first_white=0, n_white=15)
    img = np.where(np.arange(300)[:, None] < 160, top, low).astype(np.uint8)
    assert detect_keyboard(img).box == top_box
    img = np.where(np.arange(300)[:, None] < 160, BG, low).astype(np.uint8)
    assert detect_keyboard(img).box == low_box


def test_an_end_against_a_black_fill_is_not_the_keyboards_own():
    """Beyond the keys, a column darker than 8 grey levels on average is a fill (a
    letterbox), so the box stops there but the end is not counted as found."""
    for bg, found_ends in ((8, (False, False)), (9, (True, True))):
        img, box, _ = _draw(bg=bg)
        found = detect_keyboard(img)
        assert found.box == box and found.ends_found == found_ends


# ---- the lattice walk, by hand (white key 10 px, octave 70 px) ---------------------------

OCTAVE = (10.0, 20.0, 40.0, 50.0, 60.0)  # C#, D#, F#, G#, A# from the octave's C, in px


def _lattice(octaves, start=100.0):
    return [start + 70.0 * o + x for o in octaves for x in OCTAVE]


def _walk(xs, seed_xs, similar=None):
    from copdata.qa.keyboard import _extend_on_lattice

    xs = np.array(sorted(xs))
    seed = [int(np.flatnonzero(xs == x)[0]) for x in seed_xs]
    sim = np.ones(len(xs), bool) if similar is None else np.array([x not in similar for x in xs])
    return [float(xs[k]) for k in _extend_on_lattice(xs, sim, seed, 10.0)]


def test_the_walk_extends_a_seed_both_ways_to_the_first_and_last_key():
    keys = _lattice(range(4))
    assert _walk(keys, _lattice([1])) == keys  # index 0 and the last index are reached


def test_the_walk_bridges_nine_white_keys_but_not_more():
    """Octave 1 hidden: from octave 0's A# (160) to octave 2's C# (250) is 90 px,
    exactly MAX_BRIDGE_WHITE_KEYS white keys: bridged. One pixel more is not."""
    keys = _lattice([0, 2, 3])
    assert _walk(keys, _lattice([2])) == keys  # walking left over the gap
    assert _walk(keys, _lattice([0])) == keys  # walking right over the gap
    far = _lattice([0]) + [x + 1 for x in _lattice([2, 3])]
    assert _walk(far, [x + 1 for x in _lattice([2])]) == [x + 1 for x in _lattice([2, 3])]


def test_runs_of_another_width_are_skipped():
    keys = _lattice(range(3))
    smudges = [165.0, 173.0, 178.0, 182.0]  # not similar: skipped, however many
    assert _walk(keys + smudges, _lattice([0]), similar=smudges) == keys


def test_two_off_lattice_runs_are_passed_the_third_stops_the_walk():
    keys = _lattice(range(3))
    # after octave 0's A# (160): two runs off the lattice, then octave 1's C# (180)
    two = [165.0, 172.0]
    assert _walk(keys + two, _lattice([0])) == keys
    three = [164.0, 168.0, 174.0]
    assert _walk(keys + three, _lattice([0])) == _lattice([0])
    # the count restarts at every key: a key accepted by the walk (octave 1's A#,
    # 230), then two misses, then octave 2's C# (250)
    seed = _lattice([0]) + _lattice([1])[:4]
    assert _walk(keys + [235.0, 242.0], seed) == keys
    # ... and walking left the same
    left = [x - 70 for x in (165.0, 172.0)]  # between octave -1's A# (90) and C# (110)
    keys_left = _lattice([-1, 0, 1])
    assert _walk(keys_left + left, _lattice([1])) == keys_left
    three_left = [95.0, 98.0, 104.0]  # 25, 28 and 34 px past a C (mod 70): off the lattice
    assert _walk(keys_left + three_left, _lattice([0, 1])) == _lattice([0, 1])


def test_a_run_within_a_quarter_white_key_of_the_lattice_is_a_key():
    """LATTICE_TOLERANCE = 0.25 white keys = 2.5 px: 2.5 off is a key, 2.6 is not."""
    base = _lattice([0, 1])
    assert _walk(base + [250.0 + 2.5], base) == base + [252.5]
    assert _walk(base + [250.0 - 2.5], base) == base + [247.5]
    assert _walk(base + [250.0 + 2.6], base) == base
    assert _walk(base + [250.0 - 2.6], base) == base
    assert _walk([x + 2.5 for x in _lattice([-1])] + base, base) == [x + 2.5 for x in _lattice([-1])] + base


def test_the_walk_keeps_a_pianos_span():
    """Nine octaves of keys (45) span more than 49.9 white keys from the first:
    the window of 49.9 white keys holding the most keys is kept (36 keys)."""
    keys = _lattice(range(9))
    kept = _walk(keys, _lattice([4]))
    assert kept == [x for x in keys if x <= keys[0] + 499.0]
    assert len(kept) == 36
    # the window may start later: a stray key far left of the others is dropped
    keys = [90.0 - 70.0 * 1] + _lattice(range(1, 8))
    assert _walk(keys, _lattice([4])) == _lattice(range(1, 8))


def test_a_piano_stretched_by_perspective_keeps_its_36_keys_but_never_37():
    """A#0..A#7 (36 keys, 49 white keys of 10 px) measured 1.6 % wider (a camera's
    perspective: 498 px, 49.8 white keys) keeps every key: the span allows
    PIANO_BLACK_SPAN + SPAN_SLACK = 49.9 white keys. G#0 one white key before A#0
    (50 white keys to A#7, unstretched) is beyond a piano: 36 of the 37 are kept."""
    piano = [100.0 + 70 * o + x for o in range(7) for x in (0, 20, 30, 50, 60)] + [590.0]
    stretched = [100.0 + (x - 100.0) * 498 / 490 for x in piano]
    assert len(piano) == 36 and stretched[-1] - stretched[0] == pytest.approx(498.0)
    assert _walk(stretched, stretched[10:16]) == pytest.approx(stretched)
    with_g_sharp_0 = [90.0] + piano
    kept = _walk(with_g_sharp_0, piano[10:16])
    assert len(kept) == 36 and kept == with_g_sharp_0[:36]  # the first window of the most keys


def test_of_nearly_as_confident_readings_the_one_with_more_keys_wins():
    """By hand: a reading of 27 keys at confidence 1.0 and one of 36 at 0.96
    (within CONFIDENCE_TIE = 5 %): the 36 keys win; at 0.94 (6 % less) the more
    confident does. Equal key counts go to the confidence."""
    from copdata.qa.keyboard import _best

    part, whole = KeyboardBox((1, 0, 2, 1), 1.0, 27), KeyboardBox((0, 0, 3, 1), 0.96, 36)
    assert _best([part, whole]) == whole and _best([whole, part]) == whole
    less = KeyboardBox((0, 0, 3, 1), 0.94, 36)
    assert _best([part, less]) == part
    a, b = KeyboardBox((0, 0, 3, 1), 0.97, 30), KeyboardBox((0, 0, 4, 1), 0.99, 30)
    assert _best([a, b]) == b and _best([b, a]) == b
    assert _best([KeyboardBox(None, 0.0), KeyboardBox(None, 0.0)]) == KeyboardBox(None, 0.0)


# ---- the box and confidence from chosen keys, by hand ------------------------------------

def _keys_image(xs, key_w=9, top=60, black_len=38, white_len=60, shape=(200, 800), gap=None,
                tops=None):
    """White band rows top..top+white_len over columns xs[0]-25..xs[-1]+25, black keys
    key_w wide centred on each x (x - 4 .. x + 4), rows top..top+black_len (or from
    tops[i]); optional gap lines (value ``gap``) every 20 px between the keys."""
    from copdata.qa.keyboard import _dark_mask

    img = np.full(shape, BG, np.float32)
    x0, x1 = int(xs[0]) - 25, int(xs[-1]) + 26
    band = min(tops) - 5 if tops else top  # white above keys that start higher (contrast)
    img[band:top + white_len, x0:x1] = WHITE
    if gap is not None:
        img[top:top + white_len, x0 + 10:x1:20] = gap
    for i, x in enumerate(xs):
        a = int(x) - key_w // 2
        img[(tops[i] if tops else top):top + black_len, a:a + key_w] = BLACK
    return img, _dark_mask(img)


def _from_keys(xs, white_w=20.0, yb=(60, 98), **kw):
    from copdata.qa.keyboard import _box_from_keys

    grey, dark = _keys_image(xs, **kw)
    return _box_from_keys(grey, dark, yb[0], yb[1], np.array(xs, float), white_w)


@pytest.mark.parametrize("spacings,pattern", [
    # ratios to the 20 px white key: 0.9 short, 1.45 and 2.3 long, 2.35 dropped (a bridge):
    # 3 short + 2 long of 5: pattern 1 (long share 0.4 >= 0.3)
    ([18, 18, 29, 18, 46, 47], 1.0),
    # 0.8 is neither: 4 of 5 counted; long share 2/5
    ([16, 18, 29, 18, 46], 4 / 5),
    # one long of four: share 0.25, grouping 0.25 / 0.3
    ([18, 18, 29, 18, 47], (0.25 / 0.3)),
    # three long of five: share 0.6, still a piano's (at most 0.6)
    ([18, 29, 29, 18, 29], 1.0),
    # four long of five: a grating of double spacings, no piano
    ([29, 29, 29, 18, 29], 0.0),
])
def test_confidence_pattern_by_hand(spacings, pattern):
    xs = list(100 + np.cumsum([0] + spacings))
    found = _from_keys(xs)
    assert found.black_keys == len(xs)
    assert found.confidence == round(pattern * len(xs) / 24, 4)


def test_the_box_from_keys_finds_the_black_key_rows_from_any_band():
    """The band handed in may start above or inside the black keys: the rows are
    those where at least half the keys' centres are dark."""
    xs = list(100 + np.cumsum([0] + [18, 18, 29, 18, 29] * 5))
    for yb in ((50, 98), (70, 80), (60, 98), (97, 140)):
        assert _from_keys(xs, yb=yb).box[1::2] == (60, 120), yb
    # keys from the top row of the frame
    assert _from_keys(xs, top=0, yb=(5, 20)).box[1::2] == (0, 60)
    # half of the keys start 5 rows higher: those rows hold exactly half: still keys
    tops = [55 if i % 2 else 60 for i in range(len(xs))]
    assert _from_keys(xs, tops=tops).box[1] == 55
    tops = [55 if i % 3 == 0 else 60 for i in range(len(xs))]  # fewer than half
    assert _from_keys(xs, tops=tops).box[1] == 60


def test_no_box_where_the_keys_are_not_dark_or_have_no_white_below():
    xs = [100.0, 118.0, 136.0]
    assert _from_keys([x + 9 for x in xs], yb=(60, 98)) != KeyboardBox(None, 0.0)
    assert _from_keys(xs, yb=(130, 160)) == KeyboardBox(None, 0.0)  # rows with no key dark
    # black keys down to the frame's bottom: no white rows below them
    assert _from_keys(xs, top=162, black_len=38, white_len=38, yb=(162, 200)) == KeyboardBox(None, 0.0)


@pytest.mark.parametrize("gap,dark_gaps", [(125, True), (135, False)])
def test_bright_is_above_the_middle_of_the_bands_dark_and_bright_levels(gap, dark_gaps):
    """Gap lines of 125 grey levels are below (25 + 235) / 2 = 130, the middle of
    the band's dark and bright levels: their columns are not bright white keys;
    of 135 they are. The confidence is then the bright share alone (a piano's
    pattern, more than 24 keys)."""
    from copdata.qa.keyboard import _box_from_keys

    xs = list(100.0 + np.cumsum([0] + [18, 18, 29, 18, 29] * 5))
    grey, dark = _keys_image(xs, gap=gap)
    found = _box_from_keys(grey, dark, 60, 98, np.array(xs), 20.0)
    cols = np.arange(int(xs[0]), int(xs[-1]) + 1)
    gaps = int(np.sum(grey[110, cols] == gap))
    assert gaps > 5
    fill = 1.0 - gaps / len(cols) if dark_gaps else 1.0
    assert found.confidence == round(fill, 4)


# ---- more hand cases: the parts' boundaries ----------------------------------------------

def test_to_grey_of_colour_frames_is_float32():
    assert to_grey(np.zeros((2, 2, 3), np.uint8)).dtype == np.float32


def test_median_grey_refuses_frames_that_only_broadcast():
    """(1, 4) and (3, 4) frames broadcast but are not frames of one video."""
    frames = [np.zeros((1, 4)), np.zeros((1, 4)), np.ones((3, 4))]
    with pytest.raises(ValueError):
        median_grey(frames)


def test_chains_boundaries_by_hand():
    # a width exactly max_width is a key
    assert _chains(np.array([0, 8]), np.array([3, 11]), 3) == [(0, 2)]
    # widths 8, 8, 13 (13 > max_width 12): the chain stops before the wide run even
    # though its width ratio and spacing would chain
    assert _chains(np.array([0, 14, 28]), np.array([8, 22, 41]), 12) == [(0, 2)]


def test_pattern_segments_boundaries_by_hand():
    w = 10.0

    def seg(steps):
        return [s.tolist() for s in _pattern_segments(np.cumsum([0.0] + steps) * w)]

    # exactly one window of five spacings: six centres, kept
    assert seg([1, 2, 1, 1, 2]) == [[0.0, 10.0, 30.0, 40.0, 50.0, 70.0]]
    # a far centre after the window is not part of it
    assert seg([1, 2, 1, 1, 2, 5]) == [[0.0, 10.0, 30.0, 40.0, 50.0, 70.0]]
    # long means more than 1.3 x the shortest: 1.3 itself is short (one long: no piano)
    assert seg([1, 1.3, 1, 1, 2]) == []
    assert len(seg([1, 1.31, 1, 1, 2])) == 1
    # the longest must stay under 2.6 x the shortest
    assert seg([1, 2.6, 1, 1, 2]) == []
    assert len(seg([1, 2.59, 1, 1, 2])) == 1
    assert seg([1, 3, 1, 1, 2]) == []


def test_iou_asymmetric_boxes_by_hand():
    a, b = (2, 3, 12, 8), (1, 1, 20, 6)
    # overlap x 2..12 (10), y 3..6 (3): 30; areas 50 and 95; union 115
    assert iou(a, b) == 30 / 115 and iou(b, a) == 30 / 115
    assert iou((0, 0, 10, 10), (0, 20, 10, 30)) == 0.0  # overlap in x only
    assert iou((5, 5, 6, 6), (5, 5, 6, 6)) == 1.0  # one pixel
    assert iou((3, 4, 9, 5), (1, 2, 4, 7)) == 1 / (6 + 15 - 1)


def test_the_white_key_width_and_centres_are_rounded_to_what_is_stored():
    xs = [100.1234, 118.0, 136.0, 165.0, 183.0, 212.0]
    found = _from_keys(xs, white_w=85 / 7)
    assert found.white_key_width == 12.143
    assert found.centres == (100.12, 118.0, 136.0, 165.0, 183.0, 212.0)


@pytest.mark.parametrize("gap,dark_gaps", [(130, True), (131, False)])
def test_a_pixel_at_the_middle_level_is_not_bright(gap, dark_gaps):
    from copdata.qa.keyboard import _box_from_keys

    xs = list(100.0 + np.cumsum([0] + [18, 18, 29, 18, 29] * 5))
    grey, dark = _keys_image(xs, gap=gap)
    found = _box_from_keys(grey, dark, 60, 98, np.array(xs), 20.0)
    cols = np.arange(int(xs[0]), int(xs[-1]) + 1)
    gaps = int(np.sum(grey[110, cols] == gap))
    assert found.confidence == round(1.0 - gaps / len(cols) if dark_gaps else 1.0, 4)


def test_a_column_bright_in_half_the_white_rows_is_not_a_white_key():
    """Gap lines over 11 of the 22 white-key rows: those columns are bright in
    exactly half the rows, which is not more than half."""
    from copdata.qa.keyboard import _box_from_keys

    xs = list(100.0 + np.cumsum([0] + [18, 18, 29, 18, 29] * 5))
    grey, dark = _keys_image(xs)
    cols = np.arange(int(xs[0]) - 25 + 10, int(xs[-1]) + 26, 20)
    grey[109:120, cols] = GAP
    found = _box_from_keys(grey, dark, 60, 98, np.array(xs), 20.0)
    inside = np.arange(int(xs[0]), int(xs[-1]) + 1)
    dark_cols = int(np.isin(inside, cols).sum())
    assert found.box[3] == 120 and dark_cols > 5
    assert found.confidence == round(1.0 - dark_cols / len(inside), 4)


def test_the_white_keys_end_at_the_first_row_not_half_bright():
    from copdata.qa.keyboard import _box_from_keys

    xs = list(100.0 + np.cumsum([0] + [18, 18, 29, 18, 29] * 5 + [19]))
    # a front lip at the middle level (130) from row 112: not bright, the keys end there
    grey, dark = _keys_image(xs)
    grey[112:120, int(xs[0]) - 25:int(xs[-1]) + 26] = 130
    assert _box_from_keys(grey, dark, 60, 98, np.array(xs), 20.0).box[3] == 112
    # a row with exactly half its pixels bright (between the outermost keys) is still white
    grey, dark = _keys_image(xs)
    x0, x1 = int(xs[0]), int(xs[-1]) + 1
    assert (x1 - x0) % 2 == 0
    grey[110, x0:x1:2] = BLACK
    assert _box_from_keys(grey, dark, 60, 98, np.array(xs), 20.0).box[3] == 120


def test_an_odd_number_of_white_rows():
    img, box, _ = _draw(white_len=59)
    assert detect_keyboard(img).box == box


def test_the_keyboard_ends_one_pixel_from_the_frame():
    img, box, _ = _draw(x0=1)
    found = detect_keyboard(img)
    assert found.box == box and found.ends_found == (True, True)


def _right_end(img, last, white_to, w=12):
    """Keys' band made non-bright from ``last + white_to`` on, right of the last key."""
    img = img.copy()
    img[98:, int(last) + white_to:] = BG
    return img


@pytest.mark.parametrize("white_to,found_end", [(6, True), (5, False), (30, True), (31, False)])
def test_the_keyboards_end_is_half_to_two_and_a_half_white_keys_past_the_last_black_key(
        white_to, found_end):
    """The right end is where the first run of at least 0.3 white keys (4 px) of
    non-bright columns starts, if that is 0.5 to 2.5 white keys (6 to 30 px) past
    the last black key's centre; else the default, 1.85 white keys past it."""
    img, box, centres = _draw(bg=WHITE)  # white past the keys, up to last + white_to
    last = centres[-1]
    found = detect_keyboard(_right_end(img, last, white_to))
    if found_end:
        assert found.box[2] == int(last) + white_to and found.ends_found[1]
    else:
        assert found.box[2] == round(last + 1.85 * 12) and not found.ends_found[1]


@pytest.mark.parametrize("line,found_end", [(3, False), (4, True)])
def test_a_dark_line_ends_the_keyboard_only_when_4_px_wide(line, found_end):
    """Past the last white key (24 px right of A#7): a dark line of 3 px, then bright
    again, is not an end (0.3 white keys = 4 px are needed); 4 px is."""
    img, box, centres = _draw(bg=WHITE)
    last = centres[-1]
    img[:, box[2]:box[2] + line] = BG
    found = detect_keyboard(img)
    if found_end:
        assert found.box[2] == box[2] and found.ends_found[1]
    else:
        assert found.box[2] == round(last + 1.85 * 12) and not found.ends_found[1]


def test_the_thinnest_keyboard_black_keys_two_rows_long():
    img, box, _ = _draw(black_len=2, white_len=4)
    found = detect_keyboard(img)
    assert found.box == box and found.black_keys == 36


def test_a_keyboard_at_the_top_of_the_frame_with_keys_in_the_bottom_rows():
    """The black keys start at row 0; the frame's last rows show black keys too
    (a reflection): the keyboard's rows do not wrap around the frame."""
    img, box, _ = _draw(y0=0)
    img[-3:] = img[10:13]
    assert detect_keyboard(img).box == box


def test_more_candidate_bands_than_max_bands():
    """Six gratings of twelve bars (each a band of chained runs, fewer keys than
    the keyboard's band) below a keyboard: the MAX_BANDS = 5 bands with the most
    chained keys are tried, the keyboard's among them."""
    img, box, _ = _draw()
    for k in range(6):
        y = 130 + 7 * k
        img[y:y + 3, 100:250] = WHITE
        for x in range(106, 244, 12):
            img[y:y + 3, x - 3:x + 4] = BLACK
    assert detect_keyboard(img).box == box


@pytest.mark.parametrize("line,found_end", [(1, False), (2, True)])
def test_narrow_white_keys_need_a_two_pixel_end(line, found_end):
    """White keys of 8 px: 0.3 white keys rounds to 2 px, the least run that ends
    the keyboard."""
    img, box, centres = _draw(shape=(200, 600), x0=20, w=8, bg=WHITE)
    img[:, box[2]:box[2] + line] = BG
    found = detect_keyboard(img)
    if found_end:
        assert found.box[2] == box[2] and found.ends_found[1]
    else:
        assert found.box[2] == round(centres[-1] + 1.85 * 8) and not found.ends_found[1]


def test_a_column_bright_in_three_tenths_of_the_white_rows_is_still_bright():
    """Ten white-key rows (98..108). Past the last black key (at 650) the white
    band goes on to 660 in all rows, then to 670 in its top three rows only
    (3 of 10: still bright enough to be key; one gap line there is dark), then
    ends: the end is at 670."""
    img, box, centres = _draw(white_len=48)
    last = int(centres[-1])
    img[98:108, last + 10:] = BG
    img[98:101, last + 10:last + 20] = WHITE
    found = detect_keyboard(img)
    assert found.box[3] == 108
    assert found.box[2] == last + 20 and found.ends_found[1]


def test_the_walk_keeps_the_piano_wide_window_with_the_most_keys():
    """A lone C# (110) an octave before eight full octaves: the window of 49.9
    white keys from it holds fewer keys than the one from the next key (180)."""
    keys = [110.0] + _lattice(range(1, 9))
    assert _walk(keys, _lattice([4])) == [x for x in keys[1:] if x <= 180.0 + 499.0]


@pytest.mark.parametrize("w,found", [(34, True), (35, False)])
def test_black_keys_wider_than_a_fortieth_of_the_frame_are_not_keys(w, found):
    """In an 800-px frame a dark run of at most 800 / 40 = 20 px can be a black key:
    two octaves drawn with white keys of 34 px have black keys of round(0.6 * 34) =
    20 px and are found; of 35 px (21-px black keys) are not."""
    img, box, centres = _draw(w=w, n_white=15, first_white=0, x0=100)
    result = detect_keyboard(img)
    assert (result.box is not None) is found
    if found:
        assert set(centres) <= set(result.centres)


def test_a_grating_beside_the_upper_half_of_the_black_keys_is_another_band():
    """Bars chained to the keys in the upper half of the black-key rows only: the
    rows' longest chain jumps in extent at the half (more than BAND_EXTENT_JUMP =
    2 % of the width), so the rows form two bands; the keyboard is still found whole."""
    img, box, centres = _draw(first_white=0, n_white=36, x0=40)
    img[60:80, box[2]:790] = WHITE
    for x in range(box[2] + 12, 785, 12):
        img[60:80, x - 3:x + 4] = BLACK
    found = detect_keyboard(img)
    assert found.box == box and found.centres == tuple(centres)


# ---- a dark background beside wide black keys (issue: read as one more key) ---------------

NAMES = "CDEFGAB"  # white keys 0..6 from C


def _drawn_range(first_white, n_white, centres):
    """Keys (white and black) and the names of the lowest and highest white key, as drawn."""
    return n_white + len(centres), NAMES[first_white % 7], NAMES[(first_white + n_white - 1) % 7]


@pytest.mark.parametrize("bg", [BG, BLACK])
@pytest.mark.parametrize("first_white", range(7))
@pytest.mark.parametrize("shape,w,x0", [((200, 800), 30, 100), ((200, 800), 34, 100),
                                        ((200, 960), 36, 120), ((200, 960), 40, 120)])
def test_a_dark_background_beside_wide_black_keys_is_not_a_key(shape, w, x0, first_white, bg):
    """17 white keys with black keys of 18, 20, 22 and 24 px (round(0.6 w); at most
    a fortieth of the frame's width), on a background as dark as the room (70) or
    as the black keys (25) on both sides, from every white key's phase. The dark
    mask marks the background only as far as the local window (a twentieth of the
    width) reaches the white keys: a strip of half the window (20 or 24 px), as
    wide as a black key, next to each end. It is no key: the black keys, the key
    count and the end names are exactly as drawn, and the box's edges are within a
    quarter of a white key of the drawing (a strip read as a key moves an edge by
    about a white key or more; the end keys are named by rounding the box's edges
    to whole white keys, so a quarter key cannot change them)."""
    img, box, centres = _draw(shape=shape, w=w, x0=x0, n_white=17, first_white=first_white, bg=bg)
    assert round(0.6 * w) <= shape[1] / 40  # still narrow enough to be a black key
    found = detect_keyboard(img)
    assert found.centres == tuple(centres) and found.black_keys == len(centres)
    assert max(abs(a - b) for a, b in zip(found.box, box)) <= w / 4, (found.box, box)
    assert found.ends_found == (True, True)
    from copdata.qa.orient import detect_keyboard_view

    view = detect_keyboard_view(img, tilts=[0.0])
    assert not view.flipped and view.black_keys == len(centres)
    assert (view.keys_visible, view.lowest_name, view.highest_name) == \
        _drawn_range(first_white, 17, centres)


@pytest.mark.parametrize("first_white", [0, 2, 5])
@pytest.mark.parametrize("x0", [8, 12, 16, 20])
@pytest.mark.parametrize("w", [20, 34])
def test_a_dark_strip_between_wide_keys_and_the_frame_edge_is_not_a_key(w, x0, first_white):
    """The keyboard 8-20 px from the frame's left edge (and, mirrored, its right
    edge): the background between is dark and as wide as half a black key or
    more, and touches the frame's edge, so nothing beyond it tells it from a key
    cut by the frame. Below it there are no white keys: it is no key."""
    img, box, centres = _draw(w=w, x0=x0, n_white=17, first_white=first_white)
    width = img.shape[1]
    found = detect_keyboard(img)
    assert found.centres == tuple(centres)
    assert max(abs(a - b) for a, b in zip(found.box, box)) <= w / 4, (found.box, box)
    mirrored = detect_keyboard(np.ascontiguousarray(img[:, ::-1]))
    assert mirrored.centres == tuple(width - 1 - c for c in reversed(centres))
    mirrored_box = (width - box[2], box[1], width - box[0], box[3])
    assert max(abs(a - b) for a, b in zip(mirrored.box, mirrored_box)) <= w / 4


def test_a_run_is_a_key_only_with_bright_columns_within_half_its_width_on_both_sides():
    """By hand, one band row of 60 px: white (235) and background (70) levels.
    A key 6 px wide (columns 20-25) between white columns is kept; with 2 columns
    that are not bright after it (the white in the third, the last of the half
    width searched) still kept, with 3 not; a run
    against a flat background (no local contrast: neither dark nor bright) is
    dropped; a run at the frame's edge is judged by its inner side alone."""
    from copdata.qa.keyboard import _flanked_by_white

    def keep(row, runs):
        band = np.array([row, row], np.float32)
        starts, ends = np.array([a for a, _ in runs]), np.array([b for _, b in runs])
        kept_s, kept_e = _flanked_by_white(band, starts, ends)
        return list(zip(kept_s.tolist(), kept_e.tolist()))

    row = np.full(60, 235.0)
    row[20:26] = BLACK
    assert keep(row, [(20, 26)]) == [(20, 26)]
    row[26:28] = 120  # below the middle of the local range (25..235): not bright
    assert keep(row, [(20, 26)]) == [(20, 26)]
    row[28] = 120
    assert keep(row, [(20, 26)]) == []
    flat = np.full(60, 70.0)
    flat[30:] = 235.0
    flat[36:42] = BLACK
    # the strip 10..30 ends in the white at 30 but starts in a flat background
    assert keep(flat, [(10, 30), (36, 42)]) == [(36, 42)]
    edge = np.full(60, 235.0)
    edge[:5] = BLACK
    edge[55:] = BLACK
    assert keep(edge, [(0, 5), (55, 60)]) == [(0, 5), (55, 60)]
    flat_edge = np.full(60, 70.0)
    flat_edge[:5] = BLACK
    flat_edge[40:] = 235.0
    assert keep(flat_edge, [(0, 5)]) == []  # its inner side is flat background


def test_an_outermost_key_without_white_keys_below_is_dropped_and_counts_against():
    """By hand (white key 20 px): 26 keys in the piano's grouping, pattern 1, fill 1.
    Under the last key (x = 692) the white-key rows are made background: it is no
    key, so the box is found from the other 25, and the confidence is scaled by
    25 / 26, the share of the walk's keys that are keys."""
    from copdata.qa.keyboard import _box_from_keys

    xs = list(100.0 + np.cumsum([0] + [18, 18, 29, 18, 29] * 5))
    grey, dark = _keys_image(xs)
    whole = _box_from_keys(grey, dark, 60, 98, np.array(xs), 20.0)
    assert whole.black_keys == 26 and whole.confidence == 1.0
    last = int(xs[-1])
    grey[98:120, last - 4:last + 5] = BG
    found = _box_from_keys(grey, dark, 60, 98, np.array(xs), 20.0)
    assert found.black_keys == 25 and found.centres == tuple(xs[:-1])
    assert found.confidence == round(25 / 26, 4)
    # the box now ends where the bright white-key columns stop: at the hole
    assert found.box == (whole.box[0], 60, last - 4, 120)


@pytest.mark.parametrize("mirror", [False, True])
def test_a_whole_pianos_direction_is_told_by_its_end_spacings_not_only_its_margins(mirror):
    """An 88-key keyboard whose C8 is hidden (painted as background: the far end
    of a keyboard seen at an angle can look like this), so A#7 is one white key
    from its end like A#0: the margins cannot tell the direction. The black
    keys' spacings can: A#0 is followed by a long one (to C#1), A#7 preceded by
    a short one (from G#7). The picture, mirrored or not, is told as drawn."""
    from copdata.qa.orient import detect_keyboard_view

    img, box, centres = _draw()
    img[:, box[2] - 12:box[2]] = BG  # C8, the last white key
    if mirror:
        img = np.ascontiguousarray(img[:, ::-1])
    view = detect_keyboard_view(img, tilts=[0.0])
    assert view.black_keys == 36 and view.direction_from == "ends"
    assert view.mirrored is mirror
    # the margins alone: both ends about one white key from the outermost black key
    found = detect_keyboard(img)
    margins = (found.centres[0] - found.box[0], found.box[2] - found.centres[-1])
    assert abs(margins[0] - margins[1]) < 0.4 * 12
