"""copdata.qa.keys and copdata.qa.keyoffset: key columns, per-key presses, the per-source offset.

Oracles: keyboards drawn here with numpy whose key edges are known by
construction (white key j spans [j*W, (j+1)*W) from A0; C4 is the 24th white
key: A0, B0, then C1..B3 are 21 more), press videos drawn from notes at known
times shifted by a known offset, and laws (shifting the notes by d moves the
estimate by d; a picture change shared by every key is no press).
"""

from __future__ import annotations

import numpy as np
import pytest

from copdata.notes import Note
from copdata.qa import keyoffset as ko
from copdata.qa import keys

W = 10  # white key width (px)
H = 60
BLACK_H = 36
FPS = 25.0
WHITE_PITCHES = [p for p in range(21, 109) if p % 12 not in (1, 3, 6, 8, 10)]
BLACK_PITCHES = [p for p in range(21, 109) if p % 12 in (1, 3, 6, 8, 10)]


def black_centre(pitch: int) -> float:
    """At the boundary between its white neighbours, shifted as on a real piano."""
    return WHITE_PITCHES.index(pitch - 1) * W + W + keys.BLACK_OFFSET[pitch % 12] * W


def draw_keyboard(pressed: set[int] = frozenset(), pitches_white=WHITE_PITCHES,
                  pitches_black=BLACK_PITCHES) -> np.ndarray:
    """An upright 88-key strip (52 * W x H, grey uint8); a pressed key is drawn darker."""
    img = np.full((H, len(pitches_white) * W), 235, np.float32)
    for j, p in enumerate(pitches_white):
        if p in pressed:
            img[:, j * W + 1:(j + 1) * W] = 170
        img[:, j * W] = 90  # the gap between white keys
    for p in pitches_black:
        c = black_centre(p) - WHITE_PITCHES.index(pitches_white[0]) * W
        a, b = int(round(c - 3)), int(round(c + 3))
        img[:BLACK_H, a:b] = 90 if p in pressed else 25
    return img.astype(np.uint8)


def press_video(notes: list[Note], offset_s: float, seconds: float, seed: int = 0,
                noise: float = 3.0) -> list[np.ndarray]:
    """Frame i shows time i/FPS: a key is down from the first frame at or after
    (note start - offset_s) to its end (the audio is ``offset_s`` late)."""
    rng = np.random.default_rng(seed)
    late = offset_s if callable(offset_s) else (lambda start: offset_s)  # per note
    frames = []
    for i in range(int(seconds * FPS)):
        t = i / FPS
        down = {n.pitch for n in notes if n.start - late(n.start) <= t < n.end - late(n.start)}
        img = draw_keyboard(down).astype(np.float32) + rng.normal(0, noise, (H, 52 * W))
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def random_notes(count: int, seconds: float, seed: int = 1) -> list[Note]:
    rng = np.random.default_rng(seed)
    starts = np.sort(rng.uniform(1.5, seconds - 1.5, count))
    pitches = rng.integers(21, 109, count)
    return [Note(float(s), float(s + rng.uniform(0.15, 0.6)), int(p), 80) for s, p in zip(starts, pitches)]


@pytest.fixture(scope="module")
def columns() -> keys.KeyColumns:
    found = keys.find_key_columns([draw_keyboard()])
    assert found is not None
    return found


def test_middle_c_and_the_ends_have_their_hand_counted_columns(columns):
    assert columns.pitches[0] == 21 and columns.pitches[-1] == 108 and len(columns.pitches) == 88
    # C4 (MIDI 60) is white key 23 from A0 (0-based): A0 B0 + 3 octaves of 7
    x0, x1 = columns.column(60)
    assert abs(x0 - 230) <= 1.0 and abs(x1 - 240) <= 1.0
    assert abs(columns.column(21)[0] - 0) <= 1.0 and abs(columns.column(108)[1] - 520) <= 1.0
    # C#4 sits over the C4/D4 boundary, a little left of it (BLACK_OFFSET)
    c = sum(columns.column(61)) / 2
    assert abs(c - (240 - 0.1 * W)) <= 1.0
    assert columns.black_bottom in range(BLACK_H - 1, BLACK_H + 2)
    assert columns.column(20) is None and columns.column(109) is None


