"""Tune the demo on the valid split over data draws; report test once.

    PYTHONPATH=. python benchmarks/bench_tune_valid.py --draws DRAWS --out TUNE
        [--guidance 1 2 3 4 5] [--steps 25] [--also "3 12" ...] [--seeds 0 1 2 3 4] [--jobs 2]
        [--stage3-lr-scales 0.1 0.4] [--report-test "GUIDANCE STEPS [SCALE]"]

``DRAWS`` is the output folder of ``benchmarks/bench_draws.py`` (one trained demo per
data draw, ``DRAWS/draw-N/``). Every configuration is scored on the **valid** split
only, on both tracks (tv2a, v2a), once per sampling seed, with
``bench_ablation.score_checkpoint`` (copbench's ``midi_note_f1`` of the transcription,
mean over clips); per draw the mean over sampling seeds; the row is the mean over
draws (± std over draws). The selection score is the mean of the two tracks.

- Sampling knobs (no training): every (guidance weight, ODE steps) of the grid
  ``--guidance`` x ``--steps`` (and the ``--also`` pairs) on each draw's trained stage-3
  checkpoint.
- A training knob (``--stage3-lr-scales``): stage 3 retrained per draw from that draw's
  stage-2 checkpoint and preference pairs (``TUNE/s3lr-X/draw-N/run``, stage 2 and the
  feature cache linked, not copied) with ``train.stage3_lr_scale=X``, then sampled at
  ``--train-sample`` (default: the demo's guidance and steps). The demo's own scale
  (0.2) is the draw's own checkpoint, not retrained: stage 3 seeds torch with
  ``train.seed`` and loads the whole stage-2 EMA before training, so retraining it is
  the same run.
- ``--report-test "W S [X]"``: the chosen configuration (guidance W, steps S, stage-3 LR
  scale X, default the demo's) on the **test** split, both tracks: run once, after the
  choice, and reported as the headline; it never enters the selection. When it is the
  demo's own configuration, the scores are bench_draws.py's (``DRAWS/draw-N.scores.json``:
  the same call on the same checkpoints and seeds), not computed again.

Scores are kept in ``TUNE/scores.json`` (a rerun scores only what is new); the table
goes to ``TUNE/tune.md`` and ``TUNE/tune.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ablation import score_checkpoint  # noqa: E402

TRACKS = ("tv2a", "v2a")
DEMO_SCALE = 0.2  # the demo's train.stage3_lr_scale (copmodel.presets.TrainConfig)


def draw_folders(draws: Path) -> dict[int, Path]:
    found = {}
    for folder in sorted(draws.glob("draw-*")):
        if folder.is_dir() and (folder / "run" / "stage3" / "last.ckpt").is_file():
            found[int(folder.name.split("-", 1)[1])] = folder
    if not found:
        raise SystemExit(f"no trained draw (draw-N/run/stage3/last.ckpt) under {draws}; "
                         "run benchmarks/bench_draws.py first")
    return found


def train_stage3(draw: int, folder: Path, scale: float, out: Path, steps: int) -> Path:
    """Stage 3 of one draw again, from its stage-2 checkpoint and preference pairs, at
    ``train.stage3_lr_scale=scale``; the demo's settings otherwise."""
    run = out / f"s3lr-{scale:g}" / f"draw-{draw}" / "run"
    ckpt, done = run / "stage3" / "last.ckpt", run / "stage3.done.json"
    if done.is_file():  # last.ckpt alone may be a periodic save of an interrupted run
        return ckpt
    run.mkdir(parents=True, exist_ok=True)
    for name in ("stage2", "cache", "prefs.pt"):
        link = run / name
        if not link.exists():
            link.symlink_to((folder / "run" / name).resolve())
    import torch

    from copmodel.prefs import load_preferences
    from copmodel.presets import check_config, tiny
    from copmodel.train import train_folder

    torch.set_num_threads(1)
    torch.manual_seed(draw)
    cfg = check_config(tiny().override(train={"seed": draw}).with_settings(
        [f"train.stage3_lr_scale={scale}"]))
    prefs = load_preferences(run / "prefs.pt")
    t0 = time.time()
    # saved every 5 steps and resumed (optimizer, EMA, RNG, step: the same run), so a
    # run cut by a time limit goes on where it stopped
    train_folder(3, cfg, folder / "data", run, max_steps=steps, save_every=5,
                 resume=ckpt.is_file(), prefs=prefs if prefs["pairs"] else None,
                 progress=False)
    seconds = time.time() - t0
    done.write_text(json.dumps({"draw": draw, "stage3_lr_scale": scale, "steps": steps,
                                "seconds": round(seconds, 1)}) + "\n")
    print(f"[tune] draw {draw} stage 3 at stage3_lr_scale={scale:g}: {seconds:.0f} s", flush=True)
    return ckpt


