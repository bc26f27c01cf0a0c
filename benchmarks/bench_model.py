"""copmodel speed: training steps/s and seconds to sample one 10 s clip, per preset.

    PYTHONPATH=. python benchmarks/bench_model.py [--presets tiny small base]
        [--device cpu|cuda] [--batch N] [--train-steps N] [--ode-steps-measured N]

Training: full stage-2 steps (flow + roll stream + Roll Predictor BCE, AdamW,
grad clipping) on random 10 s clips at the given batch size (default: the
preset's batch on GPU, 2 on CPU). Sampling: the preset's Euler steps with CFG
(two network passes per step) plus the vocoder; to keep CPU runs short the
network time is measured over ``--ode-steps-measured`` steps and scaled to the
preset's step count (printed as such). Encoders are the built-in ones (the
pretrained encoders of ``base`` run once per clip at precompute time, not per
step). Prints a table and writes JSON with ``--json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from copmodel.audio import build_audio
from copmodel.model import CoPModel
from copmodel.presets import SeqLens, load_config


def random_batch(cfg, lens, b, device):
    n = cfg.net
    return {
        "mel": torch.randn(b, build_audio(cfg.audio).channels, lens.mel_frames, device=device) - 5,
        "frames": torch.randint(0, 256, (b, lens.video_frames, n.frame_height, n.frame_width),
                                device=device).to(torch.uint8),
        "roll": (torch.rand(b, lens.video_frames, 88, device=device) > 0.95).float(),
        "text": torch.randint(2, n.text_vocab, (b, n.text_max_tokens), device=device),
        "text_mask": torch.ones(b, n.text_max_tokens, dtype=torch.bool, device=device),
    }


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_preset(name, device, batch, train_steps, ode_measured, seconds=10.0, fps=25.0):
    # built-in encoders: pretrained ones (base) run on features precomputed once per clip
    cfg = load_config(name, ["net.video_encoder=cnn", "net.text_encoder=builtin"])
    lens = SeqLens.derive(seconds, fps, cfg.audio, cfg.net.patch)
    b = batch or (cfg.train.batch_size if device.type == "cuda" else 2)
    model = CoPModel(cfg).to(device)
    model.set_stage(2)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    data = random_batch(cfg, lens, b, device)
    rand = {"noise": torch.randn_like(data["mel"]), "t": torch.rand(b, device=device),
            "drop_video": torch.zeros(b, dtype=torch.bool, device=device),
            "drop_text": torch.zeros(b, dtype=torch.bool, device=device),
            "drop_roll": torch.zeros(b, dtype=torch.bool, device=device),
            "roll_frames": torch.randint(0, lens.video_frames, (b, cfg.train.roll_frames_per_clip),
                                         device=device)}
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def step():
        with amp:
            loss = model(data, rand, 2)["loss"]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    step()  # warm-up
    sync(device)
    t0 = time.perf_counter()
    for _ in range(train_steps):
        step()
    sync(device)
    train_s = (time.perf_counter() - t0) / train_steps

    model.eval()
    one = {k: v[:1] for k, v in data.items()}
    noise = torch.randn(1, build_audio(cfg.audio).channels, lens.mel_frames, device=device)
    measured = min(ode_measured, cfg.sample.steps)
    with torch.no_grad(), amp:
        model.generate(one, noise, 2, 1, cfg.sample.guidance_weight)  # warm-up
        sync(device)
        t0 = time.perf_counter()
        feats = model.generate(one, noise, 2, measured, cfg.sample.guidance_weight)
        sync(device)
    ode_s = (time.perf_counter() - t0) / measured * cfg.sample.steps
    t0 = time.perf_counter()
    model.audio.decode(feats[0].float().cpu().numpy(), lens.audio_samples)
    vocoder_s = time.perf_counter() - t0
    return {"preset": name, "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
            "tokens": lens.tokens, "batch": b, "train_steps_per_s": round(1 / train_s, 3),
            "clips_per_s": round(b / train_s, 2), "ode_steps": cfg.sample.steps,
            "ode_steps_measured": measured, "sample_10s_clip_s": round(ode_s + vocoder_s, 2),
            "vocoder_s": round(vocoder_s, 2)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--presets", nargs="+", default=["tiny", "small", "base"])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch", type=int, default=None)
    p.add_argument("--train-steps", type=int, default=3)
    p.add_argument("--ode-steps-measured", type=int, default=4)
    p.add_argument("--json", default=None)
    args = p.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    rows = [bench_preset(n, device, args.batch, args.train_steps, args.ode_steps_measured)
            for n in args.presets]
    env = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
           "cpu": platform.processor() or platform.machine()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(0)
    print(f"# copmodel speed ({json.dumps(env)})")
    print("| preset | params (M) | tokens/10 s | batch | train steps/s | clips/s | "
          "sample one 10 s clip (s) | of which vocoder (s) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        note = "" if r["ode_steps_measured"] == r["ode_steps"] else \
            f" ({r['ode_steps']} steps, scaled from {r['ode_steps_measured']})"
        print(f"| {r['preset']} | {r['params_M']} | {r['tokens']} | {r['batch']} | "
              f"{r['train_steps_per_s']} | {r['clips_per_s']} | {r['sample_10s_clip_s']}{note} | "
              f"{r['vocoder_s']} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"env": env, "rows": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