def test_black_keys_are_named_from_their_spacing_even_under_perspective():
    centres = np.array([black_centre(p) for p in BLACK_PITCHES])
    assert keys.black_phase(centres) == 10  # A#0 first
    # a camera's perspective: far keys narrower (positions squeezed to the right)
    warped = centres + 0.0008 * centres ** 2
    assert keys.black_phase(warped) == 10
    # a keyboard whose lattice starts at C#, D#, F#, G#
    for first in (25, 27, 30, 32):
        sub = np.array([black_centre(p) for p in BLACK_PITCHES if p >= first][:20])
        assert keys.black_phase(sub) == first % 12


def test_a_partial_keyboard_needs_its_octave():
    whites = [p for p in WHITE_PITCHES if 36 <= p <= 96]  # 61 keys, C2..C7
    blacks = [p for p in BLACK_PITCHES if 36 <= p <= 96]
    strip = draw_keyboard(pitches_white=whites, pitches_black=blacks)
    assert keys.find_key_columns([strip]) is None  # octave unknown
    cols = keys.find_key_columns([strip], first_black_pitch=37)
    assert cols is not None and cols.pitches[0] == 36 and cols.pitches[-1] == 96
    assert abs(cols.column(60)[0] - 14 * W) <= 1.0  # C4 is white key 14 from C2
    assert keys.find_key_columns([strip], first_black_pitch=39) is None  # D# does not fit


def test_a_black_key_needs_its_white_neighbours_boundary_a_quarter_key_inside():
    """By hand, the exact black-key centres of C2..C7 (white keys of 10 px): the
    strip ending at C7's right edge (x = 360) holds no C#7, though C#7's column
    (356.2..361.8 by the standard offset) would be two thirds inside; the
    boundary C7|D7 must be a quarter white key (2.5 px) inside: at 362 it is
    not, at 363 it is. At the low end the same: the strip starting 0 or 2 px
    before D2 holds no C#2, 3 px before it does."""
    first = WHITE_PITCHES.index(36) * W
    centres = [black_centre(p) - first for p in BLACK_PITCHES if 36 <= p <= 96]
    for width, last in ((360, 96), (362, 96), (363, 97)):
        assert keys.key_columns(centres, 37, width, H, BLACK_H).pitches[-1] == last
    from_d2 = [c - W for c in centres]  # the strip starts at D2 (C2 cut away)
    for before, lowest in ((0, 38), (2, 38), (3, 37)):
        cols = keys.key_columns([c + before for c in from_d2], 37, 350, H, BLACK_H)
        assert cols.pitches[0] == lowest


@pytest.fixture(scope="module")
def synthetic():
    seconds = 24.0
    notes = random_notes(70, seconds)
    truth = 0.137  # 3.425 frames: the audio is late
    frames = press_video(notes, truth, seconds)
    cols = keys.find_key_columns(frames[::40])
    press = ko.press_signal(frames, cols)
    return notes, truth, cols, press


def _estimate(press, cols, notes):
    curves, lags = ko.note_curves(press, cols, notes, FPS, 0.0, 1.0)
    return ko.source_key_offset(curves, lags, FPS)


def test_known_offset_of_a_fraction_of_a_frame_is_found_within_a_tenth_of_a_frame(synthetic):
    notes, truth, cols, press = synthetic
    est = _estimate(press, cols, notes)
    assert abs(est["offset_s"] - truth) * FPS <= 0.1, est
    assert est["confident"] and est["notes"] == len(notes) and est["matched"] >= 0.8 * len(notes)
    assert est["half_width_s"] <= ko.MAX_HALF_WIDTH_FRAMES / FPS and est["second_peak"] <= ko.MAX_SECOND_PEAK
    # the convenience path (key map found on the frames) gives the same
    lead = ko.source_key_offset(*ko.note_curves(press, cols, notes, FPS, 0.0, 1.0), FPS, lead_s=0.04)
    assert lead["offset_s"] == pytest.approx(est["offset_s"] - 0.04, abs=1e-4)