def spread(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)),
            "min": float(np.min(values)), "max": float(np.max(values)), "n": len(values)}


def config_name(w: float, steps: int, scale: float | None) -> str:
    """``scale`` None: the draw's own stage-3 checkpoint (the demo's 0.2)."""
    s3 = f"s3lr={DEMO_SCALE:g}" if scale is None else f"s3lr={scale:g} retrained"
    return f"w={w:g} steps={steps} {s3}"


def demo_or(scale: float) -> float | None:
    return None if scale == DEMO_SCALE else scale


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--draws", required=True, help="bench_draws.py output folder")
    p.add_argument("--out", default="tune")
    p.add_argument("--guidance", type=float, nargs="*", default=[1, 2, 3, 4, 5])
    p.add_argument("--steps", type=int, nargs="*", default=[25], help="ODE (Euler) steps")
    p.add_argument("--also", nargs="*", default=[], metavar='"W STEPS"',
                   help='further (guidance, steps) pairs outside the grid, e.g. "3 12" "3 50"')
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                   help="sampling seeds")
    p.add_argument("--stage3-lr-scales", type=float, nargs="*", default=[],
                   help="retrain stage 3 per draw at these train.stage3_lr_scale values")
    p.add_argument("--stage3-steps", type=int, default=60,
                   help="stage-3 steps of the retrained checkpoints (the demo's: 60)")
    p.add_argument("--train-sample", type=float, nargs=2, default=None, metavar=("W", "STEPS"),
                   help="guidance and steps for the retrained stage-3 checkpoints "
                        "(default: the checkpoint's own)")
    p.add_argument("--report-test", default=None, metavar='"W STEPS [SCALE]"',
                   help="score this one configuration on the test split (after choosing it)")
    p.add_argument("--jobs", type=int, default=2)
    args = p.parse_args(argv)

    from copmodel.presets import tiny

    demo = tiny().sample
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    draws = draw_folders(Path(args.draws).resolve())
    store = out / "scores.json"
    scores: dict = json.loads(store.read_text()) if store.is_file() else {}
    if scores.get("seeds", args.seeds) != args.seeds:
        raise SystemExit(f"{store} holds seeds {scores['seeds']}; use them or another --out")
    scores["seeds"] = args.seeds

    # (config, split) -> (guidance, steps, scale)
    configs: dict[tuple[str, str], tuple[float, int, float]] = {}
    for w in args.guidance:
        for steps in args.steps:
            configs[config_name(w, steps, None), "valid"] = (w, steps, None)
    for pair in args.also:
        w, steps = pair.split()
        configs[config_name(float(w), int(steps), None), "valid"] = (float(w), int(steps), None)
    tw, ts = args.train_sample or (demo.guidance_weight, demo.steps)
    for scale in map(demo_or, args.stage3_lr_scales):
        configs[config_name(tw, int(ts), scale), "valid"] = (tw, int(ts), scale)
    if args.report_test:
        parts = args.report_test.split()
        w, steps = float(parts[0]), int(parts[1])
        scale = demo_or(float(parts[2])) if len(parts) > 2 else None
        configs[config_name(w, steps, scale), "test"] = (w, steps, scale)

    ckpts: dict[tuple[int, float | None], Path] = {}
    with ProcessPoolExecutor(max(1, args.jobs), mp_context=get_context("spawn")) as pool:
        trained = {}
        for (name, split), (w, steps, scale) in configs.items():
            for draw, folder in draws.items():
                if scale is None:
                    ckpts[draw, scale] = folder / "run" / "stage3" / "last.ckpt"
                elif (draw, scale) not in trained:
                    trained[draw, scale] = pool.submit(train_stage3, draw, folder, scale, out,
                                                       args.stage3_steps)
        ckpts.update({k: job.result() for k, job in trained.items()})

    # the demo's own configuration on test is what bench_draws.py scored (the same
    # score_checkpoint call on the same checkpoints and seeds): taken from its files
    for (name, split), (w, steps, scale) in configs.items():
        if split != "test" or (w, steps, scale) != (demo.guidance_weight, demo.steps, None):
            continue
        for draw in draws:
            done = Path(args.draws).resolve() / f"draw-{draw}.scores.json"
            known = json.loads(done.read_text()) if done.is_file() else {}
            for track in TRACKS:
                key = f"{name} | test/{track} | draw {draw}"
                if key not in scores and known.get("seeds") == args.seeds \
                        and f"test/{track}" in known:
                    scores[key] = {**known[f"test/{track}"], "from": str(done)}

    jobs = {}
    with ProcessPoolExecutor(max(1, args.jobs), mp_context=get_context("spawn")) as pool:
        for (name, split), (w, steps, scale) in configs.items():
            for draw, folder in draws.items():
                for track in TRACKS:
                    key = f"{name} | {split}/{track} | draw {draw}"
                    if key not in scores:
                        jobs[key] = pool.submit(
                            score_checkpoint, ckpts[draw, scale], folder / "data", args.seeds,
                            split, {"guidance_weight": w, "steps": steps}, track)
        for key, job in jobs.items():
            scores[key] = job.result()
            tmp = store.with_suffix(".tmp")
            tmp.write_text(json.dumps(scores))
            os.replace(tmp, store)
            print(f"[tune] {key}: {scores[key]['note_f1']:.3f}", flush=True)

    rows = []
    for (name, split), (w, steps, scale) in configs.items():
        row = {"config": name, "split": split, "guidance_weight": w, "steps": steps,
               "stage3_lr_scale": DEMO_SCALE if scale is None else scale,
               "retrained": scale is not None}
        for track in TRACKS:
            per_draw = {d: scores[f"{name} | {split}/{track} | draw {d}"] for d in draws}
            row[track] = {"per_draw": {d: s["note_f1"] for d, s in per_draw.items()},
                          "seed_spread": {d: s["seed_spread"] for d, s in per_draw.items()},
                          **spread([s["note_f1"] for s in per_draw.values()])}
        row["score"] = float(np.mean([row[t]["mean"] for t in TRACKS]))
        rows.append(row)
    valid = [r for r in rows if r["split"] == "valid"]
    best = max(valid, key=lambda r: r["score"]) if valid else None
    # The demo's configuration stays unless a row beats it by more than two standard
    # errors of the paired differences (same draw, same track: draws x tracks pairs)
    base = next((r for r in valid if r["config"] == config_name(demo.guidance_weight,
                                                               demo.steps, None)), None)
    chosen = base
    for r in valid:
        if base is None:
            break
        diffs = [r[t]["per_draw"][d] - base[t]["per_draw"][d] for t in TRACKS for d in draws]
        se = float(np.std(diffs, ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else 0.0
        r["vs_demo"] = {"mean": float(np.mean(diffs)), "se": se, "n": len(diffs)}
        if r is not base and r["vs_demo"]["mean"] > 2 * se and r["score"] > chosen["score"]:
            chosen = r
    (out / "tune.json").write_text(json.dumps(
        {"seeds": args.seeds, "draws": sorted(draws), "rows": rows,
         "best_valid": best and best["config"], "chosen": chosen and chosen["config"]},
        indent=2) + "\n")

    def cell(stat: dict) -> str:
        return f"{stat['mean']:.3f} ± {stat['std']:.3f}"

    lines = [f"note F1, mean over draws {sorted(draws)} of the mean over clips and sampling seeds "
             f"{args.seeds} (± std over draws); score = mean of the two tracks; vs demo: the "
             "paired difference to the demo's configuration (same draw and track; mean ± "
             "standard error). A row replaces the demo's configuration only when it is more "
             "than 2 standard errors better. Valid rows choose; the test row is reported once "
             "for the chosen configuration.", "",
             "| split | guidance | steps | stage3_lr_scale | tv2a | v2a | score | vs demo | "
             "per draw tv2a | per draw v2a |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["split"] != "valid", -r["score"])):
        mark = "".join([" (best valid)" if r is best else "", " (chosen)" if r is chosen else ""])
        per = [" / ".join(f"{v:.3f}" for v in r[t]["per_draw"].values()) for t in TRACKS]
        vs = (f"{r['vs_demo']['mean']:+.3f} ± {r['vs_demo']['se']:.3f}"
              if "vs_demo" in r and r is not base else "")
        lines.append(f"| {r['split']}{mark} | {r['guidance_weight']:g} | {r['steps']} | "
                     f"{r['stage3_lr_scale']:g}{' (retrained)' if r['retrained'] else ''} | {cell(r['tv2a'])} | {cell(r['v2a'])} | "
                     f"**{r['score']:.3f}** | {vs} | {per[0]} | {per[1]} |")
    (out / "tune.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
