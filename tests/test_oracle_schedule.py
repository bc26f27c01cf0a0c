"""copmodel.schedule's random draws and errors reproduced independently (issue 21).

The EMA worked by hand and the learning-rate values are in test_oracle_copmodel.py;
here every per-sample draw of :func:`step_randomness` is redrawn from its documented
seed ``(seed, stage, step, position)`` (numpy's SeedSequence, one 32-bit word, seeding
a torch generator) in the documented order: noise, t (logit-normal), the joint
condition dropout, the three single ones, the Roll Predictor frames, the
predicted-roll choice.
"""

import numpy as np
import pytest
import torch

from copmodel.errors import ConfigError
from copmodel.model import CoPModel
from copmodel.presets import get_preset
from copmodel.schedule import predicted_roll_probability, step_randomness
from test_model_parts import micro_batch


def _redraw(seed, stage, step, position, channels, feat_frames, video_frames, tc, flow, p_predicted):
    word = np.random.SeedSequence([seed, stage, step, position]).generate_state(1)[0]
    g = torch.Generator().manual_seed(int(word))
    noise = torch.randn(channels, feat_frames, generator=g)
    t = torch.sigmoid(torch.randn(1, generator=g) * flow.std + flow.mean)[0]
    drop_all = bool(torch.rand(1, generator=g)[0] < tc.cond_dropout_all)
    drops = [bool(u < tc.cond_dropout) or drop_all for u in torch.rand(3, generator=g)]
    frames = torch.randint(0, video_frames, (tc.roll_frames_per_clip,), generator=g)
    use = bool(torch.rand(1, generator=g)[0] < p_predicted)
    return noise, t, drops, frames, use


def test_step_randomness_is_redrawn_from_the_documented_seed_and_order():
    cfg = get_preset("micro").override(train={"cond_dropout_all": 0.25, "cond_dropout": 0.4})
    model = CoPModel(cfg)
    _, lens = micro_batch(cfg)
    positions = list(range(0, 48, 3))
    out = step_randomness(model, lens, positions, seed=11, stage=2, step=4, p_predicted=0.5)
    tc = cfg.train
    for row, p in enumerate(positions):
        noise, t, drops, frames, use = _redraw(11, 2, 4, p, model.audio.channels, lens.feat_frames,
                                               lens.video_frames, tc, model.flow, 0.5)
        assert torch.equal(out["noise"][row], noise)
        assert out["t"][row].item() == t.item()
        assert [bool(out[k][row]) for k in ("drop_video", "drop_text", "drop_roll")] == drops
        assert torch.equal(out["roll_frames"][row], frames)
        assert bool(out["use_predicted_roll"][row]) == use
    # the rates are not degenerate here: each outcome happens in this batch
    for key in ("drop_video", "drop_text", "drop_roll", "use_predicted_roll"):
        assert 0 < int(out[key].sum()) < len(positions), key


def test_unknown_roll_condition_names_itself():
    with pytest.raises(ConfigError, match="true, predicted or scheduled") as caught:
        predicted_roll_probability("sometimes", 2, 0, 10)
    assert caught.value.item == "sometimes"


def test_a_rate_equal_to_the_draw_does_not_drop():
    """A condition is dropped when its uniform is below the rate, strictly: the rates set
    to exactly the uniforms position 0 draws (float32 values, compared as float32)."""
    base = get_preset("micro")
    model = CoPModel(base)
    _, lens = micro_batch(base)
    word = np.random.SeedSequence([3, 2, 9, 0]).generate_state(1)[0]
    g = torch.Generator().manual_seed(int(word))
    torch.randn(model.audio.channels, lens.feat_frames, generator=g)
    torch.randn(1, generator=g)  # t
    u_all = torch.rand(1, generator=g)[0].item()
    u_each = torch.rand(3, generator=g)
    torch.randint(0, lens.video_frames, (base.train.roll_frames_per_clip,), generator=g)
    u_pred = torch.rand(1, generator=g)[0].item()
    cfg = base.override(train={"cond_dropout_all": u_all, "cond_dropout": u_each[0].item()})
    out = step_randomness(CoPModel(cfg), lens, [0], seed=3, stage=2, step=9, p_predicted=u_pred)
    assert not out["drop_video"][0] and not out["use_predicted_roll"][0]
    assert [bool(out[k][0]) for k in ("drop_text", "drop_roll")] == [bool(u < u_each[0]) for u in u_each[1:]]