def test_shifting_the_notes_by_d_moves_the_estimate_by_d(synthetic):
    notes, _, cols, press = synthetic
    base = _estimate(press, cols, notes)["offset_s"]
    for d in (-0.31, 0.023, 0.2):
        moved = [Note(n.start + d, n.end + d, n.pitch, n.velocity) for n in notes]
        assert _estimate(press, cols, moved)["offset_s"] == pytest.approx(base + d, abs=0.1 / FPS)


def test_presses_of_other_keys_than_the_notes_are_never_confident(synthetic):
    notes, _, cols, press = synthetic
    for seed in range(3):
        other = [Note(n.start, n.end, int(p), n.velocity)
                 for n, p in zip(notes, np.random.default_rng(seed).integers(21, 109, len(notes)))]
        est = _estimate(press, cols, other)
        assert not est["confident"], est
    # and a video whose keys never move
    still = ko.press_signal([draw_keyboard()] * 200, cols)
    assert not _estimate(still, cols, random_notes(40, 8.0))["confident"]


def test_a_wide_bootstrap_interval_is_not_confident(synthetic):
    """Noisy notes (each start jittered by up to +-1.25 frames): the peak
    stays, its interval widens to between half a frame and one frame (a
    one-frame rule would pass it), so it is not confident."""
    notes, truth, cols, press = synthetic
    rng = np.random.default_rng(9)
    jittered = [Note(n.start + float(j), n.end, n.pitch, n.velocity)
                for n, j in zip(notes, rng.uniform(-1.25 / FPS, 1.25 / FPS, len(notes)))]
    est = _estimate(press, cols, jittered)
    assert ko.MAX_HALF_WIDTH_FRAMES < est["half_width_s"] * FPS <= 1.0, est
    assert est["second_peak"] <= ko.MAX_SECOND_PEAK and not est["confident"]


def test_too_few_notes_are_not_confident(synthetic):
    notes, truth, cols, press = synthetic
    est = _estimate(press, cols, notes[:ko.MIN_NOTES - 1])
    assert not est["confident"] and est["notes"] == ko.MIN_NOTES - 1


def test_a_change_every_key_shares_is_no_press(columns):
    dark = draw_keyboard()
    frames = [dark, np.clip(dark.astype(int) - 20, 0, 255).astype(np.uint8), dark,
              draw_keyboard({60})]
    press = ko.press_signal(frames, columns)
    assert np.allclose(press[0], 0) and np.abs(press[1]).max() < 1.0  # the whole picture darkened
    k = columns.pitches.index(60)
    assert press[3, k] > 30 and np.argmax(press[3]) == k  # only C4 changed


def test_releases_that_disagree_with_the_presses_make_it_not_confident(synthetic):
    notes, truth, cols, press = synthetic
    frames = press_video(notes, truth, 24.0)
    both = ko.key_offset(frames, notes, FPS)  # presses and releases, key map found on the frames
    assert both["confident"] and abs(both["offset_s"] - truth) * FPS <= 0.1
    assert abs(both["release_offset_s"] - truth) * FPS <= 0.2 and both["press_release_frames"] <= 0.3
    # the notes' ends 0.3 s later than the keys come up: the presses still match
    late_ends = [Note(n.start, n.end + 0.3, n.pitch, n.velocity) for n in notes]
    est = ko.key_offset(frames, late_ends, FPS, columns=cols)
    assert abs(est["offset_s"] - truth) * FPS <= 0.1
    assert est["press_release_frames"] == pytest.approx(0.3 * FPS, abs=0.3)
    assert not est["confident"]


