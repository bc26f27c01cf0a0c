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
        self.cfg = SimpleNamespace(sample=SimpleNamespace(guidance_weight=3.5))

    def conditions(self, clip):
        assert clip.id.startswith("c")  # the clip itself is passed on
        return {"roll": torch.full((1, 5, 88), 0.5)}

    def generate_features(self, clip, seed, steps, weight, batch=None):
        assert clip.id.startswith("c")
        return np.full((2, 4), float(seed % 1000), dtype=np.float32)

    def vocode(self, features, clip):
        assert clip.id.startswith("c")
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
    pairs, gaps = mine_pairs(sampler, [clip], candidates=3, steps=2, guidance=None, seed=0,
                             progress=False)
    assert len(pairs) == 1
    pair = pairs[0]
    assert pair["clip_id"] == "c0"
    assert pair["feats_w"][0, 0].item() == 2.0  # the full performance won
    assert pair["feats_l"][0, 0].item() == 1.0  # the wrong notes lost
    assert pair["score_w"] == pytest.approx(1.0)
    assert pair["score_l"] == 0.0
    assert gaps == [pytest.approx(pair["score_w"] - pair["score_l"])]
    assert pair["guidance_weight"] == 3.5  # the checkpoint's guidance weight when none is given
    assert torch.equal(pair["roll"], torch.full((5, 88), 0.5))


def test_a_silent_candidate_loses_instead_of_stopping_the_mining():
    # found by the mutation work: the transcriber refuses silence (SilentInputError),
    # which stopped mine_pairs; a silent candidate has no notes, so F1 0 against three
    full = render_notes(CHORD, SR, SECONDS)
    silence = np.zeros_like(full)
    sampler = _KnownCandidates([silence, full])
    clip = SimpleNamespace(id="c0", sample_rate=SR, notes=lambda: list(CHORD))
    pairs, _ = mine_pairs(sampler, [clip], candidates=2, steps=2, guidance=1.0, seed=0,
                          progress=False)
    assert len(pairs) == 1
    assert pairs[0]["feats_w"][0, 0].item() == 1.0 and pairs[0]["feats_l"][0, 0].item() == 0.0
    assert pairs[0]["score_w"] == pytest.approx(1.0) and pairs[0]["score_l"] == 0.0


def test_candidates_that_all_score_the_same_give_no_pair():
    same = render_notes(CHORD, SR, SECONDS)
    sampler = _KnownCandidates([same, same])
    clip = SimpleNamespace(id="c0", sample_rate=SR, notes=lambda: list(CHORD))
    pairs, gaps = mine_pairs(sampler, [clip], candidates=2, steps=2, guidance=1.0, seed=0,
                             progress=False)
    assert pairs == [] and gaps == []
    # a clip without a pair does not stop the mining: the next clip still gives one
    one_note = render_notes(CHORD[:1], SR, SECONDS)
    mixed = _KnownCandidates([same, same])
    clips = [clip, SimpleNamespace(id="c1", sample_rate=SR, notes=lambda: list(CHORD))]
    originals = mixed.vocode
    mixed.vocode = lambda f, c: one_note if (c.id == "c1" and f[0, 0] == 0) else originals(f, c)
    pairs, gaps = mine_pairs(mixed, clips, candidates=2, steps=2, guidance=1.0, seed=0, progress=False)
    assert [p["clip_id"] for p in pairs] == ["c1"]
    # the gap is the winner's F1 minus the loser's: 1 - 1/2
    assert pairs[0]["score_l"] == pytest.approx(0.5) and gaps == [pytest.approx(0.5)]


# ---- flow matching and stage-3 losses, worked by hand --------------------------------

from copmodel.flow import FlowMatching  # noqa: E402
from copmodel.losses import dpo_flow_loss, info_nce  # noqa: E402