def test_every_draw_is_made_on_the_given_device(monkeypatch):
    """Stand-ins for torch's samplers record the device each draw is asked for: the
    generator, the noise, t, the dropouts, the frames and the choice all get the device
    passed in (a CPU device object here; on a GPU these are CUDA draws)."""
    import copmodel.schedule as schedule

    cfg = get_preset("micro")
    model = CoPModel(cfg)
    _, lens = micro_batch(cfg)
    device = torch.device("cpu")
    seen = []
    real = {name: getattr(torch, name) for name in ("randn", "rand", "randint", "Generator")}

    def spy(name):
        def draw(*args, **kwargs):
            seen.append((name, kwargs.get("device")))
            return real[name](*args, **kwargs)
        return draw

    for name in real:
        monkeypatch.setattr(schedule.torch, name, spy(name))
    sample_t = model.flow.sample_t
    monkeypatch.setattr(model.flow, "sample_t", lambda n, generator=None, device="unset":
                        seen.append(("sample_t", device)) or sample_t(n, generator=generator, device=device))
    step_randomness(model, lens, [0, 1], seed=1, stage=1, step=0, device=device)
    names = [name for name, _ in seen]
    # per position: generator, noise, t (sample_t and its own randn), 1 + 3 uniforms, frames, choice
    assert names == ["Generator", "randn", "sample_t", "randn", "rand", "rand", "randint", "rand"] * 2
    assert all(isinstance(d, torch.device) and d == device for _, d in seen), seen


def test_batches_are_randperm_seeded_by_seed_and_step():
    for seed, step, n in ((3, 5, 7), (0, 0, 4), (2, 11, 9)):
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        perm = torch.randperm(n, generator=g).tolist()
        from copmodel.schedule import batch_indices
        assert batch_indices(n, n + 3, seed, step) == perm + perm[:3]


def test_ema_state_dict_is_a_copy():
    from copmodel.schedule import EMA

    model = torch.nn.Linear(2, 1)
    ema = EMA(model, decay=0.9)
    stored = ema.state_dict()
    assert set(stored) == {"weight", "bias"} and all(v.device.type == "cpu" for v in stored.values())
    before = ema.state["weight"].clone()
    stored["weight"].add_(1.0)  # changing what was stored leaves the EMA as it was
    assert torch.equal(ema.state["weight"], before)
    assert stored["weight"].data_ptr() != ema.state["weight"].data_ptr()


def test_ema_state_dict_asks_for_cpu_copies(monkeypatch):
    """On a CPU-only machine a copy "to the CPU" and a copy "where it is" look alike, so a
    stand-in for ``Tensor.to`` records what is asked: the CPU, as a copy, for every tensor
    (a GPU run of the test below checks the tensors themselves)."""
    from copmodel.schedule import EMA

    ema = EMA(torch.nn.Linear(2, 1), decay=0.9)
    asked = []
    real_to = torch.Tensor.to

    def to(self, *args, **kwargs):
        asked.append((args, kwargs))
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "to", to)
    ema.state_dict()
    assert asked == [(("cpu",), {"copy": True})] * 2


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_draws_stay_there_and_the_ema_is_stored_on_the_cpu():
    from copmodel.schedule import EMA

    cfg = get_preset("micro")
    model = CoPModel(cfg)
    _, lens = micro_batch(cfg)
    out = step_randomness(model, lens, [0, 1], seed=1, stage=2, step=0, device="cuda")
    assert all(v.device.type == "cuda" for v in out.values())
    ema = EMA(torch.nn.Linear(2, 1).cuda(), decay=0.9)
    assert all(v.device.type == "cpu" for v in ema.state_dict().values())
