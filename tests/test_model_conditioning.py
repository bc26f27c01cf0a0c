"""Roll conditioning modes, condition dropout, guidance conventions, sway sampling,
the video-free contrastive loss and DPO's consistency checks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from copmodel.errors import ConfigError
from copmodel.flow import FlowMatching
from copmodel.model import CoPModel
from copmodel.presets import get_preset
from copmodel.train import Trainer, predicted_roll_probability, step_randomness
from test_model_parts import micro_batch, perturb_zero_layers
from test_model_train import make_tensors


def test_all_conditions_are_dropped_jointly_at_the_documented_rate():
    cfg = get_preset("micro").override(train={"cond_dropout_all": 0.2, "cond_dropout": 0.05})
    model = CoPModel(cfg)
    _, lens = micro_batch(cfg)
    rand = step_randomness(model, lens, list(range(2000)), seed=0, stage=2, step=0)
    all_three = rand["drop_video"] & rand["drop_text"] & rand["drop_roll"]
    video_only = rand["drop_video"] & ~rand["drop_text"] & ~rand["drop_roll"]
    # joint rate 0.2 + 0.8 * 0.05^3; a lone video drop 0.8 * 0.05 * 0.95^2
    assert 0.17 < float(all_three.float().mean()) < 0.23
    assert 0.02 < float(video_only.float().mean()) < 0.05
    flat = step_randomness(model, lens, list(range(2000)), seed=0, stage=2, step=0,
                           p_predicted=0.3)["use_predicted_roll"].float().mean()
    assert 0.26 < float(flat) < 0.34


def test_predicted_roll_schedule():
    assert predicted_roll_probability("true", 2, 50, 100) == 0.0
    assert predicted_roll_probability("predicted", 2, 0, 100) == 1.0
    assert predicted_roll_probability("scheduled", 2, 25, 100) == 0.25
    assert predicted_roll_probability("scheduled", 2, 25, 0) == 0.0  # ground truth in stage 2
    assert predicted_roll_probability("scheduled", 3, 0, 100) == 1.0
    assert predicted_roll_probability("scheduled", 1, 50, 100) == 0.0
    with pytest.raises(ConfigError):
        predicted_roll_probability("soft", 2, 0, 10)


def test_roll_condition_forms_in_training_and_sampling():
    cfg = get_preset("micro")
    torch.manual_seed(0)
    model = CoPModel(cfg).eval()
    perturb_zero_layers(model.roll_predictor)
    batch, _ = micro_batch(cfg, b=2)
    mixed = model.roll_condition(batch, torch.tensor([True, False]))
    soft = model.roll_predictor.probabilities(batch["frames"])
    assert torch.allclose(mixed[0], soft[0]) and torch.equal(mixed[1], batch["roll"][1])
    assert ((soft > 0) & (soft < 1)).all()  # probabilities, not a binary roll
    assert torch.equal(model.roll_condition(batch, torch.tensor([False, False])), batch["roll"])
    assert torch.allclose(model.sampling_roll(batch["frames"]), soft)
    hard = CoPModel(cfg.override(train={"roll_condition": "true"})).eval()
    hard.load_state_dict(model.state_dict())
    binary = hard.sampling_roll(batch["frames"])
    assert set(binary.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(binary, (soft > cfg.sample.roll_threshold).float())


def test_guidance_conventions_and_sway():
    flow = FlowMatching()
    c, u = torch.tensor([1.0]), torch.tensor([0.0])
    assert float(flow.guide(c, u, 2.0, "ours")) == 2.0
    assert float(flow.guide(c, u, 2.0, "seed")) == 3.0  # seed w = ours w + 1
    assert float(flow.guide(c, u, 0.0, "seed")) == 1.0
    x = flow.sample(lambda x, t: torch.ones_like(x), torch.zeros(2, 3), 4,
                    uncond_fn=lambda x, t: torch.zeros_like(x), weight=1.5, convention="seed")
    assert torch.allclose(x, torch.full_like(x, 2.5))
    uniform, sway = flow.timesteps(8), flow.timesteps(8, sway=-1.0)
    assert float(sway[0]) == 0.0 and abs(float(sway[-1]) - 1.0) < 1e-6
    assert (sway[1:] > sway[:-1]).all() and (sway[1:-1] < uniform[1:-1]).all()
    # the seed's null branch keeps the roll; ours drops it
    cfg = get_preset("micro")
    model = CoPModel(cfg).eval()
    batch, lens = micro_batch(cfg, b=1)
    n = lens.tokens
    keep = model.null_conditions(batch, n, batch["roll"], "seed").roll
    drop = model.null_conditions(batch, n, batch["roll"], "ours").roll
    no = torch.zeros(1, dtype=torch.bool)
    assert torch.equal(keep, model.conditions(batch, n, no, no, no, batch["roll"]).roll)
    assert not torch.equal(keep, drop)


def _contrastive_run(cfg, matched: bool, steps: int = 20) -> list[float]:
    """Train only what the contrastive loss reaches; audio is either fresh noise every
    step (unrelated to the video) or a fixed function of each clip's video."""
    torch.manual_seed(0)
    model = CoPModel(cfg)
    model.set_stage(3)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-2)
    batch, _ = micro_batch(cfg, b=8, seed=1)
    g = torch.Generator().manual_seed(2)
    # each clip's video is distinct: a brightness level per clip plus noise
    levels = torch.arange(8).reshape(8, 1, 1, 1) * 28
    batch["frames"] = (levels + torch.randint(0, 20, batch["frames"].shape, generator=g)).to(
        torch.uint8)
    signature = torch.randn(8, batch["feats"].shape[1], 1, generator=g).expand_as(batch["feats"])
    losses = []
    for _ in range(steps):
        audio = signature * 3 if matched else torch.randn(batch["feats"].shape, generator=g)
        b = {**batch, "feats": audio}
        rand = {"noise": torch.randn(audio.shape, generator=g), "t": torch.full((8,), 0.8),
                **{k: torch.zeros(8, dtype=torch.bool) for k in ("drop_video", "drop_text",
                                                                 "drop_roll")}}
        out = model(b, rand, stage=3)
        opt.zero_grad()
        out["contrastive"].backward()
        opt.step()
        losses.append(float(out["contrastive"].detach()))
    return losses