def test_flow_path_target_and_losses_by_hand():
    fm = FlowMatching()
    x0 = torch.tensor([[0.0, 2.0], [4.0, -4.0]])
    x1 = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    t = torch.tensor([0.25, 0.5])
    # (1 - t) x0 + t x1 per row
    assert torch.allclose(fm.interpolate(x0, x1, t), torch.tensor([[0.25, 1.5], [2.0, 0.0]]))
    assert torch.equal(fm.target(x0, x1), torch.tensor([[1.0, -2.0], [-4.0, 8.0]]))
    velocity = torch.tensor([[1.0, 0.0], [0.0, 8.0]])  # errors (0, 2) and (4, 0)
    assert torch.allclose(fm.per_sample_loss(velocity, x0, x1), torch.tensor([2.0, 8.0]))
    assert torch.allclose(fm.per_sample_data_loss(torch.tensor([[3.0, 0.0], [0.0, 5.0]]), x1),
                          torch.tensor([2.0, 0.5]))
    # data prediction: (x1_hat - x_t) / (1 - t), 1 - t clamped at 1e-3
    xt = fm.interpolate(x0, x1, t)
    assert torch.allclose(fm.velocity_from_data(x1, xt, t), fm.target(x0, x1))
    v = fm.velocity_from_data(torch.ones(1, 2), torch.zeros(1, 2), torch.tensor([1.0]))
    assert torch.allclose(v, torch.full((1, 2), 1000.0))
    v = fm.velocity_from_data(torch.ones(1, 2), torch.zeros(1, 2), torch.tensor([1.0]), min_gap=0.5)
    assert torch.allclose(v, torch.full((1, 2), 2.0))


def test_time_grid_and_sway_by_hand():
    assert FlowMatching.timesteps(4).tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert FlowMatching.timesteps(1).tolist() == [0.0, 1.0]
    swayed = FlowMatching.timesteps(2, sway=-1.0)
    # u + s (cos(pi u / 2) - 1 + u) at u = 0.5, s = -1: 1 - cos(pi / 4)
    assert swayed.tolist() == pytest.approx([0.0, 1 - math.cos(math.pi / 4), 1.0], abs=1e-6)
    with pytest.raises(ValueError):
        FlowMatching.timesteps(0)


