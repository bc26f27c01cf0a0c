"""Oracles for copdata/qa/audio.py (mutation testing, issue 21).

Each test states where its expected value comes from: the module docstring's
definitions written out a second way (the note mask as "every bin nearest to a
frequency of the partial's interval", frames as "windows that overlap the
note"), a hand-worked signal (a sine on a bin centre, a constant at the silence
threshold), the field's reference code (librosa's HPSS and STFT, SciPy's median
filter and decimation, pyloudnorm's K-weighting filters) or a law (a share does
not change when the audio is scaled by a power of two).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from copdata.notes import Note
from copdata.qa import audio as qa
from copdata.render.piano import render_notes

ZERO = {"explained": 0.0, "chance": 0.0, "percussive": 0.0, "piano_score": 0.0}


# --- the note mask, written from the module docstring -------------------------

def docstring_mask(notes, n_frames, frame_seconds, freqs, tuning, detune_cents, window_seconds):
    """The mask as the module docstring defines it, computed another way: frame
    ``j`` covers ``[j * hop, j * hop + window)`` and is in a note's rows when
    that span overlaps ``[start, end + NOTE_TAIL_SECONDS)``; partial ``k`` of
    pitch ``p`` covers ``[k f0 2^-tol, k f0 sqrt(1 + B k^2) 2^tol]`` widened to
    at least one bin each side of ``k f0``, and a bin is in the mask when it is
    the nearest bin (ties to the upper one) of some frequency in that interval:
    bin ``i`` is nearest to ``[(i - 1/2) bin, (i + 1/2) bin)``."""
    bin_hz = freqs[1] - freqs[0]
    index = np.arange(len(freqs))
    frame_start = np.arange(n_frames) * frame_seconds
    mask = np.zeros((n_frames, len(freqs)), dtype=bool)
    tol = 2.0 ** (25.0 / 1200.0)  # PARTIAL_TOLERANCE_CENTS = 25
    for note in notes:
        rows = (frame_start + window_seconds > note.start) & (frame_start < note.end + 0.25)
        f0 = 440.0 * 2.0 ** ((note.pitch - 69 + tuning + detune_cents / 100.0) / 12.0)
        b = 1.3e-4 * (6e-3 / 1.3e-4) ** ((note.pitch - 21) / 87.0)  # A0 1.3e-4 .. C8 6e-3
        cols = np.zeros(len(freqs), dtype=bool)
        for k in range(1, 17):  # MAX_PARTIALS = 16
            lo, hi = k * f0 / tol, k * f0 * math.sqrt(1.0 + b * k * k) * tol
            if lo > 8000.0:  # PIANO_MAX_HZ: partials starting above it are left out
                break
            lo, hi = min(lo, k * f0 - bin_hz), max(hi, k * f0 + bin_hz)
            cols |= ((index + 0.5) * bin_hz > lo) & ((index - 0.5) * bin_hz <= hi)
        mask[np.ix_(rows, cols)] = True
    return mask


def test_mask_constants_are_the_docstrings():
    # the oracle above writes these values out; pin them so the two stay one definition
    assert (qa.PARTIAL_TOLERANCE_CENTS, qa.MAX_PARTIALS, qa.NOTE_TAIL_SECONDS) == (25.0, 16, 0.25)
    assert (qa.PIANO_MAX_HZ, qa.DETUNE_CENTS, qa.RESOLVE_BINS) == (8000.0, 50.0, 3.0)


def test_inharmonicity_runs_geometrically_from_a0_to_c8():
    # docstring: 1.3e-4 at A0 (MIDI 21) rising geometrically to 6e-3 at C8 (MIDI 108)
    assert qa.inharmonicity(21) == pytest.approx(1.3e-4, rel=1e-12)
    assert qa.inharmonicity(108) == pytest.approx(6e-3, rel=1e-12)
    ratio = (6e-3 / 1.3e-4) ** (1 / 87)
    for pitch in (22, 60, 107):
        assert qa.inharmonicity(pitch) / qa.inharmonicity(pitch - 1) == pytest.approx(ratio, rel=1e-12)


# a note beyond the clip comes first (it must be skipped, not end the loop); A0
# at t = 0 (frame 0, the one-bin widening); A4 with all 16 partials under 8 kHz;
# C7 whose partials pass 8 kHz; an A4 and an E5 overlapping in time
MASK_NOTES = [Note(9.0, 9.5, 60, 80), Note(0.0, 0.31, 21, 80), Note(1.03, 1.52, 69, 80),
              Note(2.21, 2.6, 96, 80), Note(0.5, 0.77, 76, 80), Note(2.9, 3.3, 69, 80)]


@pytest.mark.parametrize("detune", [0.0, 50.0, -50.0])
@pytest.mark.parametrize("tuning", [0.0, 0.23, -0.41])
def test_note_mask_is_the_docstrings_mask(tuning, detune):
    """The grid of a 22.05 kHz clip (8192-point FFT: 2.69 Hz bins, hop 2048)."""
    sr, n_fft = 22050, 8192
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    n_frames, hop_s, window_s = 40, n_fft / 4 / sr, n_fft / sr
    got = qa._note_mask(MASK_NOTES, n_frames, hop_s, freqs, tuning, detune, window_s)
    want = docstring_mask(MASK_NOTES, n_frames, hop_s, freqs, tuning, detune, window_s)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("bin_hz, pitch", [(0.01, 69), (0.01, 50), (20.0, 21), (7.0, 33)])
def test_note_mask_on_fine_and_coarse_grids(bin_hz, pitch):
    """A 0.01 Hz grid resolves the 25-cent edges to a hundredth of a hertz; a
    20 Hz grid puts A0's first partial in bin 0 (the widening reaches 0 Hz)."""
    freqs = np.arange(int(9000 / bin_hz)) * bin_hz
    notes = [Note(0.2, 0.4, pitch, 90)]
    got = qa._note_mask(notes, 2, 0.1, freqs, 0.11, 0.0, 0.2)
    want = docstring_mask(notes, 2, 0.1, freqs, 0.11, 0.0, 0.2)
    np.testing.assert_array_equal(got, want)
    assert got[:, 0].any() == (bin_hz == 20.0)


