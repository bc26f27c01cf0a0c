"""copmodel speed: training steps/s of ``Trainer.step()`` and seconds to sample one
10 s clip, per preset and precision.

    PYTHONPATH=. python benchmarks/bench_model.py [--presets tiny small base]
        [--device cpu|cuda] [--batch N] [--train-steps N] [--ode-steps-measured N]
        [--precision auto|bf16|fp16|no ...]

Training: the trainer's own stage-2 step (``copmodel.train.Trainer.step``: data from
an in-memory set of random 10 s clips, per-sample draws, flow + roll stream + Roll
Predictor BCE, AdamW, clipping, EMA) at the given batch size (default: the preset's
batch on GPU, 2 on CPU), so the benchmark and the trainer cannot diverge. Peak GPU
memory is ``torch.cuda.max_memory_allocated`` over the warm-up and timed steps.
Sampling: the preset's Euler steps with guidance (two network passes per step)
plus the vocoder (Griffin-Lim on the device); to keep CPU runs short the network
time is measured over ``--ode-steps-measured`` steps and scaled to the preset's
step count (printed as such). Encoders are the built-in ones (the pretrained
encoders of ``base`` run once per clip at precompute time, not per step). Prints
a table and writes JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time

import numpy as np
import torch

from copmodel.data import ClipTensors
from copmodel.presets import SeqLens, load_config
from copmodel.train import Trainer, make_accelerator


def random_tensors(cfg, lens, n: int, seed: int = 0) -> ClipTensors:
    """``n`` in-memory clips of random features, frames, sparse rolls and token ids."""
    from copmodel.audio import build_audio

    rng = np.random.default_rng(seed)
    net, channels = cfg.net, build_audio(cfg.audio).channels
    items = [{"feats": rng.normal(-5, 1, (channels, lens.feat_frames)).astype(np.float32),
              "frames": rng.integers(0, 256, (lens.video_frames, net.frame_height,
                                              net.frame_width), dtype=np.uint8),
              "roll": (rng.random((lens.video_frames, 88)) > 0.95).astype(np.float32),
              "text": rng.integers(2, net.text_vocab, net.text_max_tokens).astype(np.int64),
              "text_mask": np.ones(net.text_max_tokens, bool)} for _ in range(n)]
    return ClipTensors(items, [f"r{i}" for i in range(n)], lens)


def fresh_accelerator(cfg, stage: int, device: str):
    """An accelerator with this config's precision (accelerate keeps one global state:
    reset it so that one process can compare precisions)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    return make_accelerator(cfg, stage, device)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_preset(name, device, batch, train_steps, ode_measured, precision="auto",
                 seconds=10.0, fps=25.0, warmup=2):
    # built-in encoders: pretrained ones (base) run on features precomputed once per clip
    cfg = load_config(name, ["net.video_encoder=cnn", "net.text_encoder=builtin",
                             f"train.mixed_precision={precision}"])
    lens = SeqLens.derive(seconds, fps, cfg.audio, cfg.net.patch)
    b = batch or (cfg.train.batch_size if device.type == "cuda" else 2)
    cfg = cfg.override(train={"batch_size": b, "max_steps": warmup + train_steps,
                              "warmup_steps": 1})
    data = random_tensors(cfg, lens, b)
    with tempfile.TemporaryDirectory() as run:
        first = Trainer(1, cfg, data, run, progress=False,
                        accelerator=fresh_accelerator(cfg, 1, device.type))
        first.save()  # stage 2 starts from a stage-1 checkpoint (normalisation stats)
        del first
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        trainer = Trainer(2, cfg, data, run, progress=False,
                          accelerator=fresh_accelerator(cfg, 2, device.type))
        trainer.model.train()
        for _ in range(warmup):
            trainer.step()
        sync(device)
        t0 = time.perf_counter()
        for _ in range(train_steps):
            trainer.step()
        sync(device)
        train_s = (time.perf_counter() - t0) / train_steps
        peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
        precision_used = trainer.acc.mixed_precision
        model = trainer.core

    model.eval()
    one = {k: v[None].to(device) for k, v in data[0].items()}
    noise = torch.randn(1, model.audio.channels, lens.feat_frames, device=device)
    measured = min(ode_measured, cfg.sample.steps)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision_used == "bf16")
    with torch.no_grad(), amp:
        model.generate(one, noise, 2, 1, cfg.sample.guidance_weight)  # warm-up
        sync(device)
        t0 = time.perf_counter()
        feats = model.generate(one, noise, 2, measured, cfg.sample.guidance_weight)
        sync(device)
    ode_s = (time.perf_counter() - t0) / measured * cfg.sample.steps
    t0 = time.perf_counter()
    model.audio.decode(feats[0].float(), lens.audio_samples)
    sync(device)
    vocoder_s = time.perf_counter() - t0
    del model, trainer
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {"preset": name, "precision": precision_used,
            "params_M": round(sum(p.numel() for p in CoPModel_params(cfg)) / 1e6, 2),
            "tokens": lens.tokens, "batch": b, "train_steps_per_s": round(1 / train_s, 3),
            "clips_per_s": round(b / train_s, 2),
            "peak_gpu_memory_gib": None if peak is None else round(peak, 2),
            "ode_steps": cfg.sample.steps, "ode_steps_measured": measured,
            "sample_10s_clip_s": round(ode_s + vocoder_s, 2), "vocoder_s": round(vocoder_s, 2)}


def CoPModel_params(cfg):
    from copmodel.model import CoPModel

    with torch.device("meta"):
        return list(CoPModel(cfg).parameters())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["tiny", "small", "base"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--train-steps", type=int, default=3)
    p.add_argument("--ode-steps-measured", type=int, default=4)
    p.add_argument("--precision", nargs="+", default=["auto"],
                   choices=("auto", "bf16", "fp16", "no"), help="train.mixed_precision values")
    p.add_argument("--json", default=None)
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    rows = [bench_preset(n, device, args.batch, args.train_steps, args.ode_steps_measured, prec)
            for n in args.presets for prec in args.precision]
    env = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "cpu": platform.processor() or platform.machine()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(0)
    print(f"# copmodel speed ({json.dumps(env)})")
    print("| preset | precision | params (M) | tokens/10 s | batch | train steps/s | clips/s | "
          "peak GPU memory (GiB) | sample one 10 s clip (s) | of which vocoder (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        note = "" if r["ode_steps_measured"] == r["ode_steps"] else \
            f" ({r['ode_steps']} steps, scaled from {r['ode_steps_measured']})"
        print(f"| {r['preset']} | {r['precision']} | {r['params_M']} | {r['tokens']} | "
              f"{r['batch']} | {r['train_steps_per_s']} | {r['clips_per_s']} | "
              f"{r['peak_gpu_memory_gib'] if r['peak_gpu_memory_gib'] is not None else '-'} | "
              f"{r['sample_10s_clip_s']}{note} | {r['vocoder_s']} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"env": env, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