def test_logit_normal_times():
    fm = FlowMatching(logit_normal_mean=0.7, logit_normal_std=0.0)
    assert torch.allclose(fm.sample_t(3), torch.full((3,), 1 / (1 + math.exp(-0.7))))
    t = FlowMatching().sample_t(4000, generator=torch.Generator().manual_seed(0))  # N(0, 1) by default
    again = FlowMatching().sample_t(4000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(t, again)  # the generator is used
    assert 0 < float(t.min()) and float(t.max()) < 1
    assert float(t.mean()) == pytest.approx(0.5, abs=0.02)  # symmetric about 1/2
    logit = torch.log(t / (1 - t))
    assert float(logit.std()) == pytest.approx(1.0, abs=0.05)


def test_logit_normal_times_come_from_the_generator_whatever_the_default_device():
    # the draw is made on the generator's device (the CPU without one), so a seeded run
    # gives the same times when torch's default device is another one
    expected = FlowMatching().sample_t(3, generator=torch.Generator().manual_seed(0))
    with torch.device("meta"):
        assert torch.equal(FlowMatching().sample_t(3, generator=torch.Generator().manual_seed(0)), expected)
        assert FlowMatching().sample_t(3).device.type == "cpu"
    # and the times land on the device asked for
    assert FlowMatching().sample_t(3, device="meta").device.type == "meta"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA generator")
def test_logit_normal_times_drawn_on_a_cuda_generator():
    expected = torch.sigmoid(torch.randn(3, generator=torch.Generator("cuda").manual_seed(0), device="cuda"))
    t = FlowMatching().sample_t(3, generator=torch.Generator("cuda").manual_seed(0))
    assert t.device.type == "cpu" and torch.equal(t, expected.cpu())


def test_time_grid_on_the_device_asked_for():
    assert FlowMatching.timesteps(4, device="meta").device.type == "meta"
    assert FlowMatching.timesteps(4, sway=-1.0, device="meta").device.type == "meta"


def test_path_and_data_velocity_keep_the_datas_dtype():
    # bfloat16 data with float32 times (as under autocast): t is cast to the data's dtype,
    # so the path and the velocity stay bfloat16 (a float32 t would promote them)
    x0 = torch.zeros(2, 3, dtype=torch.bfloat16)
    x1 = torch.ones(2, 3, dtype=torch.bfloat16)
    t = torch.tensor([0.25, 0.5])
    xt = FlowMatching().interpolate(x0, x1, t)
    assert xt.dtype == torch.bfloat16 and xt[:, 0].tolist() == [0.25, 0.5]
    v = FlowMatching.velocity_from_data(x1, xt, t)
    # (1 - x_t) / (1 - t) = 1 on this path
    assert v.dtype == torch.bfloat16 and v.tolist() == [[1.0] * 3] * 2


def test_guidance_conventions_by_hand():
    c, u = torch.tensor([3.0]), torch.tensor([1.0])
    assert FlowMatching.guide(c, u, 2.0, "ours").item() == 5.0   # 1 + 2 * (3 - 1)
    assert FlowMatching.guide(c, u, 2.0).item() == 5.0  # "ours" by default
    assert FlowMatching.guide(c, u, 2.0, "seed").item() == 7.0   # 3 + 2 * (3 - 1)
    with pytest.raises(ValueError):
        FlowMatching.guide(c, u, 2.0, "other")


def test_euler_sampler_by_hand():
    fm = FlowMatching()
    x0 = torch.tensor([[1.0, -2.0]])
    # dx/dt = x, two Euler steps of 1/2: x0 * 1.5 * 1.5
    out = fm.sample(lambda x, t: x, x0, steps=2)
    assert torch.allclose(out, x0 * 2.25)
    # dx/dt = t: steps at t = 0, 1/4, 1/2, 3/4 of width 1/4: sum = 1.5 / 4
    out = fm.sample(lambda x, t: t[:, None].expand_as(x), x0, steps=4)
    assert torch.allclose(out, x0 + 0.375)

    def never(x, t):
        raise AssertionError("the unconditional velocity is not needed at the neutral weight")

    assert torch.allclose(fm.sample(lambda x, t: torch.ones_like(x), x0, 3, never, weight=1.0), x0 + 1)
    assert torch.allclose(fm.sample(lambda x, t: torch.ones_like(x), x0, 3, never, weight=0.0,
                                    convention="seed"), x0 + 1)
    # guided: u + 3 (c - u) with c = 2, u = 0 -> velocity 6 over a unit of time
    guided = fm.sample(lambda x, t: torch.full_like(x, 2.0), x0, 2,
                       lambda x, t: torch.zeros_like(x), weight=3.0)
    assert torch.allclose(guided, x0 + 6.0)
    seed = fm.sample(lambda x, t: torch.full_like(x, 2.0), x0, 2,
                     lambda x, t: torch.zeros_like(x), weight=1.0, convention="seed")
    assert torch.allclose(seed, x0 + 4.0)  # 2 + 1 * (2 - 0)


def _info_nce_by_definition(a, v, tau):
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    logits = a @ v.T / tau

    def ce(rows):
        from scipy.special import logsumexp

        return float(np.mean([logsumexp(r) - r[i] for i, r in enumerate(rows)]))

    return 0.5 * (ce(logits) + ce(logits.T))


def test_info_nce_by_definition():
    a = np.array([[3.0, 0.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.5, 2.0]])
    v = np.array([[1.0, 0.2, 0.0], [0.0, 2.0, 0.0], [1.0, 0.0, 1.0]])
    for tau in (1.0, 0.07, 0.5):
        got = info_nce(torch.tensor(a), torch.tensor(v), torch.tensor(math.log(tau))).item()
        assert got == pytest.approx(_info_nce_by_definition(a, v, tau), rel=1e-5)
    # two orthogonal pairs at tau = 1: log(1 + e^-1) each way
    eye = torch.eye(2)
    assert info_nce(eye, eye, torch.tensor(0.0)).item() == pytest.approx(math.log(1 + math.exp(-1)))
    # the temperature is clamped at 1e-3
    tiny = info_nce(torch.tensor(a), torch.tensor(v), torch.tensor(-20.0)).item()
    assert tiny == pytest.approx(_info_nce_by_definition(a, v, 1e-3), rel=1e-5)


def test_dpo_loss_by_hand_and_reference_is_frozen():
    err_w = torch.tensor([1.0, 2.0], requires_grad=True)
    err_l = torch.tensor([3.0, 2.0], requires_grad=True)
    ref_w = torch.tensor([2.0, 1.0], requires_grad=True)
    ref_l = torch.tensor([2.0, 2.0], requires_grad=True)
    loss = dpo_flow_loss(err_w, err_l, ref_w, ref_l, beta=0.5)
    # margins: (1 - 3) - (2 - 2) = -2 and (2 - 2) - (1 - 2) = 1
    # -log sigmoid(-0.5 * m): log(1 + e^-1) and log(1 + e^0.5), averaged
    expected = 0.5 * (math.log(1 + math.exp(-1.0)) + math.log(1 + math.exp(0.5)))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    loss.backward()
    assert ref_w.grad is None and ref_l.grad is None  # the reference model is not trained
    # lowering the winner's error lowers the loss: positive gradient; the loser's: negative
    assert (err_w.grad > 0).all() and (err_l.grad < 0).all()
    s = 1 / (1 + math.exp(-1.0))  # sigmoid(0.5 * 2)
    assert err_w.grad[0].item() == pytest.approx(0.5 * 0.5 * (1 - s), rel=1e-6)


def test_batches_are_seeded_permutations_that_cycle():
    from copmodel.schedule import batch_indices, sample_generator

    full = batch_indices(7, 7, seed=3, step=5)
    assert sorted(full) == list(range(7))  # a permutation of the items
    assert batch_indices(7, 4, seed=3, step=5) == full[:4]
    long = batch_indices(7, 17, seed=3, step=5)
    assert long == [full[i % 7] for i in range(17)]  # cycled when the batch is larger
    assert batch_indices(7, 7, seed=3, step=6) != full and batch_indices(7, 7, seed=4, step=5) != full
    assert batch_indices(1, 3, seed=0, step=0) == [0, 0, 0]
    draws = {}
    for key in [(0, 1, 2, 3), (1, 1, 2, 3), (0, 2, 2, 3), (0, 1, 3, 3), (0, 1, 2, 4)]:
        draws[key] = torch.rand(4, generator=sample_generator(*key)).tolist()
        assert torch.rand(4, generator=sample_generator(*key)).tolist() == draws[key]
    assert len({tuple(v) for v in draws.values()}) == 5  # every argument changes the stream


class _RecordingCandidates(_KnownCandidates):
    """Records the seeds and guidance weights the miner asks for; no roll stream."""

    def __init__(self, audios):
        super().__init__(audios)
        self.calls = []

    def conditions(self, clip):
        assert clip.id.startswith("c")
        return {"frames": torch.zeros(1, 2)}

    def generate_features(self, clip, seed, steps, weight, batch=None):
        self.calls.append((seed, steps, weight, sorted(batch)))
        return super().generate_features(clip, seed, steps, weight, batch)


def test_candidate_seeds_weight_and_missing_roll():
    full = render_notes(CHORD, SR, SECONDS)
    wrong = render_notes([Note(n.start + 0.25, n.end + 0.25, n.pitch + 5, n.velocity) for n in CHORD],
                         SR, SECONDS)
    sampler = _RecordingCandidates([full, wrong])
    clip = SimpleNamespace(id="c7", sample_rate=SR, notes=lambda: list(CHORD))
    # candidate k of seed s is drawn with seed 1000 s + k (its features [k] pick audio k)
    pairs, gaps = mine_pairs(sampler, [clip], candidates=2, steps=5, guidance=1.5, seed=0, progress=False)
    assert [c[:3] for c in sampler.calls] == [(0, 5, 1.5), (1, 5, 1.5)]
    assert sampler.calls[0][3] == ["frames"]
    assert pairs[0]["guidance_weight"] == 1.5 and pairs[0]["roll"].shape == (0, 88)
    assert pairs[0]["feats_w"][0, 0].item() == 0.0 and pairs[0]["feats_l"][0, 0].item() == 1.0
    sampler.calls.clear()
    mine_pairs(sampler, [clip], candidates=2, steps=None, guidance=None, seed=3, progress=False)
    assert [c[:3] for c in sampler.calls] == [(3000, None, 3.5), (3001, None, 3.5)]


def test_preferences_file_and_settings_are_checked(tmp_path):
    import copdata
    from copdata import scoring
    from copmodel.errors import CheckpointError
    from copmodel.prefs import load_preferences, make_preferences, ranking_metric

    with pytest.raises(ConfigError, match="at least 2 candidates"):
        make_preferences(tmp_path / "none.pt", tmp_path, tmp_path / "out.pt", candidates=1)
    torch.save({"pairs": "not a list"}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError) as caught:
        load_preferences(tmp_path / "bad.pt")
    assert caught.value.item == str(tmp_path / "bad.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError):
        load_preferences(tmp_path / "list.pt")
    torch.save({"pairs": [], "info": {"seed": 1}}, tmp_path / "ok.pt")
    assert load_preferences(tmp_path / "ok.pt") == {"pairs": [], "info": {"seed": 1}}
    info = ranking_metric()
    assert info["name"] == "midi_note_f1" and info["function"] == "copdata.scoring.note_scores"
    assert info["version"] == f"copdata {copdata.__version__}"
    assert info["onset_tolerance_s"] == scoring.ONSET_TOLERANCE
    assert info["pitch_tolerance_cents"] == scoring.PITCH_TOLERANCE_CENTS
    assert info["transcriber"]["name"]


def test_contrastive_head_starts_at_tau_007_and_pools_after_a_nonlinear_mlp():
    from copmodel.losses import ContrastiveHead

    torch.manual_seed(0)
    head = ContrastiveHead(dim=8, video_dim=5, out_dim=4)
    assert head.log_temp.item() == pytest.approx(math.log(0.07))
    tokens = torch.randn(3, 6, 8)
    # per-token MLP then mean: not the MLP of the mean (the MLP is not linear)
    assert not torch.allclose(head.audio_proj(tokens).mean(1), head.audio_proj(tokens.mean(1)))
    video = torch.randn(3, 5)
    expected = info_nce(head.audio_proj(tokens).mean(1), head.video_proj(video), head.log_temp)
    assert head(tokens, video).item() == pytest.approx(expected.item(), rel=1e-6)


def test_lr_and_roll_schedules_at_their_smallest_lengths():
    assert lr_factor(0, 1, 10) == 1.0  # one warmup step reaches the full rate
    assert lr_factor(1, 0, 1) == pytest.approx(0.1)  # a one-step decay ends at the floor
    assert predicted_roll_probability("scheduled", 2, 1, 1) == 1.0
    assert predicted_roll_probability("scheduled", 2, 0, 1) == 0.0


def test_condition_dropout_draws_by_hand():
    from copmodel.model import CoPModel
    from copmodel.presets import get_preset
    from copmodel.schedule import step_randomness
    from test_model_parts import micro_batch

    def draws(all_rate, each_rate, **kw):
        cfg = get_preset("micro").override(train={"cond_dropout_all": all_rate,
                                                  "cond_dropout": each_rate})
        model = CoPModel(cfg)
        _, lens = micro_batch(cfg)
        return step_randomness(model, lens, list(range(200)), seed=1, stage=2, step=3, **kw), lens, cfg

    none, lens, cfg = draws(0.0, 0.0)
    assert not (none["drop_video"] | none["drop_text"] | none["drop_roll"]).any()
    assert not none["use_predicted_roll"].any()  # p_predicted defaults to 0
    every, _, _ = draws(0.0, 1.0)
    assert (every["drop_video"] & every["drop_text"] & every["drop_roll"]).all()
    joint, _, _ = draws(1.0, 0.0, p_predicted=1.0)
    assert (joint["drop_video"] & joint["drop_text"] & joint["drop_roll"]).all()
    assert joint["use_predicted_roll"].all()
    half, _, half_cfg = draws(0.0, 0.5)
    # each condition is drawn on its own
    assert (half["drop_video"] != half["drop_text"]).any() and (half["drop_text"] != half["drop_roll"]).any()
    assert (half["drop_video"] != half["drop_roll"]).any()
    frames = half["roll_frames"]
    assert frames.shape == (200, cfg.train.roll_frames_per_clip)
    assert int(frames.min()) == 0 and int(frames.max()) == lens.video_frames - 1
    assert half["noise"].shape == (200, CoPModel(cfg).audio.channels, lens.feat_frames)
    assert ((half["t"] > 0) & (half["t"] < 1)).all()
    # every draw depends only on (seed, stage, step, position): the same call repeats it,
    # and a sample's draws do not depend on the other samples of its batch
    again, _, _ = draws(0.0, 0.5)
    alone = step_randomness(CoPModel(half_cfg), lens, [7], seed=1, stage=2, step=3)
    for key, value in half.items():
        assert torch.equal(value, again[key]), key
        assert torch.equal(value[7:8], alone[key]), key


class _FakeState:
    """accelerate.PartialState of one process of ``world`` (rank ``rank``)."""

    def __init__(self, rank=0, world=1):
        self.process_index, self.num_processes = rank, world
        self.is_main_process, self.device = rank == 0, "cpu"
        self.waits = 0

    def wait_for_everyone(self):
        self.waits += 1


class _ScoredSampler:
    """Candidate k of a clip has features ``[k]``; its audio is the clip's score row,
    ``score_candidates`` is replaced by a lookup of those scores."""

    def __init__(self):
        self.cfg = SimpleNamespace(sample=SimpleNamespace(guidance_weight=2.5, steps=9,
                                                          guidance_convention="cfg", sway=-1.0))
        self.ckpt_hash, self.loaded, self.drawn = "abc123", [], []

    def info(self):
        return {"roll": "predicted (probabilities)"}

    def conditions(self, clip):
        return {"roll": torch.full((1, 3, 88), float(clip.index))}

    def generate_features(self, clip, seed, steps, weight, batch=None):
        self.drawn.append((seed, steps, weight))
        return np.full((2, 4), float(seed % 1000), np.float32)

    def vocode(self, features, clip):
        return (clip.index, int(features[0, 0]))


SCORES = {0: [0.2, 0.9, 0.5], 1: [0.4, 0.4, 0.4], 2: [0.7, 0.1, 0.3], 3: [0.0, 0.6, 0.6]}


def _patch_prefs(monkeypatch, state, sampler):
    import accelerate
    import copdata
    import copmodel.prefs as prefs
    clips = [SimpleNamespace(id=f"clip{i}", index=i, sample_rate=SR, notes=lambda: [])
             for i in range(4)]
    opened = []

    class _Data:
        def clips(self, split):
            opened.append(split)
            return iter(clips)

    monkeypatch.setattr(accelerate, "PartialState", lambda: state)
    monkeypatch.setattr(copdata, "open_dataset", lambda path: opened.append(str(path)) or _Data())
    monkeypatch.setattr(prefs, "load_sampler",
                        lambda ckpt, device=None: sampler.loaded.append((str(ckpt), device)) or sampler)
    monkeypatch.setattr(prefs, "score_candidates",
                        lambda audios, sr, notes: [SCORES[c][k] for c, k in audios])
    return opened


def test_make_preferences_writes_the_pairs_and_the_settings(tmp_path, monkeypatch):
    from copmodel.prefs import load_preferences, make_preferences, ranking_metric
    sampler, state = _ScoredSampler(), _FakeState()
    opened = _patch_prefs(monkeypatch, state, sampler)
    out = tmp_path / "p" / "prefs.pt"
    summary = make_preferences("run/last.pt", tmp_path, out, split="valid", candidates=3,
                               limit=3, seed=0, progress=False)
    assert opened == [str(tmp_path), "valid"] and sampler.loaded == [("run/last.pt", "cpu")]
    assert {d[1:] for d in sampler.drawn} == {(None, 2.5)}  # the checkpoint's steps and weight
    prefs = load_preferences(out)
    # clip0: best k=1 (0.9), worst k=0 (0.2); clip1 all equal: no pair; clip2: 0 over 1;
    # clip3 is past the limit
    got = [(p["clip_id"], p["feats_w"][0, 0].item(), p["feats_l"][0, 0].item()) for p in prefs["pairs"]]
    assert got == [("clip0", 1.0, 0.0), ("clip2", 0.0, 1.0)]
    assert [(p["score_w"], p["score_l"]) for p in prefs["pairs"]] == [(0.9, 0.2), (0.7, 0.1)]
    assert torch.equal(prefs["pairs"][1]["roll"], torch.full((3, 88), 2.0))
    assert prefs["pairs"][0]["guidance_weight"] == 2.5
    info = prefs["info"]
    assert info == {"ckpt": "run/last.pt", "ckpt_sha256": "abc123", "data": str(tmp_path),
                    "split": "valid", "candidates": 3, "seed": 0, "steps": 9,
                    "guidance_weight": 2.5, "guidance_convention": "cfg", "sway": -1.0,
                    "track": "tv2a", "roll": "predicted (probabilities)",
                    "metric": ranking_metric(), "clips": 3, "pairs": 2, "processes": 1}
    assert summary == {**info, "mean_gap": pytest.approx((0.7 + 0.6) / 2), "out": str(out)}
    assert not list(out.parent.glob(".*"))  # no temporary file left behind
    # the steps and guidance asked for are the ones used and recorded; the defaults:
    # the train split, seed 0
    sampler.drawn.clear()
    out = tmp_path / "a" / "b" / "prefs.pt"  # parent folders are made
    again = make_preferences("run/last.pt", tmp_path, out, candidates=2, steps=4, guidance=1.0,
                             progress=False, device="cuda:3")
    assert opened[-1] == "train" and again["seed"] == 0
    assert sorted(sampler.drawn) == sorted([(k, 4, 1.0) for k in (0, 1)] * 4)
    assert {p["guidance_weight"] for p in load_preferences(out)["pairs"]} == {1.0}
    assert (again["steps"], again["guidance_weight"], again["clips"]) == (4, 1.0, 4)
    assert sampler.loaded[-1] == ("run/last.pt", "cuda:3")
    # with two candidates: clip0 1 over 0, clip2 0 over 1, clip3 1 over 0; clip1 none
    assert [p["clip_id"] for p in load_preferences(out)["pairs"]] == ["clip0", "clip2", "clip3"]
    assert again["mean_gap"] == pytest.approx((0.7 + 0.6 + 0.6) / 3)
    assert state.waits == 0  # one process: no shards, nothing to wait for
    # four candidates by default, seeds 1000 * seed + k
    sampler.drawn.clear()
    monkeypatch.setitem(SCORES, 0, [0.3, 0.3, 0.3, 0.1])
    monkeypatch.setitem(SCORES, 1, [0.4, 0.4, 0.4, 0.4])
    four = make_preferences("run/last.pt", tmp_path, out, limit=1, seed=2, progress=False)
    assert four["candidates"] == 4 and [d[0] for d in sampler.drawn] == [2000, 2001, 2002, 2003]
    # candidates that all score the same give no pair and a mean gap of 0
    none = make_preferences("run/last.pt", tmp_path, out, limit=2, candidates=3, progress=False)
    assert (none["pairs"], none["mean_gap"]) == (0, 0.0)
    from copmodel.errors import ConfigError
    with pytest.raises(ConfigError) as caught:
        make_preferences("run/last.pt", tmp_path, out, candidates=1)
    assert caught.value.item == "1"


def test_preference_mining_shows_its_progress_only_when_asked(tmp_path, monkeypatch, capsys):
    from copmodel.prefs import make_preferences, mine_pairs
    sampler = _ScoredSampler()
    _patch_prefs(monkeypatch, _FakeState(), sampler)
    make_preferences("c.pt", tmp_path, tmp_path / "p.pt", candidates=3, limit=2)
    err = capsys.readouterr().err
    assert "prefs: 100%" in err and "2/2" in err and "clip/s" in err
    make_preferences("c.pt", tmp_path, tmp_path / "p.pt", candidates=3, limit=2, progress=False)
    assert capsys.readouterr().err == ""
    clips = [SimpleNamespace(id="clip0", index=0, sample_rate=SR, notes=lambda: [])]
    mine_pairs(sampler, clips, 3, None, None, 0)  # a bar by default
    assert "prefs: 100%" in capsys.readouterr().err
    # another process than the main one: no bar whatever is asked
    _patch_prefs(monkeypatch, _FakeState(rank=1, world=2), sampler)
    torch.save({"pairs": [], "gaps": []}, tmp_path / ".q.pt.rank0")
    make_preferences("c.pt", tmp_path, tmp_path / "q.pt", candidates=3, limit=2)
    assert capsys.readouterr().err == ""


def test_old_preference_files_name_the_guidance_weight_cfg_and_the_features_mel(tmp_path):
    from copmodel.prefs import load_preferences
    torch.save({"pairs": [{"clip_id": "a", "cfg": 3.0, "score_w": 1.0, "mel_w": 1, "mel_l": 2},
                          "junk"], "info": {}}, tmp_path / "old.pt")
    assert load_preferences(tmp_path / "old.pt")["pairs"] == [
        {"clip_id": "a", "guidance_weight": 3.0, "score_w": 1.0, "feats_w": 1, "feats_l": 2}]


def test_make_preferences_merges_the_shards_of_two_processes_in_clip_order(tmp_path, monkeypatch):
    from copmodel.prefs import load_preferences, make_preferences
    out = tmp_path / "prefs.pt"
    # rank 1 (clips 1 and 3) has written its shard: clip3's pair, gap 0.6
    rank1 = {"pairs": [{"clip_id": "clip3", "feats_w": torch.zeros(2, 4), "feats_l": torch.ones(2, 4),
                        "roll": torch.zeros(3, 88), "guidance_weight": 2.5,
                        "score_w": 0.6, "score_l": 0.0}], "gaps": [0.6]}
    torch.save(rank1, tmp_path / ".prefs.pt.rank1")
    sampler, state = _ScoredSampler(), _FakeState(rank=0, world=2)
    _patch_prefs(monkeypatch, state, sampler)
    summary = make_preferences("c.pt", tmp_path, out, candidates=3, seed=0, progress=False)
    pairs = load_preferences(out)["pairs"]
    # rank 0 mined clips 0 and 2; the merged file is in the dataset's clip order
    assert [p["clip_id"] for p in pairs] == ["clip0", "clip2", "clip3"]
    assert summary["pairs"] == 3 and summary["processes"] == 2 and summary["clips"] == 4
    assert summary["mean_gap"] == pytest.approx((0.7 + 0.6 + 0.6) / 3)
    assert state.waits == 2 and not (tmp_path / ".prefs.pt.rank0").exists()
    # rank 1 of two writes its shard and no file: the main process writes it
    other = tmp_path / "other"
    other.mkdir()
    torch.save({"pairs": [], "gaps": []}, other / ".prefs.pt.rank0")
    state1 = _FakeState(rank=1, world=2)
    _patch_prefs(monkeypatch, state1, _ScoredSampler())
    make_preferences("c.pt", tmp_path, other / "prefs.pt", candidates=3, seed=0, progress=False)
    assert not (other / "prefs.pt").exists() and not (other / ".prefs.pt.rank1").exists()


def test_contrastive_head_is_a_two_layer_mlp_as_checkpoints_store_it():
    """The audio MLP is Linear(dim, dim) -> GELU -> Linear(dim, out): the parameter names
    and shapes stage-3 checkpoints hold (a checkpoint of another layout does not load)."""
    from copmodel.losses import ContrastiveHead
    head = ContrastiveHead(dim=8, video_dim=5, out_dim=4)
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert shapes == {"audio_proj.0.weight": (8, 8), "audio_proj.0.bias": (8,),
                      "audio_proj.2.weight": (4, 8), "audio_proj.2.bias": (4,),
                      "video_proj.weight": (4, 5), "video_proj.bias": (4,), "log_temp": ()}
    assert isinstance(head.audio_proj[1], torch.nn.GELU)


def test_info_nce_keeps_its_targets_on_the_inputs_device():
    # the meta device stands in for a GPU: a target made on the CPU would not match
    audio, video = torch.randn(3, 4, device="meta"), torch.randn(3, 4, device="meta")
    loss = info_nce(audio, video, torch.tensor(math.log(0.07), device="meta"))
    assert loss.device.type == "meta" and loss.shape == ()


def test_gather_batch_concatenates_the_processes_rows_in_rank_order(monkeypatch):
    import torch.distributed as dist
    import torch.distributed.nn.functional as dist_fn
    from copmodel.losses import gather_batch

    x = torch.arange(6.0).reshape(3, 2)
    assert gather_batch(x) is x  # no process group: the rows themselves
    world = {"size": 2}
    seen = []
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda group=None: world["size"])

    def all_gather(t):  # rank 0's rows, then rank 1's (ours plus 100)
        seen.append(t.is_contiguous())
        return [t, t + 100.0][:world["size"]]
    monkeypatch.setattr(dist_fn, "all_gather", all_gather)
    y = torch.arange(6.0).reshape(2, 3).T  # a non-contiguous view: all_gather needs contiguous
    assert torch.equal(gather_batch(y), torch.cat([y, y + 100.0])) and seen == [True]
    world["size"] = 1  # one process in a group: the rows themselves, nothing gathered
    assert gather_batch(x) is x and seen == [True]