def test_rendered_frame_timing_shows_a_press_one_frame_earlier_and_is_accounted_for():
    """A renderer that shows in frame i the keys down during [i/fps, (i+1)/fps)
    (copdata's roll convention) puts each press one frame before a camera
    would; frame_timing="rendered" reads the truth, "camera" one frame late."""
    seconds, truth = 16.0, -0.21
    notes = random_notes(50, seconds, seed=3)
    frames = []
    for i in range(int(seconds * FPS)):
        a, b = i / FPS, (i + 1) / FPS
        down = {n.pitch for n in notes if n.start - truth < b and n.end - truth > a}
        frames.append(draw_keyboard(down))
    rendered = ko.key_offset(frames, notes, FPS, frame_timing="rendered")
    camera = ko.key_offset(frames, notes, FPS)
    assert rendered["confident"] and abs(rendered["offset_s"] - truth) * FPS <= 0.1, rendered
    assert camera["offset_s"] - rendered["offset_s"] == pytest.approx(1 / FPS, abs=1e-3)
    with pytest.raises(ValueError, match="frame_timing"):
        ko.key_offset(frames, notes, FPS, frame_timing="snapshot")


def test_the_build_stage_lets_the_keys_decide_when_an_88_key_keyboard_is_upright():
    """measure_source_offset (what --qa-correct-offset applies) on a camera
    video of a keyboard inside a larger picture: the per-key estimate, with
    the strip estimate recorded beside it; without a second pass over the
    frames only the strip estimator runs."""
    from copdata.qa.stage import measure_source_offset

    seconds, truth, clip = 15.0, 0.29, 125
    notes = random_notes(60, seconds, seed=4)

    def frames():
        for img in press_video(notes, truth, seconds, seed=2):
            rgb = np.full((H + 60, 52 * W + 40, 3), 70, np.uint8)
            rgb[30:30 + H, 20:20 + 52 * W] = img[..., None]
            yield rgb

    firsts = [0, clip, 2 * clip]
    source = measure_source_offset(frames(), firsts, clip, FPS, notes, key_frames=frames)
    assert source["method"] == "keys" and source["confident"], source
    assert abs(source["offset_s"] - truth) * FPS <= 0.2
    assert source["strip"]["method"] == "strip"
    plain = measure_source_offset(frames(), firsts, clip, FPS, notes)
    assert plain["method"] == "strip" and "strip" not in plain


def test_a_source_whose_offset_jumps_is_not_confident():
    """A webcam that drops 0.2 s of frames at 21 s: the notes after it are
    0.2 s later against the picture. The 10 s segments disagree, so the one
    shift for the source is not confident; without the jump it is."""
    seconds = 30.0
    notes = random_notes(100, seconds, seed=6)
    for jump, confident in ((0.2, False), (0.0, True)):
        frames = press_video(notes, lambda start: 0.1 + (jump if start >= 21.0 else 0.0), seconds)
        est = ko.key_offset(frames, notes, FPS)
        assert est["confident"] is confident and est["segments_agree"] is confident, est
        assert len(est["segments"]) == 3
        if jump:
            assert est["segments"][-1][2] - est["segments"][0][2] == pytest.approx(jump, abs=0.02)


# --- partial keyboards: the octave from the notes; the lattice from the whole item

PART_LO, PART_HI = 30, 80  # G1..G#5 visible (F#1 falls off the left end): the octave is unknown
PART_WHITE = [p for p in WHITE_PITCHES if PART_LO <= p <= PART_HI]
PART_BLACK = [p for p in BLACK_PITCHES if PART_LO <= p <= PART_HI]


