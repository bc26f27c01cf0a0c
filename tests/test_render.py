"""Rendering for the synth source: performance generator, piano synth, keyboard video."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from copdata.steps import max_polyphony
from copdata.notes import NUM_KEYS, PIANO_LOW, Note
from copdata.render import piano
from copdata.render.keyboard import KeyboardRenderer, is_black
from copdata.render.performance import MAX_POLYPHONY, STYLES, generate_performance
from copdata.roll import render_roll

SR = 22050


def _spectrum(audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    window = np.hanning(len(audio))
    mag = np.abs(np.fft.rfft(audio * window))
    return np.fft.rfftfreq(len(audio), 1.0 / sr), mag


# -- performance generator -------------------------------------------------

@pytest.mark.parametrize("seed", [0, 1, 7, 123])
def test_performance_properties(seed):
    seconds = 40.0
    notes, meta = generate_performance(seed, seconds)
    assert len(notes) > 40
    assert all(PIANO_LOW <= n.pitch <= 108 for n in notes)
    assert all(30 <= n.velocity <= 120 for n in notes)
    assert all(0.0 <= n.start < n.end <= seconds + 1e-9 for n in notes)
    assert max_polyphony(notes) <= MAX_POLYPHONY
    # dense: the longest stretch with no sounding note is well under a second,
    # so every 10 s window holds notes
    covered = np.zeros(int(seconds * 100), dtype=bool)
    for n in notes:
        covered[int(n.start * 100):int(np.ceil(n.end * 100))] = True
    on = np.flatnonzero(covered)
    assert on[0] < 100 and on[-1] > len(covered) - 100
    assert np.diff(on).max() < 100
    # metadata is JSON and describes the sections
    json.dumps(meta)
    assert meta["seed"] == seed and set(meta["styles"]) <= set(STYLES)
    assert meta["sections"][0]["start"] == 0.0
    assert abs(meta["sections"][-1]["end"] - seconds) < 1e-3


def test_performance_deterministic_and_seed_dependent():
    a = generate_performance(5, 20.0)
    b = generate_performance(5, 20.0)
    assert a == b
    c = generate_performance(6, 20.0)
    assert c[0] != a[0]


def test_performance_styles_vary():
    styles, tempos, keys = set(), set(), set()
    for seed in range(12):
        _, meta = generate_performance(seed, 30.0)
        for section in meta["sections"]:
            styles.add(section["style"])
            tempos.add(section["tempo_bpm"])
            keys.add(section["key"])
    assert styles == set(STYLES)
    assert len(tempos) > 10 and len(keys) > 6


# -- piano synthesizer -----------------------------------------------------

def test_render_length_range_and_determinism():
    notes, _ = generate_performance(3, 8.0)
    audio = piano.render_notes(notes, SR, 8.0)
    assert audio.dtype == np.float32 and audio.shape == (8 * SR,)
    assert np.abs(audio).max() <= 1.0 and np.abs(audio).max() > 0.05
    piano._partials.cache_clear()
    piano._block_phasors.cache_clear()
    again = piano.render_notes(notes, SR, 8.0)
    assert np.array_equal(audio, again)
    # without seconds: until the last release ends
    free = piano.render_notes(notes, SR)
    end = max(n.end for n in notes)
    assert len(free) == int(round((end + piano.RELEASE_SECONDS) * SR))


@pytest.mark.parametrize("pitch,hz", [(57, 220.0), (69, 440.0), (81, 880.0)])
def test_fundamental_frequency(pitch, hz):
    audio = piano.render_notes([Note(0.0, 1.0, pitch, 80)], SR, 1.0)
    freqs, mag = _spectrum(audio, SR)
    peak = freqs[np.argmax(mag)]
    assert abs(peak - hz) < 2.0, peak


def test_partials_are_inharmonic():
    """f_n = n f0 sqrt(1 + B n^2): the 8th partial of C3 lies above 8 f0."""
    f0 = 440.0 * 2 ** ((48 - 69) / 12)
    audio = piano.render_notes([Note(0.0, 2.0, 48, 120)], SR, 2.0)
    freqs, mag = _spectrum(audio, SR)
    band = (freqs > 7.5 * f0) & (freqs < 8.5 * f0)
    peak8 = freqs[band][np.argmax(mag[band])]
    assert peak8 > 8 * f0 + 3.0
    band1 = (freqs > 0.5 * f0) & (freqs < 1.5 * f0)
    assert abs(freqs[band1][np.argmax(mag[band1])] - f0) < 1.0


def test_louder_is_brighter_and_louder():
    def stats(velocity):
        audio = piano.render_notes([Note(0.0, 0.8, 60, velocity)], SR, 0.8)
        freqs, mag = _spectrum(audio, SR)
        power = mag ** 2
        return float(np.sqrt(np.mean(audio ** 2))), float(power[freqs > 2000].sum() / power.sum())

    rms_soft, hf_soft = stats(40)
    rms_loud, hf_loud = stats(110)
    assert rms_loud > 3 * rms_soft
    assert hf_loud > 3 * hf_soft


def test_fixed_gain_not_peak_normalised():
    """A note renders to the same samples whatever else is in the file (no
    per-file normalisation), as long as the limiter is not reached."""
    alone = piano.render_notes([Note(0.5, 1.0, 64, 50)], SR, 4.0)
    with_loud = piano.render_notes([Note(0.5, 1.0, 64, 50), Note(2.5, 3.0, 40, 120)], SR, 4.0)
    cut = int(2.4 * SR)
    np.testing.assert_allclose(alone[:cut], with_loud[:cut], rtol=1e-6, atol=1e-6)  # float32 samples


def test_onsets_audible_and_release_short():
    step, dur = 0.3, 0.2
    notes = [Note(0.1 + i * step, 0.1 + i * step + dur, 60 + 2 * i, 70) for i in range(8)]
    seconds = 0.1 + 8 * step + 0.5
    audio = piano.render_notes(notes, SR, seconds).astype(np.float64)
    win = int(0.03 * SR)

    def rms(t0):
        i = int(round(t0 * SR))
        return float(np.sqrt(np.mean(audio[max(i, 0):i + win] ** 2)))

    for n in notes:
        assert rms(n.start) > 3 * rms(n.start - 0.03) + 1e-6
    # the last note is silent (< -60 dB of its onset) one release after its end
    last = notes[-1]
    assert rms(last.end + piano.RELEASE_SECONDS) < 1e-3 * rms(last.start)
    # a release that reaches past ``seconds`` is cut there
    cut = piano.render_notes([Note(0.0, 0.5, 60, 90)], SR, 0.5)
    assert len(cut) == SR // 2


def test_soft_limiter_keeps_range_and_small_signals():
    x = np.linspace(-3, 3, 1001)
    y = piano.soft_limit(x)
    assert np.all(np.abs(y) < 1.0)
    small = np.abs(x) <= piano.LIMITER_KNEE
    np.testing.assert_array_equal(y[small], x[small])
    assert np.all(np.diff(y) > 0)


def test_soundfont_errors(tmp_path: Path):
    notes = [Note(0.0, 0.5, 60, 80)]
    with pytest.raises(piano.RenderError, match="SoundFont file not found"):
        piano.render_audio(notes, SR, 1.0, soundfont=tmp_path / "missing.sf2")
    if piano.fluidsynth_available():
        pytest.skip("pyfluidsynth is installed here")
    fake = tmp_path / "piano.sf2"
    fake.write_bytes(b"RIFF0000sfbk")
    with pytest.raises(piano.RenderError, match="pyfluidsynth"):
        piano.render_audio(notes, SR, 1.0, soundfont=fake)
    # without a SoundFont the built-in piano is used
    assert piano.render_audio(notes, SR, 1.0).shape == (SR,)


# -- keyboard video --------------------------------------------------------

def test_keyboard_layout():
    kb = KeyboardRenderer()
    assert kb.height % 2 == 0 and kb.width % 2 == 0
    boxes = kb.key_boxes()
    assert sum(not is_black(p) for p in boxes) == 52 and sum(is_black(p) for p in boxes) == 36
    for p, (x0, y0, x1, y1) in boxes.items():
        assert x1 - x0 >= 4, p
    # black keys sit between their white neighbours and are shorter
    for p in boxes:
        if is_black(p):
            left, right = boxes[p - 1], boxes[p + 1]
            x0, _, x1, y1 = boxes[p]
            assert left[0] < x0 < left[2] + 1 and right[0] - 1 < x1 < right[2]
            assert y1 < left[3]
    # keys are ordered left to right by pitch
    centres = [(boxes[p][0] + boxes[p][2]) / 2 for p in sorted(boxes)]
    assert np.all(np.diff(centres) > 0)
    with pytest.raises(ValueError):
        KeyboardRenderer(width=521, height=80)


def test_keyboard_video_agrees_with_roll():
    """Frame i changes exactly the keys that ``render_roll`` marks in frame i."""
    fps, num_frames = 25.0, 40
    notes = [
        Note(0.0, 0.5, 21, 40),      # A0, white, lowest key
        Note(0.1, 0.115, 61, 90),    # C#4, black, shorter than a frame
        Note(0.3, 1.2, 60, 127),     # C4 under the C#4 black key
        Note(0.5, 0.9, 108, 1),      # C8, velocity 1 still visible
        Note(0.8, 1.6, 70, 64),      # A#4
        Note(1.0, 1.0401, 71, 100),  # B4 across a frame edge
        Note(1.5, 2.0, 22, 120),     # A#0
    ]
    kb = KeyboardRenderer(width=416, height=64)
    roll = render_roll(notes, num_frames, fps)
    idle = kb.frame(np.zeros(NUM_KEYS, dtype=np.uint8))
    frames = list(kb.frames(notes, fps, num_frames))
    assert len(frames) == num_frames
    masks = [kb.key_map == k for k in range(NUM_KEYS)]
    for i, frame in enumerate(frames):
        assert frame.shape == (64, 416, 3) and frame.dtype == np.uint8
        changed = np.any(frame != idle, axis=-1)
        for k in range(NUM_KEYS):
            pressed = roll[i, k] > 0
            if pressed:
                assert changed[masks[k]].all(), (i, k)
            else:
                assert not changed[masks[k]].any(), (i, k)
        # only key pixels ever change
        assert not changed[kb.key_map >= NUM_KEYS].any()
    assert roll.any()


def test_keyboard_velocity_changes_colour():
    kb = KeyboardRenderer()
    colours = []
    for velocity in (1, 40, 80, 127):
        active = np.zeros(NUM_KEYS, dtype=np.uint8)
        active[60 - PIANO_LOW] = velocity
        frame = kb.frame(active)
        colours.append(tuple(frame[kb.key_map == 60 - PIANO_LOW][0]))
    assert len(set(colours)) == 4
