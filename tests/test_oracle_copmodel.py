"""copmodel numbers against oracles worked by hand (issue 21).

* EMA: three updates of a one-weight model, worked by hand with the documented
  decay ``min(decay, (1 + step) / (10 + step))``.
* Preference pairs: three candidates whose ranking is known without the code
  (the reference performance, one of its three notes, silence), scored by the
  real transcriber and note F1; the stored winner must be the full performance.
* Learning-rate factor: values of the documented formula at hand-picked steps.
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from copdata.notes import Note
from copdata.render.piano import render_notes
from copmodel.prefs import mine_pairs
from copmodel.schedule import EMA, lr_factor, predicted_roll_probability
from copmodel.errors import ConfigError


class _OneWeight(torch.nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([value], dtype=torch.float64))
        self.register_buffer("count", torch.tensor([0], dtype=torch.int64))


def test_ema_after_three_updates_matches_the_hand_computation():
    model = _OneWeight(1.0)
    ema = EMA(model, decay=0.9)
    # steps 0, 1, 2: decay = min(0.9, 1/10), min(0.9, 2/11), min(0.9, 3/12)
    expected = 1.0
    for step, (weight, d) in enumerate([(2.0, 1 / 10), (4.0, 2 / 11), (8.0, 3 / 12)]):
        with torch.no_grad():
            model.w.fill_(weight)
            model.count.fill_(step + 5)
        ema.update(model, step)
        expected = d * expected + (1 - d) * weight
    # by hand: 0.1*1 + 0.9*2 = 1.9; (2/11)*1.9 + (9/11)*4 = 39.8/11; 0.25*39.8/11 + 0.75*8
    assert expected == pytest.approx(0.25 * 39.8 / 11 + 6.0, rel=1e-15)
    assert ema.state["w"].item() == pytest.approx(expected, rel=1e-12)
    # integer buffers are copied, not averaged
    assert ema.state["count"].item() == 7
    # a late step uses the configured decay: 0.9 * old + 0.1 * new
    with torch.no_grad():
        model.w.fill_(100.0)
    ema.update(model, 10_000)
    assert ema.state["w"].item() == pytest.approx(0.9 * expected + 0.1 * 100.0, rel=1e-12)
    # the EMA holds its own copy: changing the model does not move it
    with torch.no_grad():
        model.w.fill_(-1.0)
    assert ema.state["w"].item() == pytest.approx(0.9 * expected + 10.0, rel=1e-12)


def test_lr_factor_warms_up_linearly_then_decays_by_cosine_to_a_tenth():
    # warmup 4: (step + 1) / 4
    assert [lr_factor(s, 4, 14) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(4, 4, 14) == pytest.approx(1.0)
    # half way through the decay: 0.1 + 0.9 * 0.5 * (1 + cos(pi / 2)) = 0.55
    assert lr_factor(9, 4, 14) == pytest.approx(0.55)
    # a quarter: 0.1 + 0.45 * (1 + cos(pi / 4))
    assert lr_factor(6.5, 4, 14) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 4)))
    assert lr_factor(14, 4, 14) == pytest.approx(0.1)
    assert lr_factor(1000, 4, 14) == pytest.approx(0.1)  # stays at the floor after total
    assert lr_factor(0, 0, 10) == pytest.approx(1.0)  # no warmup


def test_predicted_roll_probability_schedule():
    assert predicted_roll_probability("true", 2, 50, 100) == 0.0
    assert predicted_roll_probability("scheduled", 1, 50, 100) == 0.0  # stage 1 has no roll
    assert predicted_roll_probability("predicted", 2, 0, 100) == 1.0
    assert predicted_roll_probability("scheduled", 3, 0, 100) == 1.0
    assert predicted_roll_probability("scheduled", 2, 25, 100) == pytest.approx(0.25)
    assert predicted_roll_probability("scheduled", 2, 400, 100) == 1.0
    assert predicted_roll_probability("scheduled", 2, 7, 0) == 0.0
    with pytest.raises(ConfigError):
        predicted_roll_probability("sometimes", 2, 0, 10)


SR = 16000
SECONDS = 3.0
CHORD = [Note(0.3, 0.9, 60, 96), Note(1.2, 1.8, 64, 96), Note(2.1, 2.7, 67, 96)]


class _KnownCandidates:
    """Stands in for the network: candidate k's features are ``[k]`` and its audio is
    the k-th of ``audios`` (the ranking code under test never sees the difference)."""

    def __init__(self, audios):
        self.audios = audios
        self.cfg = SimpleNamespace(sample=SimpleNamespace(cfg=3.5))

    def conditions(self, clip):
        return {"roll": torch.full((1, 5, 88), 0.5)}

    def generate_features(self, clip, seed, steps, weight, batch=None):
        return np.full((2, 4), float(seed % 1000), dtype=np.float32)

    def vocode(self, features, clip):
        return self.audios[int(features[0, 0])]


def test_preference_pair_stores_the_best_candidate_as_winner():
    full = render_notes(CHORD, SR, SECONDS)
    one_note = render_notes(CHORD[:1], SR, SECONDS)
    # wrong keys at the wrong times: F1 0 (silence would be refused by the transcriber)
    wrong = render_notes([Note(n.start + 0.25, n.end + 0.25, n.pitch + 5, n.velocity)
                          for n in CHORD], SR, SECONDS)
    # candidates in the order: one note (F1 1/2), wrong notes (F1 0), all three (F1 1)
    sampler = _KnownCandidates([one_note, wrong, full])
    clip = SimpleNamespace(id="c0", sample_rate=SR, notes=lambda: list(CHORD))
    pairs, gaps = mine_pairs(sampler, [clip], candidates=3, steps=2, cfg=None, seed=0,
                             progress=False)
    assert len(pairs) == 1
    pair = pairs[0]
    assert pair["clip_id"] == "c0"
    assert pair["mel_w"][0, 0].item() == 2.0  # the full performance won
    assert pair["mel_l"][0, 0].item() == 1.0  # the wrong notes lost
    assert pair["score_w"] == pytest.approx(1.0)
    assert pair["score_l"] == 0.0
    assert gaps == [pytest.approx(pair["score_w"] - pair["score_l"])]
    assert pair["cfg"] == 3.5  # the checkpoint's guidance weight when none is given
    assert torch.equal(pair["roll"], torch.full((5, 88), 0.5))


def test_candidates_that_all_score_the_same_give_no_pair():
    same = render_notes(CHORD, SR, SECONDS)
    sampler = _KnownCandidates([same, same])
    clip = SimpleNamespace(id="c0", sample_rate=SR, notes=lambda: list(CHORD))
    pairs, gaps = mine_pairs(sampler, [clip], candidates=2, steps=2, cfg=1.0, seed=0,
                             progress=False)
    assert pairs == [] and gaps == []
