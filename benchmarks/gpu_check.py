"""The one prepared device run of copmodel (driven by ``benchmarks/gpu_check.sh``).

    PYTHONPATH=. python benchmarks/gpu_check.py --out DIR [--dry-run] [--device cuda|cpu]

Prints one JSON object (and writes ``DIR/gpu_check.json``):

- ``bench``: ``Trainer.step()`` steps/s and peak GPU memory of ``small`` and ``base``
  (built-in encoders, preset batch sizes) in bf16 and fp32, plus the seconds to
  sample one 10 s clip (benchmarks/bench_model.py);
- ``stages``: stage 1 -> 2 -> 3 of ``small`` on a synthetic dataset of 10 s clips,
  each with steps/s read from its training log (``log.csv``'s ``seconds`` column:
  time inside the training loop, not the wall time of a launch) and peak GPU memory;
  the Roll Predictor's test scores after stage 2; preference pairs mined from the
  stage-2 checkpoint (``copmodel prefs``) and a 2-step DPO in stage 3;
- ``sampling``: seconds per 10 s clip on the device without and with Griffin-Lim,
  on both tracks (v2a, tv2a);
- ``copbench``: ``copbench run --device DEVICE`` of the stage-3 checkpoint on the test
  split (MIDI note/frame F1), its exit status and scores.

Any error ends the run with a traceback and a non-zero exit status. ``--dry-run``:
the same steps on the CPU at tiny sizes (``micro`` preset, 2 s clips, 2 steps per
stage), which CI runs so that the script cannot rot.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def sizes(dry: bool) -> dict:
    if dry:
        return {"bench_presets": ["micro"], "bench_steps": 1, "ode_measured": 2,
                "bench_seconds": 2.0,
                "preset": "micro", "batch": 4, "items": 3, "item_seconds": 4.0,
                "clip_seconds": 2.0, "stage_steps": 2, "log_every": 1, "candidates": 2,
                "pref_clips": 2, "sample_clips": 1, "sample_steps": 2}
    return {"bench_presets": ["small", "base"], "bench_steps": 10, "ode_measured": 64,
            "bench_seconds": 10.0,
            "preset": "small", "batch": 16, "items": 6, "item_seconds": 30.0,
            "clip_seconds": 10.0, "stage_steps": 100, "log_every": 10, "candidates": 4,
            "pref_clips": 6, "sample_clips": 3, "sample_steps": None}


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def peak_gib(device: str):
    return round(torch.cuda.max_memory_allocated() / 2**30, 3) if device.startswith("cuda") else None


def reset_peak(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def log_speed(log_csv: Path) -> dict:
    """Steps/s from a stage's ``log.csv``: steps between the first and the last logged
    row over the loop seconds between them (the first row's steps include warm-up)."""
    with open(log_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise RuntimeError(f"empty training log {log_csv}")
    first, last = rows[0], rows[-1]
    steps = int(last["step"]) - int(first["step"])
    secs = float(last["seconds"]) - float(first["seconds"])
    out = {"logged_rows": len(rows), "last_loss": float(last["loss"]),
           "steps_per_s_from_log": round(steps / secs, 3) if steps and secs > 0 else None}
    if out["steps_per_s_from_log"] is None:  # one logged row: the whole loop
        out["steps_per_s_from_log"] = round(int(last["step"]) / max(float(last["seconds"]), 1e-9), 3)
        out["includes_first_step"] = True
    return out


def build_data(out: Path, size: dict) -> Path:
    from copdata.build import build_dataset
    from copdata.sources.base import BuildSettings
    from copdata.sources.synth import SynthSource

    data = out / "data"
    if not (data / "clips.jsonl").is_file():
        build_dataset(SynthSource(num_items=size["items"], item_seconds=size["item_seconds"],
                                  seed=11), data,
                      BuildSettings(clip_seconds=size["clip_seconds"]), workers=4,
                      progress=False)
    return data


def run_stages(data: Path, out: Path, size: dict, device: str) -> dict:
    from copmodel.prefs import load_preferences, make_preferences
    from copmodel.presets import load_config
    from copmodel.train import make_accelerator, train_folder

    run = out / "run"
    cfg = load_config(size["preset"], ["net.video_encoder=cnn", "net.text_encoder=builtin",
                                       f"train.batch_size={size['batch']}"])
    stages: dict = {}
    for stage in (1, 2):
        reset_peak(device)
        t0 = time.perf_counter()
        result = train_folder(stage, cfg, data, run, max_steps=size["stage_steps"],
                              log_every=size["log_every"], progress=False,
                              accelerator=make_accelerator(cfg, stage, device))
        stages[f"stage{stage}"] = {**log_speed(run / f"stage{stage}" / "log.csv"),
                                   "steps": result["step"], "peak_gpu_memory_gib": peak_gib(device),
                                   "wall_s_incl_precompute": round(time.perf_counter() - t0, 1)}
        if "roll_eval" in result:
            stages["stage2"]["roll_eval"] = {k: result["roll_eval"][k]
                                             for k in ("f1", "chance_f1", "clips")
                                             if k in result["roll_eval"]}
    t0 = time.perf_counter()
    prefs_path = out / "prefs.pt"
    mined = make_preferences(run / "stage2" / "last.ckpt", data, prefs_path, split="train",
                             candidates=size["candidates"], steps=size["sample_steps"],
                             limit=size["pref_clips"], device=device, progress=False)
    stages["prefs"] = {"pairs": mined["pairs"], "clips": mined["clips"],
                       "candidates": size["candidates"], "mean_gap": mined["mean_gap"],
                       "seconds": round(time.perf_counter() - t0, 1)}
    source = "mined (copmodel prefs)"
    if not mined["pairs"]:
        # every candidate of every clip scored the same (an undertrained model's note F1
        # is often 0 for all): to still exercise DPO on the device, pair each clip's own
        # encoded audio (winner) with a sampled candidate (loser); labelled as such
        ceiling_pairs(run / "stage2" / "last.ckpt", data, prefs_path, size, device)
        source = "ceiling-vs-candidate (no mined pair: all candidates tied)"
    prefs = {**load_preferences(prefs_path), "source": str(prefs_path)}
    reset_peak(device)
    result = train_folder(3, cfg, data, run, max_steps=2, log_every=1, progress=False,
                          prefs=prefs, accelerator=make_accelerator(cfg, 3, device))
    stages["stage3"] = {"dpo_steps": result["step"], "dpo_pairs": len(prefs["pairs"]),
                        "dpo_pairs_source": source,
                        "dpo_last_loss": result["last_losses"].get("dpo")}
    stages["stage3"].update({**log_speed(run / "stage3" / "log.csv"), "steps": result["step"],
                             "peak_gpu_memory_gib": peak_gib(device)})
    stages["ckpt"] = result["ckpt"]
    return stages


def ceiling_pairs(ckpt: Path, data: Path, prefs_path: Path, size: dict, device: str) -> None:
    """Preference pairs whose winner is a train clip's own audio features (the audio
    representation's ceiling) and loser a sample of ``ckpt`` (rewrites ``prefs_path``,
    keeping its ``info`` and recording ``pairs_source``)."""
    import copdata
    from copmodel.audio import build_audio
    from copmodel.data import clip_arrays, seq_lens
    from copmodel.prefs import load_preferences
    from copmodel.sample import load_sampler

    sampler = load_sampler(ckpt, device=device)
    info = load_preferences(prefs_path)["info"]
    audio_repr = build_audio(sampler.cfg.audio).to(device)
    pairs = []
    for clip in list(copdata.open_dataset(data).clips("train"))[: size["pref_clips"]]:
        lens = seq_lens(sampler.cfg, clip.seconds, clip.fps)
        batch = sampler.conditions(clip)
        loser = sampler.generate_features(clip, seed=0, steps=size["sample_steps"], batch=batch)
        winner = clip_arrays(clip, sampler.cfg, lens, audio_repr)["feats"]
        pairs.append({"clip_id": clip.id, "feats_w": torch.from_numpy(winner),
                      "feats_l": torch.from_numpy(loser), "roll": batch["roll"][0].float().cpu(),
                      "guidance_weight": sampler.cfg.sample.guidance_weight,
                      "score_w": 1.0, "score_l": 0.0})
    torch.save({"pairs": pairs, "info": {**info, "pairs": len(pairs),
                                         "pairs_source": "ceiling-vs-candidate"}}, prefs_path)


def time_sampling(ckpt: str, data: Path, size: dict, device: str) -> dict:
    import copdata
    from copmodel.sample import TRACKS, load_sampler

    sampler = load_sampler(ckpt, device=device)
    clips = list(copdata.open_dataset(data).clips("test"))[: size["sample_clips"]]
    if not clips:
        raise RuntimeError("the dataset has no test clip to sample")
    steps = size["sample_steps"]
    sampler.generate(clips[0], seed=0, steps=steps)  # warm-up (kernels, caches)
    out: dict = {"device": device, "ode_steps": steps or sampler.cfg.sample.steps,
                 "clips": len(clips), "clip_seconds": clips[0].seconds}
    for track in TRACKS:
        cond_s, feats_s, vocode_s = 0.0, 0.0, 0.0
        for i, clip in enumerate(clips):
            t0 = time.perf_counter()
            batch = sampler.conditions(clip, track)  # video decode + resize, roll prediction
            sync(device)
            t1 = time.perf_counter()
            feats = sampler.generate_features(clip, seed=i, steps=steps, track=track,
                                              batch=batch)
            sync(device)
            t2 = time.perf_counter()
            sampler.vocode(feats, clip)
            sync(device)
            cond_s, feats_s, vocode_s = (cond_s + t1 - t0, feats_s + t2 - t1,
                                         vocode_s + time.perf_counter() - t2)
        per10 = 10.0 / (len(clips) * float(clips[0].seconds))
        out[track] = {"conditions_s_per_10s_clip": round(cond_s * per10, 3),
                      "s_per_10s_clip_without_griffin_lim": round((cond_s + feats_s) * per10, 3),
                      "s_per_10s_clip_with_griffin_lim": round(
                          (cond_s + feats_s + vocode_s) * per10, 3),
                      "griffin_lim_s_per_10s_clip": round(vocode_s * per10, 3)}
    out["anchor"] = "MMAudio-S: 1.23 s per 8 s clip on one GPU"
    return out


def copbench_run(ckpt: str, data: Path, out: Path, device: str, dry: bool) -> dict:
    help_text = subprocess.run([sys.executable, "-m", "copbench", "run", "--help"],
                               capture_output=True, text=True, check=True).stdout
    has_device = "--device" in help_text
    cmd = [sys.executable, "-m", "copbench", "run", "--model", ckpt, "--data", str(data),
           "--split", "test", "--metrics", "midi", "--out", str(out / "results"),
           "--no-progress", "--name", "gpu-check"]
    if has_device:
        cmd += ["--device", device]
    elif not dry:
        raise RuntimeError("copbench run has no --device option in this checkout; it would "
                           "sample the checkpoint on the CPU")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"copbench run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    scores = {}
    for path in sorted((out / "results").rglob("*.json")):
        try:
            doc = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(doc, dict) and isinstance(doc.get("metrics"), dict):
            scores = {k: (v.get("value", v.get("mean")) if isinstance(v, dict) else v)
                      for k, v in doc["metrics"].items()}
            break
    return {"command": " ".join(cmd[1:]), "device_flag": has_device, "exit_status": 0,
            "seconds": round(time.perf_counter() - t0, 1), "scores": scores}


def bench_row(name: str, dev: torch.device, size: dict, precision: str) -> dict:
    """bench_model's row at the preset's batch; out of GPU memory (a measurement, e.g.
    ``base`` in fp32) is recorded and the batch halved, down to 1."""
    from bench_model import bench_preset

    batch, oom = None, []
    while True:
        try:
            row = bench_preset(name, dev, batch, size["bench_steps"], size["ode_measured"],
                               precision, seconds=size["bench_seconds"])
            return {**row, "out_of_memory_at_batch": oom} if oom else row
        except torch.cuda.OutOfMemoryError:
            from copmodel.presets import get_preset

            batch = (batch or get_preset(name).train.batch_size)
            oom.append(batch)
            if batch <= 1:
                raise
            batch //= 2
        import gc

        gc.collect()  # the failed trainer's tensors, once the traceback is gone
        if dev.type == "cuda":
            torch.cuda.empty_cache()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--dry-run", action="store_true",
                   help="tiny sizes on the CPU (what CI runs)")
    p.add_argument("--device", default=None, help="default: cuda, or cpu with --dry-run")
    args = p.parse_args(argv)
    device = args.device or ("cpu" if args.dry_run else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device visible to torch "
                         f"({torch.__version__}); use --dry-run for the CPU check")
    size = sizes(args.dry_run)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    report: dict = {"dry_run": args.dry_run, "device": device, "torch": torch.__version__,
                    "python": platform.python_version(), "sizes": size}
    if device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name(0)
        report["gpus"] = torch.cuda.device_count()
        report["bf16_supported"] = torch.cuda.is_bf16_supported()
    dev = torch.device(device)
    report["bench"] = [bench_row(name, dev, size, precision)
                       for name in size["bench_presets"] for precision in ("bf16", "no")]
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)  # the stages use the config's own precision
    data = build_data(out, size)
    report["stages"] = run_stages(data, out, size, device)
    report["sampling"] = time_sampling(report["stages"]["ckpt"], data, size, device)
    report["copbench"] = copbench_run(report["stages"]["ckpt"], data, out, device, args.dry_run)
    report["total_s"] = round(time.perf_counter() - t_start, 1)
    text = json.dumps(report, indent=2, default=str)
    (out / "gpu_check.json").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