def _tuning_putting_a_partial_on(hz, pitch, k):
    """The tuning (semitones) at which partial ``k`` of ``pitch`` has its lower
    edge ``k f0 2^(-25/1200)`` exactly at ``hz`` in float64, computed as the
    mask computes it (found by bisection; None where no float hits it)."""
    ratio = 2.0 ** (-qa.PARTIAL_TOLERANCE_CENTS / 1200.0)

    def lower_edge(tuning):
        return k * (440.0 * 2.0 ** ((pitch - 69 + tuning + 0.0 / 100.0) / 12.0)) * ratio

    a, b = -0.5, 0.5
    if not lower_edge(a) < hz <= lower_edge(b):
        return None
    for _ in range(200):
        mid = (a + b) / 2
        a, b = (mid, b) if lower_edge(mid) < hz else (a, mid)
    return b if lower_edge(b) == hz else None


def test_a_partial_starting_exactly_at_8_khz_is_in_the_mask():
    """PIANO_MAX_HZ closes the band (keep has freqs <= 8000): a partial whose
    lower edge is exactly 8000 Hz is still a partial; only those starting above
    it are left out. Partials 7, 6, 6 of D6, E6, F6 (their lower partials end below 7.6 kHz)."""
    freqs = np.arange(11000) * 1.0
    hits = [(pitch, k, t) for pitch, k in ((86, 7), (88, 6), (89, 6))
            if (t := _tuning_putting_a_partial_on(8000.0, pitch, k)) is not None]
    assert hits, "no tuning puts these partials on 8000 Hz in this float arithmetic"
    for pitch, k, tuning in hits:
        mask = qa._note_mask([Note(0.0, 1.0, pitch, 90)], 2, 0.1, freqs, tuning, 0.0, 0.2)
        assert mask[:, 8000:8050].all(), (pitch, k)
        assert not mask[:, 7600:7700].any(), (pitch, k)  # the gap under it: those bins are partial k's


# --- the spectrogram -----------------------------------------------------------

