"""MIDI metrics on hand-built note lists and rolls."""

import numpy as np
import pytest

from copdata.notes import Note
from copdata.roll import render_roll
from copbench.metrics.midi import frame_scores, midi_scores, note_scores

REF = [Note(0.0, 0.5, 60, 80), Note(0.5, 1.0, 64, 80), Note(1.0, 2.0, 67, 80), Note(1.5, 2.0, 30, 80)]


def test_note_level_known_counts():
    est = [Note(0.03, 0.5, 60, 90),   # onset within 50 ms: hit, offset fine
           Note(0.56, 1.0, 64, 90),   # onset 60 ms late: miss
           Note(1.0, 1.3, 67, 90),    # onset hit, offset way early: miss with offsets
           Note(1.5, 2.0, 31, 90),    # wrong pitch (100 cents): miss
           Note(1.8, 1.9, 72, 90)]    # spurious
    s = note_scores(REF, est)
    assert s["midi_note_precision"] == pytest.approx(2 / 5)
    assert s["midi_note_recall"] == pytest.approx(2 / 4)
    assert s["midi_note_f1"] == pytest.approx(2 * 0.4 * 0.5 / 0.9)
    # with offsets only the first note matches: P = 1/5, R = 1/4
    assert s["midi_note_f1_offset"] == pytest.approx(2 * 0.2 * 0.25 / 0.45)


def test_identical_and_empty_conventions():
    s = midi_scores(REF, REF, 50, 25.0)
    assert all(v == pytest.approx(1.0) for v in s.values())
    s = midi_scores(REF, [], 50, 25.0)
    assert all(v == 0.0 for v in s.values())
    s = midi_scores([], [], 50, 25.0)
    assert all(v == 1.0 for v in s.values())


def test_frame_level_and_audeo_subset():
    # Pitch 30 (key 9) lies outside the Audeo keys 15..65; the others inside.
    est = [Note(0.0, 0.5, 60, 80), Note(1.5, 2.0, 30, 80), Note(0.0, 0.2, 100, 80)]
    ref_roll, est_roll = render_roll(REF, 50, 25.0), render_roll(est, 50, 25.0)
    s = midi_scores(REF, est, 50, 25.0, ref_roll=ref_roll)
    # ref frames: 12.5->13 (C4 0..0.5 = frames 0..12, 13 frames), E4 frames 12..24 (13),
    # G4 frames 25..49 (25), pitch30 frames 37..49 (13): total 64.
    ref_on, est_on = int((ref_roll > 0).sum()), int((est_roll > 0).sum())
    tp = int(((ref_roll > 0) & (est_roll > 0)).sum())
    assert s["midi_frame_precision"] == pytest.approx(tp / est_on)
    assert s["midi_frame_recall"] == pytest.approx(tp / ref_on)
    assert (ref_on, est_on, tp) == (64, 31, 26)
    # Audeo: drops pitch 30 (13 frames in both) and pitch 100 (5 est frames).
    assert s["midi_frame_precision_audeo"] == pytest.approx(13 / 13)
    assert s["midi_frame_recall_audeo"] == pytest.approx(13 / 51)


def test_frame_scores_shape_check():
    with pytest.raises(ValueError):
        frame_scores(np.zeros((10, 88)), np.zeros((11, 88)))
