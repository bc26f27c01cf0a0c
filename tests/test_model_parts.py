"""copmodel parts: shapes, zero-init, flow matching on a toy problem, DPO, InfoNCE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from copmodel.flow import FlowMatching
from copmodel.losses import dpo_flow_loss, info_nce
from copmodel.model import CoPModel
from copmodel.presets import SeqLens, get_preset
from copmodel.errors import ConfigError
from copmodel.roll_predictor import frame_f1
from copmodel.text import tokenize


def micro_batch(cfg, seconds=1.0, fps=25.0, b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    lens = SeqLens.derive(seconds, fps, cfg.audio, cfg.net.patch)
    n = cfg.net
    batch = {
        "feats": torch.randn(b, cfg.audio.n_mels, lens.feat_frames, generator=g),
        "frames": torch.randint(0, 256, (b, lens.video_frames, n.frame_height, n.frame_width),
                                generator=g).to(torch.uint8),
        "roll": (torch.rand(b, lens.video_frames, 88, generator=g) > 0.9).float(),
        "text": torch.randint(2, n.text_vocab, (b, n.text_max_tokens), generator=g),
        "text_mask": torch.ones(b, n.text_max_tokens, dtype=torch.bool),
    }
    return batch, lens


def perturb_zero_layers(module: torch.nn.Module, seed: int = 1) -> None:
    """Give every parameter a nonzero random value so outputs depend on inputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)


def test_seq_lens_derive_and_check():
    cfg = get_preset("tiny")
    lens = SeqLens.derive(10.0, 25.0, cfg.audio, cfg.net.patch)
    assert lens.audio_samples == 160000
    assert lens.feat_frames == 500 and lens.tokens == 250 and lens.video_frames == 250
    assert lens.frame_of_token()[:3] == [0, 1, 2]
    odd = SeqLens.derive(5.03, 30.0, cfg.audio, cfg.net.patch)
    assert odd.feat_frames % cfg.net.patch == 0 and odd.tokens * 2 == odd.feat_frames
    with pytest.raises(ConfigError):
        SeqLens.derive(0.0, 25.0, cfg.audio, 2)
    with pytest.raises(ConfigError):
        get_preset("huge")


def test_shapes_all_stages():
    cfg = get_preset("micro")
    model = CoPModel(cfg)
    batch, lens = micro_batch(cfg)
    b = batch["feats"].shape[0]
    rand = {"noise": torch.randn_like(batch["feats"]), "t": torch.rand(b),
            "drop_video": torch.zeros(b, dtype=torch.bool), "drop_text": torch.ones(b, dtype=torch.bool),
            "drop_roll": torch.zeros(b, dtype=torch.bool),
            "roll_frames": torch.randint(0, lens.video_frames, (b, 4))}
    for stage, keys in ((1, {"flow"}), (2, {"flow", "roll_bce"}), (3, {"flow", "contrastive"})):
        out = model(batch, rand, stage)
        assert keys | {"loss"} == set(out)
        assert torch.isfinite(out["loss"])
    logits = model.roll_predictor(batch["frames"])
    assert logits.shape == (b, lens.video_frames, 88)
    gen = model.generate(batch, torch.randn_like(batch["feats"]), 2, steps=2, guidance=2.0)
    assert gen.shape == batch["feats"].shape


def test_fresh_extra_dit_leaves_stage1_output_unchanged():
    cfg = get_preset("micro")
    torch.manual_seed(0)
    model = CoPModel(cfg).eval()
    perturb_zero_layers(model.dit)  # a "trained" stage-1 network with a nonzero output
    batch, lens = micro_batch(cfg)
    b = batch["feats"].shape[0]
    no = torch.zeros(b, dtype=torch.bool)
    x, t = torch.randn_like(batch["feats"]), torch.full((b,), 0.3)
    with torch.no_grad():
        v1 = model.velocity(x, t, model.conditions(batch, lens.tokens, no, no))
        v2 = model.velocity(x, t, model.conditions(batch, lens.tokens, no, no, no, batch["roll"]))
    assert v1.abs().mean() > 1e-3
    assert torch.equal(v1, v2)
    # ...and once the zero projections move, the roll changes the output
    perturb_zero_layers(model.extra, seed=2)
    with torch.no_grad():
        v3 = model.velocity(x, t, model.conditions(batch, lens.tokens, no, no, no, batch["roll"]))
    assert (v3 - v1).abs().mean() > 1e-4