@pytest.mark.parametrize("sr, n_fft", [(44100, 16384), (22050, 8192), (16000, 8192)])
def test_power_spectrogram_of_a_sine_on_a_bin_centre(sr, n_fft):
    """Window 0.372 s rounded to a power of two (16384 at 44.1 kHz), hop a
    quarter of it; a sine of amplitude A on bin m has power (A sum(w) / 2)^2
    there (w the Hann window)."""
    m, amp = 180, 0.5
    t = np.arange(sr) / sr
    x = amp * np.sin(2 * np.pi * m * sr / n_fft * t + 0.3)
    spec, freqs, hop_s = qa._power_spectrogram(x, sr)
    assert freqs[1] == pytest.approx(sr / n_fft, rel=1e-12)
    assert hop_s == pytest.approx(n_fft / 4 / sr, rel=1e-12)
    assert spec.shape == (1 + (sr - n_fft) // (n_fft // 4), n_fft // 2 + 1)
    assert (spec.argmax(axis=1) == m).all()
    peak = (amp * np.hanning(n_fft).sum() / 2) ** 2
    np.testing.assert_allclose(spec[:, m], peak, rtol=1e-5)


def test_power_spectrogram_pads_a_short_clip_with_zeros():
    """Shorter than one window: one frame, the clip's samples windowed by the
    start of the Hann window and zero-padded (numpy's rfft with n)."""
    sr, n_fft = 22050, 8192
    x = np.random.default_rng(1).standard_normal(3000)
    spec, freqs, _ = qa._power_spectrogram(x, sr)
    want = np.abs(np.fft.rfft(x * np.hanning(n_fft)[:3000], n=n_fft)) ** 2
    assert spec.shape == (1, n_fft // 2 + 1)
    np.testing.assert_allclose(spec[0], want, rtol=1e-9, atol=1e-12 * want.max())


# --- HPSS ------------------------------------------------------------------------

@pytest.mark.parametrize("width", [2, 3])
def test_row_median_of_rows_shorter_than_the_kernel(width):
    """Oracle: scipy.ndimage.median_filter; rows of 2 samples under kernels of
    19-31 are where NumPy's repeated symmetric padding and SciPy's reflection
    part, so they must take SciPy's filter."""
    from scipy.ndimage import median_filter

    rng = np.random.default_rng(width)
    for size in (19, 25, 31):
        spec = rng.random((3, width)).astype(np.float32)
        np.testing.assert_array_equal(qa._median_rows(spec, size),
                                      median_filter(spec, size=(1, size), mode="reflect"))
    with pytest.raises(ValueError, match="must be odd"):
        qa._median_rows(spec, 4)


@pytest.mark.parametrize("margin", [1.0, 2.0])
def test_hpss_power_is_librosas_on_sparse_power(margin):
    """Oracle: librosa.decompose.hpss. A power spectrogram that is mostly zeros
    has bins where both medians are 0: librosa splits them half and half when
    the margin is 1 and gives them to neither part otherwise."""
    import librosa

    rng = np.random.default_rng(7)
    power = (rng.random((120, 90)) * (rng.random((120, 90)) < 0.15)).astype(np.float32)
    harmonic, percussive = qa.hpss_power(power, margin=margin)
    ref_h, ref_p = librosa.decompose.hpss(power, kernel_size=(qa.HPSS_TIME_KERNEL, qa.HPSS_KERNEL),
                                          margin=margin)
    np.testing.assert_array_equal(harmonic, ref_h)
    np.testing.assert_array_equal(percussive, ref_p)


def reference_percussive_share(audio, sr):
    """The docstring's recipe from librosa and SciPy: float32 audio decimated
    by sr // 22050 (FIR, causal) when that is at least 2, |STFT|^2 with a
    2^round(log2(0.046 sr)) window and hop half of it, librosa's HPSS with
    kernels (15 frames, 31 bins) and margin 2, then P / (H + P)."""
    import librosa
    from scipy.signal import decimate

    y = np.asarray(audio, dtype=np.float32)
    step = sr // 22050
    if step >= 2:
        y = decimate(y, step, ftype="fir", zero_phase=False).astype(np.float32)
        sr = sr // step
    n_fft = 2 ** round(math.log2(0.046 * sr))
    power = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=n_fft // 2)) ** 2
    h, p = librosa.decompose.hpss(power, kernel_size=(15, 31), margin=2.0)
    return float(p.sum()) / float(h.sum() + p.sum())


def tone_and_clicks(sr, seconds=1.5, seed=0):
    t = np.arange(int(sr * seconds)) / sr
    x = 0.05 * np.sin(2 * np.pi * 523.25 * t) + 0.02 * np.sin(2 * np.pi * 1318.5 * t)
    clicks = np.zeros_like(x)
    clicks[(np.arange(0.01, seconds, 0.05) * sr).astype(int)] = 1.0
    return x + clicks + 0.002 * np.random.default_rng(seed).standard_normal(len(x))


@pytest.mark.parametrize("sr", [16000, 22050, 44100, 48000])
def test_percussive_share_is_the_librosa_recipe(sr):
    x = tone_and_clicks(sr)
    share = qa.percussive_share(x, sr)
    # float32 throughout, and float32 sums whose rounding depends on the arrays' memory order
    assert share == pytest.approx(reference_percussive_share(x, sr), rel=1e-5)
    assert 0.05 < share < 0.95  # both parts present


def test_percussive_share_laws():
    sr = 22050
    t = np.arange(sr) / sr
    sine = 0.5 * np.sin(2 * np.pi * 440 * t)
    clicks = np.zeros(sr)
    clicks[::2205] = 1.0  # ten clicks: flat spectra, one frame each
    assert qa.percussive_share(sine, sr) < 0.02
    assert qa.percussive_share(clicks, sr) > 0.9
    assert qa.percussive_share(np.zeros(sr), sr) == 0.0  # no power: no share, not 0/0
    x = tone_and_clicks(sr)
    # a power of two scales every float exactly: the share cannot move
    assert qa.percussive_share(x * 2.0 ** -20, sr) == qa.percussive_share(x, sr)


# --- piano_evidence ----------------------------------------------------------------

def reference_evidence(audio, sr, notes):
    """piano_evidence from the docstring: power spectrogram (checked above),
    kept band from the first frequency where a quarter tone spans RESOLVE_BINS
    bins up to 8 kHz inclusive, tuning by librosa.estimate_tuning, the
    docstring mask for explained (no detune) and chance (mean of +-50 cents),
    the librosa percussive share, score = clip(explained - chance) * (1 - p)."""
    import librosa

    spec, freqs, hop_s = qa._power_spectrogram(np.asarray(audio, dtype=np.float64), sr)
    bin_hz = freqs[1]
    keep = (freqs >= 3 * bin_hz / (2 ** (1 / 24) - 1)) & (freqs >= 25.0) & (freqs <= 8000.0)
    n_fft = 2 * (len(freqs) - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tuning = float(librosa.estimate_tuning(S=np.sqrt(spec.T), sr=sr, n_fft=n_fft))
    total = spec[:, keep].sum()

    def share(detune):
        mask = docstring_mask(notes, spec.shape[0], hop_s, freqs, tuning, detune, n_fft / sr)
        return spec[:, keep][mask[:, keep]].sum() / total

    explained = share(0.0)
    chance = (share(50.0) + share(-50.0)) / 2
    percussive = reference_percussive_share(audio, sr)
    score = min(max(explained - chance, 0.0), 1.0) * (1 - percussive)
    return {"explained": explained, "chance": chance, "percussive": percussive, "piano_score": score}


def _sine(freq, sr, seconds, amp=0.3):
    return amp * np.sin(2 * np.pi * freq * np.arange(int(sr * seconds)) / sr)


@pytest.fixture(scope="module")
def rendered():
    """The project's piano synth playing a known passage (22.05 kHz)."""
    notes = [Note(0.1, 0.9, 60, 90), Note(0.1, 0.9, 64, 80), Note(0.6, 1.4, 67, 85),
             Note(1.2, 2.2, 72, 70), Note(1.5, 2.0, 48, 100), Note(2.1, 2.9, 84, 75)]
    return render_notes(notes, 22050, 3.0), notes


def clip_cases(rendered):
    audio, notes = rendered
    sr16, sr44 = 16000, 44100
    # at 16 kHz the top bin is 8000 Hz exactly (inside the band, outside C4's
    # partials); C4 for the second half only, the tone sounding throughout
    c4_16k = _sine(261.63, sr16, 3.0) + 0.2 * (-1.0) ** np.arange(3 * sr16)  # a cosine at 8000 Hz
    # at 44.1 kHz a 200 Hz tone lies under the resolvable band (275 Hz) and counts nowhere
    a4_44k = _sine(440.0, sr44, 2.0) + _sine(200.0, sr44, 2.0)
    return [
        ("piano", audio, 22050, notes),
        ("piano-detuned-notes", audio, 22050, [Note(n.start, n.end, n.pitch + 1, n.velocity) for n in notes]),
        ("c4-16k", c4_16k, sr16, [Note(1.5, 3.0, 60, 90)]),
        ("a4-44k", a4_44k, sr44, [Note(0.3, 1.6, 69, 90)]),
    ]


@pytest.mark.parametrize("case", range(4))
def test_piano_evidence_is_the_docstrings_evidence(rendered, case):
    name, audio, sr, notes = clip_cases(rendered)[case]
    got = qa.piano_evidence(audio, sr, notes)
    want = reference_evidence(audio, sr, notes)
    assert set(got) == set(want)
    for key in want:
        assert got[key] == round(got[key], 4), key  # four decimals, as written in the report
        assert got[key] == pytest.approx(want[key], abs=6e-5), (name, key)


def test_a_sine_is_explained_by_its_note_with_its_tuning():
    """Hand-worked: a steady sine at a note's pitch, the note held for the
    whole clip, is all inside the note's mask (explained about 1) and nowhere
    near the masks a quarter tone away (chance about 0), harmonic (percussive
    about 0); the same holds when the piano is 30 cents sharp, because the
    mask follows the clip's tuning. At 16 kHz, 22.05 kHz and 44.1 kHz."""
    for sr in (16000, 22050, 44100):
        for cents in (0.0, 30.0, -30.0):
            x = _sine(440.0 * 2 ** (cents / 1200), sr, 2.0)
            ev = qa.piano_evidence(x, sr, [Note(0.0, 2.0, 69, 90)])
            assert ev["explained"] > 0.99, (sr, cents, ev)
            assert ev["chance"] < 0.01, (sr, cents, ev)
            assert ev["percussive"] < 0.02, (sr, cents, ev)
            assert ev["piano_score"] > 0.96, (sr, cents, ev)


def test_a_held_sine_is_explained_in_the_frames_its_note_covers():
    """Hand-worked frame count: an A4 sine for 4 s, its note only from 2.0 s to
    3.0 s. Every frame carries the same power, so explained is the share of the
    frames whose 0.372 s window overlaps [2.0, 3.0 + 0.25): frames j with
    j hop + window > 2.0 and j hop < 3.25."""
    sr = 22050
    x = _sine(440.0, sr, 4.0)
    hop, window = 2048 / sr, 8192 / sr
    n_frames = 1 + (len(x) - 8192) // 2048
    j = np.arange(n_frames)
    covered = np.count_nonzero((j * hop + window > 2.0) & (j * hop < 3.25))
    ev = qa.piano_evidence(x, sr, [Note(2.0, 3.0, 69, 90)])
    assert ev["explained"] == pytest.approx(covered / n_frames, abs=2e-3)
    # a window that ends 10 us before the note starts is not the note's; one
    # that ends 10 us after it is (the window is exactly 8192 samples)
    for offset, extra in ((1e-5, 0), (-1e-5, 1)):
        start = 10 * hop + window + offset  # frame 10's window ends at start - offset
        ev = qa.piano_evidence(x, sr, [Note(start, 3.0, 69, 90)])
        covered = np.count_nonzero((j * hop + window > start) & (j * hop < 3.25))
        assert covered == np.count_nonzero(j * hop < 3.25) - 11 + extra
        assert ev["explained"] == pytest.approx(covered / n_frames, abs=2e-3)


def test_piano_evidence_is_zero_without_notes_or_sound(rendered):
    audio, notes = rendered
    assert qa.piano_evidence(audio, 22050, []) == ZERO  # no notes: nothing, not even percussion
    assert qa.piano_evidence(np.zeros(22050), 22050, notes) == ZERO
    # samples so small that their power underflows to 0: no power in the band
    assert qa.piano_evidence(np.full(22050, 1e-170), 22050, notes) == ZERO
    assert qa.piano_score(audio, 22050, []) == 0.0


def test_piano_evidence_does_not_depend_on_the_level(rendered):
    """A power of two scales every sample and every power exactly: the shares
    (and the tuning, and the percussive share) cannot move, quiet or loud."""
    audio, notes = rendered
    loud = qa.piano_evidence(audio, 22050, notes)
    assert qa.piano_evidence(audio * 2.0 ** -20, 22050, notes) == loud
    assert loud["piano_score"] > 0.5


# --- silence ---------------------------------------------------------------------

def test_silence_ratio_threshold_is_strict_and_per_block():
    """QA_SILENCE_DBFS = -60 dBFS is an RMS of 0.001; "below" is strict. At
    20 Hz a block is one sample, whose RMS is its magnitude exactly."""
    assert qa.QA_SILENCE_DBFS == -60.0 and qa.SILENCE_BLOCK_SECONDS == 0.05
    assert qa.silence_ratio(np.array([0.001, -0.0009, 0.0011, 0.0, -0.001]), 20) == pytest.approx(0.4)
    sr = 20000  # 50 ms blocks of 1000 samples
    db = np.repeat([-61.0, -59.0, -80.0, -40.0], 1000)
    assert qa.silence_ratio(10 ** (db / 20), sr) == 0.5
    sine = 0.1 * np.sin(2 * np.pi * 440 * np.arange(sr) / sr)  # RMS 0.07 in every block
    assert qa.silence_ratio(sine, sr) == 0.0
    # integer PCM is read as numbers: 256 is loud (its square must not wrap in int16)
    assert qa.silence_ratio(np.full(2000, 256, dtype=np.int16), sr) == 0.0


def test_silence_ratio_of_less_than_a_block_and_of_one_block():
    assert qa.silence_ratio(np.full(999, 0.5), 20000) == 1.0  # no whole block: all silent
    assert qa.silence_ratio(np.full(1000, 0.5), 20000) == 0.0  # one loud block
    assert qa.silence_ratio(np.zeros(1000), 20000) == 1.0


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="sample_rate must be positive"):
        qa.silence_ratio(np.zeros(10), 0)
    with pytest.raises(ValueError, match="^audio has NaN or inf samples$"):
        qa.loudness_lufs(np.array([0.0, np.inf]), 48000)
    assert qa.silence_ratio(np.zeros(10), 1) == 1.0  # 1 Hz is a valid rate


# --- loudness ------------------------------------------------------------------------

@pytest.mark.parametrize("sr", [44100, 48000])
def test_k_weighting_is_pyloudnorms_filters(sr):
    """Oracle: pyloudnorm's own RBJ biquads for K-weighting (high shelf +4 dB,
    1500 Hz, Q 1/sqrt(2); high pass 38 Hz, Q 0.5), applied one after the other."""
    import pyloudnorm as pyln
    from scipy.signal import lfilter

    x = np.random.default_rng(sr).standard_normal(sr // 2)
    meter = pyln.Meter(sr)
    want = x
    for name in ("high_shelf", "high_pass"):
        f = meter._filters[name]
        want = lfilter(f.b, f.a, want)
    np.testing.assert_allclose(qa.k_weight(x, sr), want, rtol=1e-10, atol=1e-12)


def test_loudness_of_exactly_one_block_and_its_rounding():
    """A 997 Hz sine of peak 0.1 (-23 LUFS, BS.1770's calibration), exactly one
    400 ms block long: one block is enough; the figure has two decimals."""
    sr = 48000
    x = _sine(997.0, sr, 0.4, amp=0.1)
    lufs = qa.loudness_lufs(x, sr)
    assert lufs == pytest.approx(-23.0, abs=0.1)
    assert lufs == round(lufs, 2)
    assert qa.loudness_lufs(x[:-1], sr) is None  # shorter than a block


def test_loudness_with_digital_silence_warns_nothing():
    """Blocks of exact zeros have -inf loudness and are gated out quietly."""
    sr = 48000
    x = np.concatenate([np.zeros(2 * sr), _sine(997.0, sr, 2.0, amp=0.1)])  # the filters stay at 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lufs = qa.loudness_lufs(x, sr)
    import pyloudnorm as pyln

    assert lufs == pytest.approx(pyln.Meter(sr).integrated_loudness(x), abs=0.006)


def _block_power(x, sr):
    """Mean square of each 400 ms block (75 % overlap) of the K-weighted clip,
    summed as loudness_lufs sums it (so a float equality below is its equality)."""
    block = int(round(0.4 * sr))
    weighted = qa.k_weight(x, sr)
    return np.mean(np.lib.stride_tricks.sliding_window_view(weighted ** 2, block)[::block // 4], axis=1)


def _block_loudness(x, sr):
    """BS.1770-4's loudness of each block: -0.691 + 10 log10(mean square)."""
    return -0.691 + 10 * np.log10(_block_power(x, sr))


def _scale_to_gate(x, sr, block_index=0):
    """The gain that puts block ``block_index`` of ``x`` at exactly -70 LUFS
    (bisection over float gains, then the next floats up)."""
    lk = _block_loudness(x, sr)[block_index]
    a = b = 10 ** ((-70.0 - lk) / 20)
    a, b = a * 0.999, b * 1.001
    for _ in range(200):
        mid = (a + b) / 2
        a, b = (mid, b) if _block_loudness(mid * x, sr)[block_index] < -70.0 else (a, mid)
    for _ in range(50):
        if _block_loudness(b * x, sr)[block_index] == -70.0:
            return b
        b = np.nextafter(b, np.inf)
    pytest.fail("no gain puts the block at exactly -70 LUFS")


def test_a_block_exactly_at_the_absolute_gate_is_gated_out():
    """BS.1770-4 keeps the blocks whose loudness is above the absolute gate
    (l_j > -70 LKFS), so a block at exactly -70 is not counted: a clip of that
    one block is silence (None), and next to a louder block it leaves the
    result to that block alone."""
    sr = 48000
    block = int(round(0.4 * sr))
    noise = np.random.default_rng(3).standard_normal(block + block // 4)
    one = noise[:block] * _scale_to_gate(noise[:block], sr)
    assert _block_loudness(one, sr)[0] == -70.0
    assert qa.loudness_lufs(one, sr) is None
    # two blocks: the first (causal filters: only its own samples) at exactly -70,
    # the second with a tail 10 dB up, about -65 LUFS
    x = noise.copy()
    x[block:] *= 3.0
    x = x * _scale_to_gate(x, sr, 0)
    lk = _block_loudness(x, sr)
    assert lk[0] == -70.0 and -67.0 < lk[1] < -63.0
    assert qa.loudness_lufs(x, sr) == round(float(lk[1]), 2)


def test_a_block_exactly_at_the_relative_gate_is_gated_out():
    """BS.1770-4's relative gate keeps l_j > Gamma_R (10 LU under the mean of
    the blocks above -70): two blocks, the first quiet and the second's tail
    raised until the first sits exactly on Gamma_R (the first block's samples,
    and so its loudness, do not change); the result is the second block's."""
    sr = 48000
    block = int(round(0.4 * sr))
    base = np.random.default_rng(5).standard_normal(block + block // 4)

    def gap(level, gain):  # the first block's loudness minus the relative gate
        x = base * level
        x[block:] *= gain
        power = _block_power(x, sr)
        lk = -0.691 + 10 * np.log10(power)
        relative = -0.691 + 10 * math.log10(float(power[lk > -70.0].mean())) + -10.0
        return lk[0] - relative, x, lk

    for level in (0.011, 0.012, 0.013, 0.03, 0.01, 0.014):  # float grids: not every level hits
        a, b = 5.0, 15.0  # the second block ~19x the first's power puts the first on the gate
        for _ in range(100):
            mid = (a + b) / 2
            a, b = (mid, b) if gap(level, mid)[0] > 0 else (a, mid)
        gain = a
        for _ in range(20):
            gain = np.nextafter(gain, -np.inf)
        for _ in range(40):
            diff, x, lk = gap(level, gain)
            if diff == 0.0:
                assert qa.loudness_lufs(x, sr) == round(float(lk[1]), 2)
                return
            gain = np.nextafter(gain, np.inf)
    pytest.fail("no level puts the first block exactly on the relative gate")


# --- estimate_tuning: librosa's, on the bins it can use ------------------------

def _tuning_cases():
    rng = np.random.default_rng(7)
    cases = []
    for sr in (44100, 22050, 16000, 8000):
        t = np.arange(int(sr * 2.0)) / sr
        for cents in (-31.0, 0.0, 17.0):
            # detuned harmonic tones, plus a louder partial above 4 kHz at 44.1 kHz (the
            # frame maximum piptrack's threshold is taken from lies outside its band)
            y = sum(np.sin(2 * np.pi * 220.0 * k * 2 ** (cents / 1200) * t) / k for k in (1, 2, 3, 5))
            y = y + 0.05 * rng.standard_normal(len(t))
            if sr == 44100:
                y = y + 6.0 * np.sin(2 * np.pi * 6000.0 * t)
            spec, _, _ = qa._power_spectrogram(y, sr)
            cases.append((f"{sr}Hz{cents:+g}c", np.sqrt(spec.T), sr))
    cases.append(("noise", rng.random((8193, 30)) ** 4, 44100))
    cases.append(("tiny", rng.random((5, 3)), 44100))  # too few bins to cut: the plain call
    cases.append(("odd-fft", rng.random((4001, 20)) ** 4, 44100))  # not a power of two: plain
    return cases


@pytest.mark.parametrize("name,magnitude,sr", _tuning_cases(), ids=lambda v: v if isinstance(v, str) else "")
def test_estimate_tuning_is_librosas_on_the_whole_spectrogram(name, magnitude, sr):
    import librosa

    n_fft = 2 * (magnitude.shape[0] - 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = float(librosa.estimate_tuning(S=magnitude, sr=sr, n_fft=n_fft))
    assert qa.estimate_tuning(magnitude, sr) == want


def test_estimate_tuning_band_is_piptracks_default():
    import inspect

    import librosa

    assert inspect.signature(librosa.piptrack).parameters["fmax"].default == qa.TUNING_FMAX


def test_estimate_tuning_finds_the_detuning():
    # worked by hand: tones 31 cents flat read -0.31 semitones (librosa's 0.01 resolution)
    sr = 44100
    t = np.arange(2 * sr) / sr
    y = sum(np.sin(2 * np.pi * 440.0 * k * 2 ** (-31 / 1200) * t) / k for k in (1, 2, 3))
    spec, _, _ = qa._power_spectrogram(y, sr)
    assert qa.estimate_tuning(np.sqrt(spec.T), sr) == pytest.approx(-0.31, abs=0.011)


@pytest.mark.parametrize("sr,bins,frames,want_bins,want_sr", [
    # worked by hand. 44.1 kHz, 16384-point FFT: 4000 Hz lies in bin 1486.03, so the first
    # bin at or above it is 1487; 4096 points (bins 0..2048) hold it, 2048 (0..1024) do not
    (44100, 8193, 12, 2049, 11025.0),
    # 16 kHz, 8192 points: bins of 1.953125 Hz, bin 2048 is 4000 Hz exactly (the first not
    # below fmax): 4096 points hold it (0..2048), at 8 kHz
    (16000, 4097, 12, 2049, 8000.0),
    # 22.05 kHz, 8192 points: 4000 Hz in bin 1486.03 again: 4096 points at 11025 Hz
    (22050, 4097, 12, 2049, 11025.0),
    # 8000-point FFT (not a power of two): the whole spectrogram, the plain call
    (44100, 4001, 12, 4001, 44100),
    # one frame: 4096 points as above (the frame's maximum is still the reference)
    (44100, 8193, 1, 2049, 11025.0),
])
def test_estimate_tuning_gives_librosa_only_the_bins_it_can_use(monkeypatch, sr, bins, frames,
                                                                 want_bins, want_sr):
    import librosa

    calls = []
    real = librosa.estimate_tuning

    def spy(**kw):
        calls.append((kw["S"].shape[0], kw["sr"], kw.get("n_fft")))
        return real(**kw)

    monkeypatch.setattr(librosa, "estimate_tuning", spy)
    magnitude = np.random.default_rng(3).random((bins, frames)) ** 4
    qa.estimate_tuning(magnitude, sr)
    assert calls == [(want_bins, want_sr, 2 * (want_bins - 1))]
