"""copdata.scoring's edges worked by hand (issue 21: mutation testing)."""

import numpy as np
import pytest

from copdata import scoring


def test_both_empty_only_when_both_are():
    assert [scoring.is_both_empty(r, e) for r, e in ((0, 0), (0, 1), (1, 0), (1, 1), (2, 0))] == \
        [True, False, False, False, False]


def test_a_roll_cell_of_value_1_is_on():
    # binary rolls (0/1), as roll.npy may hold: every 1 is a note
    ref = np.zeros((10, 88), np.uint8)
    est = np.zeros((10, 88), np.uint8)
    ref[2:6, 40] = 1
    est[4:8, 40] = 1
    assert scoring.frame_counts(ref, est) == (2, 4, 4)


def test_seed_accuracy_by_hand_and_the_last_chunk_padded_with_silence():
    # 100 frames: two 2 s chunks, one 4 s window of 100 rows; the reference has key 20
    # (column 20, inside 15-65) on in frame 0 only, the estimate nothing: row 0's Jaccard
    # is 0 / 1, the 99 empty rows count 1 each: accuracy 99 / 100
    ref = np.zeros((100, 88), np.uint8)
    ref[0, 20] = 1
    est = np.zeros_like(ref)
    assert scoring.seed_frame_scores([ref], [est])["accuracy"] == pytest.approx(0.99)
    # a 60-frame clip is scored as its first 60 frames followed by 40 silent ones
    rng = np.random.default_rng(0)
    ref60 = (rng.random((60, 88)) > 0.8).astype(np.uint8)
    est60 = (rng.random((60, 88)) > 0.8).astype(np.uint8)
    pad = lambda r: np.vstack([r, np.zeros((40, 88), np.uint8)])  # noqa: E731
    assert scoring.seed_frame_scores([ref60], [est60]) == \
        pytest.approx(scoring.seed_frame_scores([pad(ref60)], [pad(est60)]))