def test_fresh_dit_outputs_zero_and_data_prediction_gives_velocity():
    cfg = get_preset("micro")
    model = CoPModel(cfg)
    batch, lens = micro_batch(cfg)
    no = torch.zeros(2, dtype=torch.bool)
    cond = model.conditions(batch, lens.tokens, no, no)
    t = torch.tensor([0.25, 0.75])
    assert torch.count_nonzero(model.predict(batch["feats"], t, cond)) == 0
    # data prediction: x1_hat = 0 -> v = (0 - x_t) / (1 - t)
    v = model.velocity(batch["feats"], t, cond)
    assert torch.allclose(v, -batch["feats"] / (1 - t)[:, None, None], rtol=1e-5, atol=1e-6)
    vel = CoPModel(cfg.override(net={"prediction": "velocity"}))
    assert torch.count_nonzero(vel.velocity(batch["feats"], t, vel.conditions(batch, lens.tokens, no, no))) == 0


def test_data_prediction_error_is_weighted_velocity_error():
    flow = FlowMatching()
    g = torch.Generator().manual_seed(0)
    x0, x1, x1_hat = (torch.randn(5, 3, 4, generator=g) for _ in range(3))
    t = torch.rand(5, generator=g)
    xt = flow.interpolate(x0, x1, t)
    v_err = flow.per_sample_loss(flow.velocity_from_data(x1_hat, xt, t), x0, x1)
    assert torch.allclose(flow.per_sample_data_loss(x1_hat, x1), v_err * (1 - t) ** 2, rtol=1e-4)


def gaussian_velocity(x, t, m, s):
    """Exact marginal velocity E[x1 - x0 | x_t] for x1 ~ N(m, s^2), x0 ~ N(0, 1)."""
    t = t[:, None]
    var = (1 - t) ** 2 + (t * s) ** 2
    return m + (t * s ** 2 - (1 - t)) / var * (x - t * m)


def test_flow_loss_is_minimised_by_true_velocity():
    flow = FlowMatching()
    g = torch.Generator().manual_seed(0)
    n, m, s = 200_000, 2.0, 0.5
    x1 = m + s * torch.randn(n, 1, generator=g)
    x0 = torch.randn(n, 1, generator=g)
    t = flow.sample_t(n, generator=g)
    assert 0 < float(t.min()) and float(t.max()) < 1
    xt = flow.interpolate(x0, x1, t)
    v_true = gaussian_velocity(xt, t, m, s)
    best = flow.per_sample_loss(v_true, x0, x1).mean()
    for wrong in (v_true * 1.1, v_true * 0.9, v_true + 0.1, v_true - 0.1,
                  gaussian_velocity(xt, t, m + 0.2, s), gaussian_velocity(xt, t, m, s * 1.3)):
        assert flow.per_sample_loss(wrong, x0, x1).mean() > best
    # the conditional target itself has zero loss
    assert float(flow.per_sample_loss(x1 - x0, x0, x1).max()) < 1e-10
    # and integrating the true velocity turns noise into the data distribution
    out = flow.sample(lambda x, tt: gaussian_velocity(x, tt, m, s),
                      torch.randn(50_000, 1, generator=g), steps=200)
    assert abs(float(out.mean()) - m) < 0.02
    assert abs(float(out.std()) - s) < 0.02


