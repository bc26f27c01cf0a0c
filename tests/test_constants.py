"""Module-level constants pinned to their source (issue 21).

mutmut 3 mutates only inside functions, so a changed tolerance, key range or
threshold at module level would go unnoticed; each is pinned here with the
place its value comes from.
"""

import inspect

import mir_eval
import pretty_midi
from copbench import stats
from copbench.metrics import frechet, midi, si_sdr
from copdata import notes, scoring


def _defaults(function):
    return {k: p.default for k, p in inspect.signature(function).parameters.items()
            if p.default is not inspect.Parameter.empty}


def test_note_tolerances_are_mir_evals_defaults():
    # mir_eval.transcription.precision_recall_f1_overlap: onset_tolerance=0.05,
    # pitch_tolerance=50.0 (cents), offset_ratio=0.2, offset_min_tolerance=0.05
    d = _defaults(mir_eval.transcription.precision_recall_f1_overlap)
    assert scoring.ONSET_TOLERANCE == d["onset_tolerance"] == 0.05
    assert scoring.PITCH_TOLERANCE_CENTS == d["pitch_tolerance"] == 50.0
    assert scoring.OFFSET_RATIO == d["offset_ratio"] == 0.2
    assert scoring.OFFSET_MIN_TOLERANCE == d["offset_min_tolerance"] == 0.05


def test_seed_frame_metric_constants_are_the_seed_scripts():
    # acappemin/Video-to-Audio-and-Piano@a2ab541, src/audeo/Roll2Midi_dataset_tv2a_eval.py:
    # "frames = 50 #2 seconds", "min_key = 15", "max_key = 65" (inclusive: [:, 15:66])
    assert scoring.SEED_KEYS == (15, 65)
    assert scoring.SEED_CHUNK_FRAMES == 50
    assert scoring.SEED_FPS == 25.0  # 50 frames = 2 s
    # column k is MIDI 21 + k: the seed's keys are MIDI 36 (C2) .. 86 (D6), 51 columns
    lo, hi = scoring.SEED_KEYS
    assert (notes.PIANO_LOW + lo, notes.PIANO_LOW + hi) == (36, 86)
    assert pretty_midi.note_number_to_name(36) == "C2" and pretty_midi.note_number_to_name(86) == "D6"
    assert midi.AUDEO_KEYS == scoring.SEED_KEYS


def test_piano_range_and_tick_grid():
    # an 88-key piano: A0 (MIDI 21) .. C8 (MIDI 108)
    assert notes.PIANO_LOW == pretty_midi.note_name_to_number("A0") == 21
    assert notes.PIANO_HIGH == pretty_midi.note_name_to_number("C8") == 108
    assert notes.NUM_KEYS == notes.PIANO_HIGH - notes.PIANO_LOW + 1 == 88
    # 480 ticks per beat at 120 bpm (two beats per second): 960 ticks per second
    assert (notes.MIDI_RESOLUTION, notes.MIDI_TEMPO, notes.TICKS_PER_SECOND) == (480, 120.0, 960.0)
    pm = notes.notes_to_midi([notes.Note(0.0, 1.0, 60, 100)])
    assert pm.resolution == 480 and pm.time_to_tick(1.0) == 960


def test_frechet_tolerances_follow_pytorch_fid():
    # pytorch-fid's calculate_frechet_distance: eps=1e-6 added to the diagonals when
    # sqrtm is not finite; imaginary parts allowed up to atol=1e-3 (it raises beyond)
    assert frechet.OFFSET_EPS == 1e-6
    assert frechet.COMPLEX_TOL == 1e-3
    # ours: the two trace routes agree to 1e-6 relative; negative beyond 1e-9 of the scale
    assert frechet.MISMATCH_TOL == 1e-6
    assert frechet.NEGATIVE_TOL == 1e-9


def test_si_sdr_clip_range_and_bootstrap_defaults():
    # SI-SDR clipped to [-100, 100] dB (module docstring; the conventions' values)
    assert (si_sdr.FLOOR_DB, si_sdr.CEIL_DB) == (-100.0, 100.0)
    # 1000 percentile-bootstrap resamples, 95 % intervals (docs/copbench.md, results' ci95)
    assert (stats.N_BOOT, stats.LEVEL) == (1000, 0.95)
    assert _defaults(stats.bootstrap_ci)["n_boot"] == stats.N_BOOT


def test_set_level_bootstrap_and_inception_score_settings():
    from copbench.metrics import clip_score, panns_scores
    # the seed metric's and is_panns' CIs: 200 percentile-bootstrap resamples over clips
    # (docs/copbench.md; the settings they record say so)
    assert midi.SEED_BOOT == 200 and panns_scores.N_BOOT == 200
    # torch-fidelity's isc_features_to_metric as av-benchmark calls it:
    # splits=10, samples_shuffle=True, rng_seed=2020
    assert (panns_scores.SPLITS, panns_scores.ISC_SEED) == (10, 2020)
    # audioldm_eval's KL: (softmax(out) + 1e-6).log()
    assert panns_scores.EPS == 1e-6
    # clip_score: one video frame per second (at k + 0.5 s)
    assert clip_score.FRAMES_PER_SECOND == 1.0
