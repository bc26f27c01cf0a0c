"""piano_score, silence_ratio and loudness on audio the tests make."""

import numpy as np
import pytest

from copdata.notes import Note
from copdata.qa import synthetic
from copdata.qa.audio import loudness_lufs, piano_evidence, piano_score, silence_ratio
from copdata.render.performance import generate_performance
from copdata.render.piano import render_notes

SR = 22050
SECONDS = 6.0


@pytest.fixture(scope="module")
def transcriber():
    from copdata.transcription import get_transcriber

    return get_transcriber()


@pytest.fixture(scope="module")
def piano():
    notes, _ = generate_performance(3, SECONDS)
    return render_notes(notes, SR, SECONDS), notes


def test_solo_piano_scores_high_with_its_notes_and_its_transcription(piano, transcriber):
    audio, notes = piano
    assert piano_score(audio, SR, notes) > 0.6
    assert piano_score(audio, SR, transcriber.transcribe(audio, SR)) > 0.6


@pytest.mark.parametrize("make", [
    lambda: synthetic.speech_like(SECONDS, SR, seed=1),
    lambda: synthetic.noise(SECONDS, SR, "white", seed=2),
    lambda: synthetic.noise(SECONDS, SR, "rustle", seed=3),
    lambda: synthetic.drums(SECONDS, SR, seed=4),
], ids=["speech", "white-noise", "rustle", "drums"])
def test_non_piano_scores_low(make, transcriber):
    audio = make()
    assert piano_score(audio, SR, transcriber.transcribe(audio, SR)) < 0.3


def test_speech_over_piano_lowers_the_score(piano, transcriber):
    audio, _ = piano
    solo = piano_score(audio, SR, transcriber.transcribe(audio, SR))
    mixed = synthetic.mix(audio, synthetic.speech_like(SECONDS, SR, seed=5), 0.0)
    assert piano_score(mixed, SR, transcriber.transcribe(mixed, SR)) < solo - 0.15


def test_detuned_notes_explain_nothing(piano):
    audio, notes = piano
    wrong = [Note(n.start, n.end, n.pitch + 1 if n.pitch < 108 else n.pitch - 1, n.velocity)
             for n in notes]
    evidence = piano_evidence(audio, SR, wrong)
    assert evidence["piano_score"] < 0.2
    assert piano_score(audio, SR, []) == 0.0


def test_silence_ratio_counts_quiet_blocks():
    sr = 20000  # 50 ms blocks of 1000 samples
    audio = np.concatenate([np.zeros(sr), 0.1 * np.ones(sr, np.float32), 1e-4 * np.ones(2 * sr)])
    assert silence_ratio(audio, sr) == pytest.approx(0.75, rel=1e-9)


def test_loudness_of_a_sine_matches_bs1770():
    t = np.arange(4 * 48000) / 48000
    sine = 0.1 * np.sin(2 * np.pi * 997 * t)  # -20 dBFS peak: -23.0 LUFS (mono)
    assert loudness_lufs(sine, 48000) == pytest.approx(-23.0, abs=0.1)
    assert loudness_lufs(np.zeros(48000), 48000) is None


def test_bad_audio_is_a_clear_error():
    with pytest.raises(ValueError, match="mono"):
        silence_ratio(np.zeros((2, 100, 3)), SR)
    with pytest.raises(ValueError, match="NaN"):
        piano_score(np.array([0.0, np.nan]), SR, [])


def test_fast_hpss_is_librosas_hpss(piano):
    """Oracle: librosa's own HPSS (N-D median filters) on the same power
    spectrogram of rendered piano plus drums; the row-wise 1-D filters must
    give the same parts to the last bit (float32 in, float32 out), with the
    two kernels in librosa's order (time, frequency) and unequal, so a swap
    of them fails."""
    import librosa

    from copdata.qa.audio import HPSS_KERNEL, HPSS_MARGIN, HPSS_TIME_KERNEL, hpss_power

    audio, _ = piano
    mix = (audio + synthetic.drums(SECONDS, SR, seed=4)).astype(np.float32)
    power = np.abs(librosa.stft(mix, n_fft=1024, hop_length=512)) ** 2
    harmonic, percussive = hpss_power(power)
    ref_h, ref_p = librosa.decompose.hpss(power, kernel_size=(HPSS_TIME_KERNEL, HPSS_KERNEL),
                                          margin=HPSS_MARGIN)
    assert harmonic.dtype == ref_h.dtype == np.float32
    np.testing.assert_array_equal(harmonic, ref_h)
    np.testing.assert_array_equal(percussive, ref_p)


@pytest.mark.parametrize("shape", [(6, 40), (3, 31), (4, 5), (1, 1), (2, 100)])
@pytest.mark.parametrize("size", [1, 3, 31])
def test_row_median_is_scipys_median_filter(shape, size):
    """Oracle: scipy.ndimage.median_filter with a (1, size) footprint, on
    rows as long as the kernel, shorter (repeated reflections) and longer."""
    from scipy.ndimage import median_filter

    from copdata.qa.audio import _median_rows

    spec = np.random.default_rng(sum(shape) + size).random(shape).astype(np.float32)
    np.testing.assert_array_equal(_median_rows(spec, size),
                                  median_filter(spec, size=(1, size), mode="reflect"))


@pytest.mark.parametrize("sample_rate", [16000, 44100, 48000])
def test_loudness_equals_pyloudnorm(sample_rate):
    # oracle: pyloudnorm (Steinmetz & Reiss), an independent BS.1770-4 implementation with
    # its own K-weighting filters, blocks and gates. The signal has energy below the 38 Hz
    # high pass and above the 1.5 kHz shelf, a quiet second the relative gate removes and a
    # near-silent tail under the absolute gate (-70 LUFS).
    import pyloudnorm as pyln
    rng = np.random.default_rng(sample_rate)
    t = np.arange(int(sample_rate * 7.3)) / sample_rate
    x = (0.3 * np.sin(2 * np.pi * 440 * t) * (1 + 0.8 * np.sin(2 * np.pi * 0.3 * t))
         + 0.2 * np.sin(2 * np.pi * 25 * t) + 0.05 * np.sin(2 * np.pi * 5000 * t)
         + 0.05 * rng.standard_normal(len(t)))
    x[int(sample_rate * 2):int(sample_rate * 3)] *= 0.001
    x[int(sample_rate * 6):] *= 1e-5
    ours = loudness_lufs(x, sample_rate)
    assert ours == pytest.approx(pyln.Meter(sample_rate).integrated_loudness(x), abs=0.006)
    louder = loudness_lufs(2 * x, sample_rate)  # +6.02 dB, the gates move with it
    assert louder - ours == pytest.approx(20 * np.log10(2), abs=0.011)
