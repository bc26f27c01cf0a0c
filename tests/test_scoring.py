"""copdata.scoring: the one implementation of note and frame scores."""

import numpy as np
import pytest
import torch

from copdata import scoring
from copdata.notes import Note
from copdata.roll import render_roll


def _brute_weighted(label: np.ndarray, pred: np.ndarray) -> dict:
    """Per-key P/R/F1 (zero_division=1) weighted by reference support, written out."""
    support = label.sum(axis=0)
    p, r, f = [], [], []
    for k in range(label.shape[1]):
        tp = int((label[:, k] & pred[:, k]).sum())
        n_pred, n_true = int(pred[:, k].sum()), int(label[:, k].sum())
        pk = tp / n_pred if n_pred else 1.0
        rk = tp / n_true if n_true else 1.0
        fk = 2 * tp / (n_pred + n_true) if n_pred + n_true else 1.0
        p.append(pk), r.append(rk), f.append(fk)
    w = support / support.sum()
    return {"precision": float(np.dot(w, p)), "recall": float(np.dot(w, r)),
            "f1": float(np.dot(w, f))}


def _random_roll(rng, frames, density):
    return (rng.random((frames, 88)) < density).astype(np.uint8) * 80


def test_seed_frame_metric_matches_the_papers_procedure():
    rng = np.random.default_rng(0)
    refs = [_random_roll(rng, 250, 0.05) for _ in range(3)]  # 10 s clips at 25 fps
    ests = [np.where(rng.random(r.shape) < 0.8, r, _random_roll(rng, 250, 0.05)) for r in refs]
    got = scoring.seed_frame_scores(refs, ests)
    # the paper: 2 s chunks of keys 15..65, consecutive chunk pairs as 4 s windows, pooled
    chunks_ref = [(r[s:s + 50, 15:66] > 0).astype(int) for r in refs for s in range(0, 250, 50)]
    chunks_est = [(e[s:s + 50, 15:66] > 0).astype(int) for e in ests for s in range(0, 250, 50)]
    label = np.vstack([np.vstack(chunks_ref[i:i + 2]) for i in range(len(chunks_ref) - 1)])
    pred = np.vstack([np.vstack(chunks_est[i:i + 2]) for i in range(len(chunks_est) - 1)])
    assert label.shape == (14 * 100, 51)
    want = _brute_weighted(label, pred)
    for key in ("precision", "recall", "f1"):
        assert got[key] == pytest.approx(want[key], rel=1e-12)
    inter, union = (label & pred).sum(1), (label | pred).sum(1)
    assert got["accuracy"] == pytest.approx(np.mean(np.where(union, inter / np.maximum(union, 1), 1.0)))
    # it differs from the per-clip micro score, which is why both are reported
    micro = np.mean([scoring.frame_scores(r[:, 15:66], e[:, 15:66])["f1"] for r, e in zip(refs, ests)])
    assert abs(micro - got["f1"]) > 1e-6


def test_seed_metric_pads_the_last_chunk_and_needs_two_chunks():
    roll = np.zeros((60, 88), np.uint8)
    roll[:, 40] = 90
    out = scoring.seed_frame_scores([roll], [roll])
    assert out["precision"] == out["recall"] == out["f1"] == 1.0
    with pytest.raises(ValueError, match="two 2 s chunks"):
        scoring.seed_frame_scores([roll[:50]], [roll[:50]])


def test_one_empty_convention_everywhere():
    ref = [Note(0.0, 0.5, 60, 80)]
    assert scoring.note_scores([], []) == dict.fromkeys(scoring.NOTE_KEYS, 1.0)
    assert scoring.note_scores(ref, []) == dict.fromkeys(scoring.NOTE_KEYS, 0.0)
    empty = np.zeros((25, 88))
    assert scoring.frame_scores(empty, empty)["f1"] == 1.0
    assert scoring.frame_scores(render_roll(ref, 25, 25.0), empty)["f1"] == 0.0
    # the Roll Predictor's evaluation uses the same function (it used to give 0 here)
    from copmodel.roll_predictor import frame_f1
    assert frame_f1(torch.zeros(25, 88), torch.zeros(25, 88)) == {"precision": 1.0, "recall": 1.0,
                                                                  "f1": 1.0}
    from copbench.metrics.midi import note_scores
    assert note_scores(ref, ref)["midi_note_f1"] == scoring.note_scores(ref, ref)["f1"] == 1.0