def test_noise_only_audio_cannot_lower_the_contrastive_loss():
    cfg = get_preset("micro").override(train={"contrastive_weight": 1.0})
    chance = math.log(8)
    noise = _contrastive_run(cfg, matched=False)
    assert sum(noise[-5:]) / 5 > 0.9 * chance, noise[-5:]
    matched = _contrastive_run(cfg, matched=True)  # the test can fail: real signal lowers it
    assert sum(matched[-5:]) / 5 < 0.6 * chance, matched[-5:]


def test_dpo_without_pairs_is_a_clear_error(tmp_path):
    cfg = get_preset("micro")
    data = make_tensors(cfg)
    with pytest.raises(ConfigError, match="no preference pair"):
        Trainer(3, cfg, data, tmp_path, prefs={"pairs": [], "info": {}}, progress=False)


def test_dpo_scores_pairs_with_their_roll_and_guidance():
    cfg = get_preset("micro")
    torch.manual_seed(0)
    model = CoPModel(cfg).eval()
    perturb_zero_layers(model)
    batch, _ = micro_batch(cfg, b=2)
    rand = {"noise": torch.randn_like(batch["feats"]), "t": torch.full((2,), 0.5)}
    pairs = {**batch, "feats_w": batch["feats"], "feats_l": batch["feats"].flip(-1)}
    plain = model.pair_errors(pairs, rand)
    guided = model.pair_errors({**pairs, "guidance_weight": torch.full((2,), 2.0)}, rand)
    other_roll = model.pair_errors({**pairs, "roll": 1 - pairs["roll"]}, rand)
    for a, b in ((plain, guided), (plain, other_roll)):
        assert not torch.allclose(a[0], b[0])
    neutral = model.pair_errors({**pairs, "guidance_weight": torch.ones(2)}, rand)  # ours: w = 1 is no guidance
    assert torch.allclose(plain[0], neutral[0], rtol=1e-5)


def test_dpo_policy_starts_equal_to_its_reference(tmp_path):
    """Stage 3 starts from stage 2's EMA, the weights that mined the pairs, so the DPO
    loss of the first step is log 2; from the raw weights it was far from it (and
    saturated to 0 within a few steps in the demo)."""
    from copmodel.ckpt import file_hash, load_checkpoint
    from copmodel.losses import dpo_flow_loss
    from copmodel.train import attach_pairs, train

    cfg = get_preset("micro").override(train={"lr": 3e-3, "warmup_steps": 1, "ema_decay": 0.9,
                                              "dpo_beta": 5000.0})
    data = make_tensors(cfg)
    train(1, cfg, data, tmp_path, max_steps=3, progress=False)
    ck2 = Path(train(2, cfg, data, tmp_path, max_steps=8, progress=False)["ckpt"])
    saved = load_checkpoint(ck2)
    assert any(not torch.equal(saved["weights"][k], saved["ema"][k]) for k in saved["ema"])
    item = data[0]
    pairs = [{"clip_id": data.ids[0], "feats_w": item["feats"], "feats_l": item["feats"].flip(-1),
              "roll": item["roll"], "guidance_weight": 2.0}]
    prefs = attach_pairs({"pairs": pairs, "info": {"ckpt": str(ck2),
                                                   "ckpt_sha256": file_hash(ck2)}}, data)
    trainer = Trainer(3, cfg, data, tmp_path, prefs=prefs, progress=False)
    # stage 3 fine-tunes at train.lr * train.stage3_lr_scale
    assert trainer.opt.param_groups[0]["initial_lr"] == pytest.approx(3e-3 * 0.2)
    for k, v in trainer.core.state_dict().items():
        assert torch.equal(v, saved["ema"][k]), k
    pair_batch, pair_rand, ref_err = trainer.dpo_batch(0)
    with torch.no_grad():
        err = trainer.core.pair_errors(pair_batch, pair_rand)
    loss = dpo_flow_loss(*err, *ref_err, beta=cfg.train.dpo_beta)
    assert float(loss) == pytest.approx(math.log(2), rel=1e-4)
