"""copmodel's GPU-readiness, checked on a CPU: the EMA follows the prepared model's
device, resume across process/GPU counts, precision as a config field, gradient
accumulation, AdamW parameter groups, DDP's unused-parameter search, torch
Griffin-Lim (parity with librosa) and spectral front ends that follow their device.

A device move is simulated with ``meta`` (a device without data: a tensor left on
the CPU stays visibly on the CPU, and mixing the two raises as CPU and CUDA do)."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState

from copmodel.ckpt import load_checkpoint, save_checkpoint, set_cuda_rng_states
from copmodel.data import collate
from copmodel.model import CoPModel
from copmodel.presets import AudioConfig, get_preset, load_config
from copmodel.schedule import step_randomness
from copmodel.train import (FIND_UNUSED, Trainer, make_accelerator, param_groups,
                            resolve_precision, train)

sys.path.insert(0, str(Path(__file__).parent))
from test_model_train import make_tensors  # noqa: E402


class MetaAccelerator(Accelerator):
    """``prepare`` that also moves the model to the ``meta`` device, as a GPU run moves
    it to ``cuda``: whatever was built from the model before the move stays on the CPU."""

    def prepare(self, *objects):
        out = super().prepare(*objects)
        out[0].to("meta")
        return out


def test_ema_is_built_on_the_prepared_models_device_fresh_and_on_resume(tmp_path):
    cfg = get_preset("micro")
    data = make_tensors(cfg)
    fresh = Trainer(1, cfg, data, tmp_path, progress=False, accelerator=MetaAccelerator(cpu=True))
    assert {p.device.type for p in fresh.core.parameters()} == {"meta"}
    # old code: EMA cloned from the CPU model before prepare -> CPU tensors beside a meta
    # (cuda) model, and EMA.update adds one into the other
    assert {v.device.type for v in fresh.ema.state.values()} == {"meta"}
    train(1, cfg, data, tmp_path, max_steps=1, progress=False)
    stored = load_checkpoint(tmp_path / "stage1" / "last.ckpt")
    assert {v.device.type for v in stored["ema"].values()} == {"cpu"}  # checkpoints: CPU copies
    resumed = Trainer(1, cfg, data, tmp_path, resume=True, progress=False,
                      accelerator=MetaAccelerator(cpu=True))
    # old code: ``ema.state = ckpt["ema"]`` kept the stored CPU tensors
    assert {v.device.type for v in resumed.ema.state.values()} == {"meta"}


def test_ema_loads_stored_values_and_hands_out_cpu_copies(tmp_path):
    cfg = get_preset("micro")
    data = make_tensors(cfg)
    train(1, cfg, data, tmp_path, max_steps=2, progress=False)
    stored = load_checkpoint(tmp_path / "stage1" / "last.ckpt")["ema"]
    t = Trainer(1, cfg, data, tmp_path, resume=True, progress=False)
    for k, v in stored.items():
        assert torch.equal(t.ema.state[k], v), k
    copy = t.ema.state_dict()
    key = "dit.out.weight" if "dit.out.weight" in copy else next(iter(copy))
    copy[key].add_(1.0)  # a copy: changing it leaves the EMA alone
    assert torch.equal(t.ema.state[key], stored[key])


def _fake_cuda(monkeypatch, devices: int) -> list:
    """torch.cuda with ``devices`` GPUs whose set_rng_state records (index, state) and
    raises IndexError for an index that does not exist (as CUDA does)."""
    calls = []

    def set_rng_state(state, device="cuda"):
        index = device if isinstance(device, int) else 0
        if index >= devices:
            raise IndexError(f"no CUDA device {index}")
        calls.append((index, int(state[0])))

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: devices)
    monkeypatch.setattr(torch.cuda, "set_rng_state", set_rng_state)
    monkeypatch.setattr(torch.cuda.random, "set_rng_state", set_rng_state)
    return calls


def test_cuda_rng_states_of_8_gpus_resume_on_1_and_of_1_on_8(monkeypatch):
    eight = [torch.full((16,), i, dtype=torch.uint8) for i in range(8)]
    calls = _fake_cuda(monkeypatch, devices=1)
    # old code: torch.cuda.set_rng_state_all(eight) -> IndexError on GPU 1
    assert set_cuda_rng_states(eight) == 1
    assert calls == [(0, 0)]
    calls = _fake_cuda(monkeypatch, devices=8)
    assert set_cuda_rng_states(eight[3:4]) == 1
    assert calls == [(0, 3)]


def test_a_checkpoint_written_by_8_processes_resumes_on_1(tmp_path):
    cfg = get_preset("micro")
    data = make_tensors(cfg)
    train(1, cfg, data, tmp_path, max_steps=2, progress=False)
    path = tmp_path / "stage1" / "last.ckpt"
    ckpt = load_checkpoint(path)
    ckpt["rng"]["cuda"] = [torch.zeros(16, dtype=torch.uint8) for _ in range(8)]
    ckpt["world_size"] = 8
    save_checkpoint(path, {k: v for k, v in ckpt.items() if k != "format"})
    out = load_checkpoint(train(1, cfg, data, tmp_path, max_steps=3, resume=True,
                                progress=False)["ckpt"])
    assert out["step"] == 3 and out["world_size"] == 1


def test_precision_is_a_config_field():
    # worked by hand: auto = bf16 on a bf16 GPU, fp32 on an older GPU or a CPU
    assert resolve_precision("auto", cuda=True, bf16_supported=True) == "bf16"
    assert resolve_precision("auto", cuda=True, bf16_supported=False) == "no"
    assert resolve_precision("auto", cuda=False, bf16_supported=False) == "no"
    assert resolve_precision("fp16", cuda=True, bf16_supported=True) == "fp16"
    from copmodel.errors import ConfigError

    with pytest.raises(ConfigError, match="fp16"):
        resolve_precision("fp16", cuda=False, bf16_supported=False)
    with pytest.raises(ConfigError, match="mixed_precision"):
        load_config("micro", ["train.mixed_precision=fp8"])
    cfg = get_preset("micro").with_settings(["train.mixed_precision=bf16"])
    AcceleratorState._reset_state(True)
    try:
        acc = make_accelerator(cfg, 1)
        assert acc.mixed_precision == "bf16"
        t = Trainer(1, cfg, make_tensors(cfg), "/nonexistent-unused", progress=False,
                    accelerator=acc)
        with t.acc.autocast():
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
        row = t.step()
        assert np.isfinite(row["loss"])
    finally:
        AcceleratorState._reset_state(True)
    assert make_accelerator(get_preset("micro"), 1).mixed_precision == "no"  # auto on a CPU


def test_gradient_accumulation_equals_one_bigger_micro_batch(tmp_path):
    cfg = get_preset("micro").override(train={"batch_size": 4, "max_steps": 2})
    data = make_tensors(cfg)
    init = train(1, cfg, data, tmp_path / "s1", max_steps=1, progress=False)["ckpt"]

    def stage2(config, name):  # stage 2: flow loss + roll stream + Roll Predictor BCE
        return load_checkpoint(train(2, config, data, tmp_path / name, init=init,
                                     progress=False)["ckpt"])

    whole = stage2(cfg, "a")
    quarters = stage2(cfg.override(train={"grad_accum": 4}), "c")  # micro-batches of one
    for k, v in whole["weights"].items():
        assert torch.allclose(v.float(), quarters["weights"][k].float(), rtol=1e-4, atol=2e-6), k
    # the comparison can fail: half the batch (what a wrong slicing would train on) differs
    half = stage2(cfg.override(train={"batch_size": 2}), "d")
    assert not torch.allclose(half["weights"]["dit.out.weight"],
                              whole["weights"]["dit.out.weight"], rtol=1e-4, atol=2e-6)
    from copmodel.errors import ConfigError

    with pytest.raises(ConfigError, match="accumulation"):
        stage2(cfg.override(train={"grad_accum": 3}), "e")


def test_adamw_groups_leave_norms_biases_nulls_and_temperature_undecayed():
    cfg = get_preset("micro")
    model = CoPModel(cfg)
    model.set_stage(3)
    decay, keep = param_groups(model, 0.01)
    assert decay["weight_decay"] == 0.01 and keep["weight_decay"] == 0.0
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert set(decay["names"]) | set(keep["names"]) == trainable
    assert not set(decay["names"]) & set(keep["names"])
    # worked by hand from the module tree
    for name in ("contrastive.log_temp", "dit.null_video", "dit.null_text", "extra.null_roll",
                 "dit.out.bias"):
        assert name in keep["names"], name
    assert "dit.out.weight" in decay["names"] and "text_encoder.pos" in decay["names"]
    assert all(not n.endswith(".bias") for n in decay["names"])
    norms = [n for n, m in model.named_modules() if isinstance(m, (torch.nn.LayerNorm,
                                                                   torch.nn.GroupNorm))]
    for n in norms:
        for leaf, p in dict(model.get_submodule(n).named_parameters()).items():
            if p.requires_grad:
                assert f"{n}.{leaf}" in keep["names"]
    linears = [f"{n}.weight" for n, m in model.named_modules()
               if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.Conv1d))]
    assert {n for n in linears if n in trainable} <= set(decay["names"])
    assert "dit.null_text" in keep["names"] and model.dit.null_text.ndim == 2  # by name, not shape
    # the trainer's optimizer uses these groups
    opt_groups = Trainer(1, cfg, make_tensors(cfg), "/nonexistent-unused",
                         progress=False).opt.param_groups
    assert [g["weight_decay"] for g in opt_groups] == [0.01, 0.0]


@pytest.mark.parametrize("stage", [1, 2, 3])
def test_every_trainable_parameter_gets_a_gradient_where_ddp_is_told_so(stage):
    cfg = get_preset("micro")
    data = make_tensors(cfg)
    model = CoPModel(cfg)
    model.set_stage(stage)
    for step in range(3):  # different dropout draws, all-dropped rows included over steps
        rand = step_randomness(model, data.lens, [0, 1, 2, 3], 0, stage, step,
                               1.0 if stage == 3 else 0.5)
        model.zero_grad(set_to_none=True)
        model(collate([data[i] for i in range(4)]), rand, stage)["loss"].backward()
        missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
        assert bool(missing) == FIND_UNUSED[stage], missing


def _tone(sr=16000, seconds=1.0):
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * 440 * t) * np.exp(-2 * t)
            + 0.2 * np.sin(2 * np.pi * 1320 * t)).astype(np.float32)


@pytest.mark.parametrize("iters", [1, 8])
def test_torch_griffin_lim_matches_librosa(iters):
    import librosa

    from copmodel.audio import griffin_lim

    cfg = replace(AudioConfig(), griffin_lim_iters=iters)
    mag = np.abs(librosa.stft(_tone(), n_fft=cfg.n_fft, hop_length=cfg.hop)).astype(np.float32)
    ref = librosa.griffinlim(mag, n_iter=iters, hop_length=cfg.hop, win_length=cfg.n_fft,
                             n_fft=cfg.n_fft, center=True, momentum=cfg.griffin_lim_momentum,
                             init="random", random_state=0)
    out = griffin_lim(torch.from_numpy(mag), cfg)
    assert isinstance(out, torch.Tensor) and out.shape == ref.shape
    assert float(np.abs(out.numpy() - ref).max()) < 1e-4 * float(np.abs(ref).max())


@pytest.mark.parametrize("representation", ["stft", "mel"])
def test_spectral_front_end_runs_where_the_representation_lives(representation):
    from copmodel.audio import build_audio, round_trip

    cfg = replace(get_preset("micro").audio, representation=representation, griffin_lim_iters=2)
    rep = build_audio(cfg)
    out = round_trip(_tone(), 16000, rep, 16000)
    assert out.dtype == np.float32 and out.shape == (16000,)
    # the representation on another device (meta), the waveform on the CPU: the old
    # front end passed the CPU input to stft beside the device's window and raised
    rep.to("meta")
    feats = rep.encode(torch.from_numpy(_tone())[None], 50)
    assert feats.device.type == "meta" and feats.shape == (1, rep.channels, 50)