def test_cfg_guidance_combines_velocities():
    flow = FlowMatching()
    x0 = torch.zeros(3, 2)
    out = flow.sample(lambda x, t: torch.ones_like(x), x0, steps=4,
                      uncond_fn=lambda x, t: torch.zeros_like(x), weight=2.5)
    assert torch.allclose(out, torch.full_like(out, 2.5))


def test_sampling_is_deterministic_under_seed():
    cfg = get_preset("micro")
    torch.manual_seed(0)
    model = CoPModel(cfg).eval()
    perturb_zero_layers(model)
    batch, lens = micro_batch(cfg, b=1)

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return model.generate(batch, torch.randn(1, 16, lens.feat_frames, generator=g), 2, 3, 2.0)

    a, b, c = run(7), run(7), run(8)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_dpo_loss_value_and_gradient_signs():
    beta = 10.0
    err_w = torch.tensor([0.5], requires_grad=True)
    err_l = torch.tensor([0.5], requires_grad=True)
    ref_w, ref_l = torch.tensor([0.5]), torch.tensor([0.5])
    loss = dpo_flow_loss(err_w, err_l, ref_w, ref_l, beta)
    assert abs(float(loss.detach()) - math.log(2)) < 1e-6  # policy == reference
    loss.backward()
    # lowering the winner's error lowers the loss; lowering the loser's raises it
    assert float(err_w.grad) > 0 and float(err_l.grad) < 0
    assert abs(float(err_w.grad) - beta / 2) < 1e-5
    better = dpo_flow_loss(torch.tensor([0.4]), torch.tensor([0.6]), ref_w, ref_l, beta)
    worse = dpo_flow_loss(torch.tensor([0.6]), torch.tensor([0.4]), ref_w, ref_l, beta)
    assert float(better) < math.log(2) < float(worse)


def test_dpo_through_the_model_prefers_the_winner():
    """One gradient step on the DPO loss lowers the winner's flow error relative to the loser's."""
    cfg = get_preset("micro").override(train={"dpo_beta": 50.0})
    torch.manual_seed(0)
    model = CoPModel(cfg)
    perturb_zero_layers(model.dit)
    ref = CoPModel(cfg)
    ref.load_state_dict(model.state_dict())
    batch, lens = micro_batch(cfg, b=2)
    pairs = {**batch, "feats_w": batch["feats"], "feats_l": batch["feats"].flip(-1) + 1.0}
    rand = {"noise": torch.randn_like(batch["feats"]), "t": torch.full((2,), 0.5)}
    model.set_stage(3)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)
    with torch.no_grad():
        ref_err = ref.pair_errors(pairs, rand)
    ew, el = model.pair_errors(pairs, rand)
    loss = dpo_flow_loss(ew, el, *ref_err, beta=50.0)
    loss.backward()
    opt.step()
    with torch.no_grad():
        ew2, el2 = model.pair_errors(pairs, rand)
    assert float((ew2 - el2).mean()) < float((ew - el).mean())


def test_info_nce_prefers_matching_pairs():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 8, generator=g)
    log_t = torch.tensor(math.log(0.07))
    matched = info_nce(a, a + 0.01 * torch.randn(6, 8, generator=g), log_t)
    shuffled = info_nce(a, a[torch.tensor([1, 2, 3, 4, 5, 0])], log_t)
    assert float(matched) < 0.1 < float(shuffled)


def test_frame_f1_and_tokenizer():
    roll = torch.zeros(4, 88)
    roll[:2, 40] = 1
    pred = torch.zeros(4, 88)
    pred[:1, 40] = 1
    pred[3, 10] = 1
    s = frame_f1(pred, roll)
    assert s["precision"] == 0.5 and s["recall"] == 0.5 and s["f1"] == 0.5
    ids, mask = tokenize("Plays C4 and E4", vocab=64, max_tokens=8)
    assert ids[0] == 1 and mask.sum() == 5 and (ids[mask][1:] >= 2).all()
    ids2, _ = tokenize("plays c4 and e4", vocab=64, max_tokens=8)
    assert np.array_equal(ids, ids2)