def partial_video(notes: list[Note], offset_s: float, seconds: float, seed: int = 0) -> list[np.ndarray]:
    """Keys 30-80 of the keyboard (a camera that does not see the ends); frame
    i shows time i/FPS, the audio is ``offset_s`` late."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(int(seconds * FPS)):
        t = i / FPS
        down = {n.pitch for n in notes if n.start - offset_s <= t < n.end - offset_s}
        img = draw_keyboard(down, PART_WHITE, PART_BLACK).astype(np.float32)
        frames.append(np.clip(img + rng.normal(0, 3.0, img.shape), 0, 255).astype(np.uint8))
    return frames


@pytest.fixture(scope="module")
def partial():
    seconds, truth = 24.0, -0.173  # 4.325 frames: the audio is early
    rng = np.random.default_rng(11)
    starts = np.sort(rng.uniform(1.5, seconds - 1.5, 80))
    notes = [Note(float(s), float(s + rng.uniform(0.15, 0.6)), int(p), 80)
             for s, p in zip(starts, rng.integers(PART_LO + 1, PART_HI, 80))]
    frames = partial_video(notes, truth, seconds)
    found = keys.find_key_map(frames[::40])
    assert found is not None
    cols, shifts = found
    return notes, truth, cols, shifts, ko.press_signal(frames, cols), frames


def test_a_partial_keyboard_gets_its_pitch_classes_and_every_octave_it_could_be(partial):
    notes, truth, cols, shifts, press, frames = partial
    assert keys.find_key_columns(frames[::40]) is None  # octave unknown: not a full map
    assert shifts is not None and len(shifts) >= 3 and all(s % 12 == 0 for s in shifts)
    # the strip starts at G1 (31): G#1 (32) is the first black key, at the
    # G1/A1 boundary (x = W); exactly one candidate names it so
    right = [s for s in shifts if cols.shifted(s).column(32) is not None
             and abs(sum(cols.shifted(s).column(32)) / 2 - W) <= 1.0]
    assert len(right) == 1
    # C4: G1 A1 B1, then C2..B3 (14) before it: white key 17 of the strip
    assert cols.shifted(right[0]).column(60) == (pytest.approx(17 * W, abs=1.0),
                                                 pytest.approx(18 * W, abs=1.0))


def test_the_octave_is_chosen_from_the_notes_and_the_offset_found(partial):
    notes, truth, cols, shifts, press, _ = partial
    est = ko.octave_key_offset(press, cols, shifts, notes, FPS)
    assert cols.shifted(est["octave_shift"]).column(60) == (pytest.approx(17 * W, abs=1.0),
                                                            pytest.approx(18 * W, abs=1.0))
    assert abs(est["offset_s"] - truth) * FPS <= 0.1, est
    assert est["confident"] and est["octave_margin"] <= ko.MAX_OCTAVE_MARGIN
    assert len(est["octaves"]) == len(shifts)
    # the convenience path finds the partial map and chooses the same
    whole = ko.key_offset(partial[5], notes, FPS)
    assert whole["octave_shift"] == est["octave_shift"] and whole["confident"]
    assert abs(whole["offset_s"] - truth) * FPS <= 0.1


def test_notes_that_fit_no_octave_of_the_keys_are_not_confident(partial):
    notes, truth, cols, shifts, press, _ = partial
    # a fifth up: no whole-octave shift puts them on the keys that moved
    fifth = [Note(n.start, n.end, n.pitch + 7, n.velocity) for n in notes]
    assert not ko.octave_key_offset(press, cols, shifts, fifth, FPS)["confident"]
    # half the notes an octave up: two octaves fit equally well; the better one
    # alone would pass every other rule, the margin between them does not
    rng = np.random.default_rng(5)
    mixed = [Note(n.start, n.end, n.pitch + 12 * int(u), n.velocity)
             for n, u in zip(notes, rng.permutation(np.arange(len(notes)) % 2))]
    est = ko.octave_key_offset(press, cols, shifts, mixed, FPS)
    best = ko.octave_key_offset(press, cols, (est["octave_shift"],), mixed, FPS)
    assert best["confident"], best
    assert est["octave_margin"] > ko.MAX_OCTAVE_MARGIN and not est["confident"], est


def test_a_lattice_with_a_hidden_black_key_mid_keyboard_is_no_key_map():
    """A hand resting on D#4 through the whole video: the detector bridges the
    gap; naming the keys after it consecutively would put them a key off. The
    lattice is every drawn black key but D#4 and the two the strip's ends cut
    (F#1, 2 of 6 px in the strip; G#5, 3 of 6 px, which merges with the dark
    border :func:`keys.find_lattice` pads the strip with and so is no key),
    each within half a pixel (the centre of an even-width run)."""
    strip = draw_keyboard(pitches_white=PART_WHITE, pitches_black=[p for p in PART_BLACK if p != 63])
    lattice = keys.find_lattice([strip])
    first = WHITE_PITCHES.index(PART_WHITE[0]) * W
    drawn = [black_centre(p) - first for p in PART_BLACK if p not in (30, 63, 80)]
    assert [black_centre(p) - first for p in (30, 80)] == [-1.5, 290.0]  # cut by the ends
    assert lattice is not None and len(lattice.centres) == len(drawn) == len(PART_BLACK) - 3
    np.testing.assert_allclose(lattice.centres, drawn, atol=0.5)
    assert keys.key_map(lattice) is None
    assert keys.key_map(keys.find_lattice([draw_keyboard(pitches_white=PART_WHITE,
                                                         pitches_black=PART_BLACK)])) is not None


def test_hands_hiding_different_black_keys_in_different_frames_leave_the_whole_item_median_whole():
    """A hand (a dark blob over the black keys) rests on the same keys during
    the first clip and moves elsewhere later: the first clip's median misses
    keys, the best of the medians over the whole item sees all 36."""
    rng = np.random.default_rng(2)

    def with_hand(x: int) -> np.ndarray:
        img = draw_keyboard().astype(np.float32) + rng.normal(0, 3.0, (H, 52 * W))
        img[:H - 8, x:x + 9 * W] = 45  # a hand over nine white keys' width
        return np.clip(img, 0, 255).astype(np.uint8)

    first = [with_hand(150) for _ in range(5)]
    later = [with_hand(int(x)) for x in np.linspace(0, 52 * W - 9 * W, 15)]
    assert keys.find_key_columns(first) is None
    assert keys.find_key_map(first) is None or keys.find_key_map(first)[1] is not None
    cols, shifts = keys.find_key_map(first, [later])
    assert shifts is None and len(cols.pitches) == 88
    x0, x1 = cols.column(60)
    assert abs(x0 - 230) <= 1.0 and abs(x1 - 240) <= 1.0


def test_the_build_stage_chooses_a_partial_keyboards_octave_from_the_notes(partial):
    """measure_source_offset on a camera video showing keys 31-80 inside a
    larger picture: the per-key estimate with the octave chosen from the
    notes (recorded), not the strip estimator."""
    from copdata.qa.stage import measure_source_offset

    notes, truth, _, _, _, frames = partial

    def video():
        for img in frames:
            rgb = np.full((H + 60, img.shape[1] + 40, 3), 70, np.uint8)
            rgb[30:30 + H, 20:20 + img.shape[1]] = img[..., None]
            yield rgb

    clip = 200
    source = measure_source_offset(video(), [0, clip, 2 * clip], clip, FPS, notes, key_frames=video)
    assert source["method"] == "keys" and source["confident"], source
    assert "octave_shift" in source and source["octave_margin"] <= ko.MAX_OCTAVE_MARGIN
    assert abs(source["offset_s"] - truth) * FPS <= 0.2


def test_the_build_stage_finds_the_keys_on_frames_spread_over_the_whole_item():
    """A hand rests on the same keys through the first clip and moves later:
    the build's key map (copdata.qa.stage._key_map) still names all 88 keys."""
    from copdata.qa.stage import _key_map

    rng = np.random.default_rng(3)
    clip, clips = 50, 4

    def frames():
        for i in range(clip * clips):
            img = draw_keyboard().astype(np.float32) + rng.normal(0, 3.0, (H, 52 * W))
            x = 150 if i < clip else int((i * 37) % (52 * W - 9 * W))
            img[:H - 8, x:x + 9 * W] = 45
            rgb = np.full((H + 60, 52 * W + 40, 3), 70, np.uint8)
            rgb[30:30 + H, 20:20 + 52 * W] = np.clip(img, 0, 255).astype(np.uint8)[..., None]
            yield rgb

    first_clip_only = _key_map(frames(), [0], clip)
    assert first_clip_only is None or first_clip_only[2] is not None  # no whole lattice there
    box, cols, shifts = _key_map(frames(), [c * clip for c in range(clips)], clip)
    assert shifts is None and len(cols.pitches) == 88
    x0, x1 = cols.column(60)
    assert abs(x0 - 230) <= 1.5 and abs(x1 - 240) <= 1.5
