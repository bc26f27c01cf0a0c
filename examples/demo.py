"""The offline demo loop: ``python examples/demo.py --out demo`` (``make demo``).

It drives all three packages (copdata builds, copmodel trains and samples,
copbench scores), so it lives above them, outside the packages.

1. build a small synthetic dataset (``copdata.build.build_dataset`` with the
   ``synth`` source): keyboard video + piano audio + MIDI + rolls, split into
   train / valid / test performances (``--valid-fraction``: at least one valid
   performance; tune hyperparameters on valid, report test);
2. train the tiny preset through stages 1 -> 2 -> 3 (stage 3: contrastive loss,
   plus DPO on preference pairs from ``copmodel prefs`` unless ``--no-dpo``);
3. sample the test split (``copmodel.sample.sample_split``:
   ``OUT/copmodel-tiny/<clip_id>.wav`` on the tv2a track, ``OUT/copmodel-tiny-v2a/`` on
   the v2a track, the Roll Predictor's roll driving stage 2/3);
4. score with copbench (``OUT/results/*.json``): the model (``run-stage3``: tv2a;
   ``copmodel-tiny-v2a``: the same checkpoint's v2a samples), the
   reconstruction ceiling of its audio representation (``reconstruct:CKPT``), the
   Audeo-style chain (``rollsynth:CKPT``: predicted roll -> notes -> piano synth)
   and the ``oracle``, ``resynth``, ``shuffle``, ``silence`` baselines; write
   ``OUT/leaderboard.md`` / ``.html`` and print it, with the Roll Predictor's
   frame F1 on the test video;
5. score the generator on the valid split too, on both tracks (``OUT/results-valid/``:
   ``run-stage3``, ``copmodel-tiny-v2a``; sampling seed ``--seed``), and print its note F1
   on valid and test (also in ``OUT/summary.json`` under ``generator``).

Everything runs offline on CPU; the defaults aim at <= 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)
BASELINES = ("oracle", "resynth", "shuffle", "silence")


def build_data(out: Path, items: int, item_seconds: float, clip_seconds: float, seed: int,
               valid_fraction: float = 0.0) -> Path:
    from copdata.build import build_dataset
    from copdata.sources.base import BuildSettings
    from copdata.sources.synth import SynthSource

    data = out / "data"
    summary = build_dataset(SynthSource(num_items=items, item_seconds=item_seconds, seed=seed,
                                        valid_fraction=valid_fraction),
                            data, BuildSettings(clip_seconds=clip_seconds, seed=seed), workers=2,
                            force=True,
                            progress=False)
    print(f"[demo] dataset: {summary.line()}", flush=True)
    return data


def run_copbench(model: str, data: Path, results: Path, metrics: list[str] | None,
                 split: str = "test", **kwargs) -> dict:
    """Score one model or baseline on ``split`` with copbench's Python API."""
    from copbench.run import run_benchmark

    kwargs = {"out": results, "progress": False, **kwargs}
    if metrics:
        kwargs["metrics"] = metrics
    return run_benchmark(model, data, split, **kwargs)


# The columns printed on screen (demo/leaderboard.md and .html hold every metric).
SUMMARY_METRICS = ["midi_note_f1", "midi_frame_f1", "av_align", "fad_mel", "fad_basicpitch", "si_sdr"]


def leaderboard(results: Path, metrics: list[str] | None = None, fmt: str = "md") -> str:
    from copbench.leaderboard import render_leaderboard

    return render_leaderboard(results, fmt, metrics)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python examples/demo.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo")
    p.add_argument("--items", type=int, default=7, help="synthetic performances")
    p.add_argument("--valid-fraction", type=float, default=0.01,
                   help="share of the performances moved from train to the valid split; any "
                        "value > 0 moves at least one (the default: one), 0 = no valid split")
    p.add_argument("--item-seconds", type=float, default=20.0)
    p.add_argument("--clip-seconds", type=float, default=5.0)
    p.add_argument("--steps", type=int, nargs=3, default=(50, 700, 60), metavar=("S1", "S2", "S3"),
                   help="training steps of stages 1, 2, 3")
    p.add_argument("--no-dpo", action="store_true", help="stage 3 without preference pairs")
    p.add_argument("--pref-clips", type=int, default=4)
    p.add_argument("--metrics", nargs="*", default=None, help="copbench metrics (default: its own)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="GROUP.FIELD=VALUE",
                   help="override a field of the tiny config (repeatable; see `copmodel config`)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (1 avoids spin-waiting on a shared machine)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    import torch

    from copmodel.prefs import load_preferences, make_preferences
    from copmodel.presets import check_config, tiny
    from copmodel.sample import load_sampler, sample_split
    from copmodel.train import train_folder

    torch.manual_seed(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    timings: dict[str, float] = {}
    data = build_data(out, args.items, args.item_seconds, args.clip_seconds, args.seed,
                      args.valid_fraction)
    timings["data"] = time.time() - t0
    cfg = check_config(tiny().override(train={"seed": args.seed}).with_settings(args.settings))
    run = out / "run"
    summary: dict = {"dataset": str(data)}
    for stage, steps in zip((1, 2, 3), args.steps):
        ts = time.time()
        prefs = None
        if stage == 3 and not args.no_dpo and args.pref_clips > 0:
            prefs = make_preferences(run / "stage2" / "last.ckpt", data, run / "prefs.pt",
                                     split="train", candidates=2, limit=args.pref_clips,
                                     seed=args.seed, progress=sys.stderr.isatty())
            print(f"[demo] preference pairs: {prefs['pairs']} (mean F1 gap {prefs['mean_gap']:.3f})",
                  flush=True)
            summary["prefs"] = prefs
            prefs = load_preferences(run / "prefs.pt")
            if not prefs["pairs"]:
                print("[demo] no preference pair (every clip's candidates scored the same): "
                      "stage 3 trains without DPO", flush=True)
                prefs = None
        result = train_folder(stage, cfg, data, run, max_steps=steps, prefs=prefs,
                              progress=sys.stderr.isatty())
        timings[f"stage{stage}"] = time.time() - ts
        print(f"[demo] stage {stage}: {steps} steps in {timings[f'stage{stage}']:.0f} s, "
              f"last losses {json.dumps({k: round(v, 3) for k, v in result['last_losses'].items()})}",
              flush=True)
        if "roll_eval" in result:
            r = result["roll_eval"]
            summary["roll_predictor"] = r
            print(f"[demo] Roll Predictor on test video: frame F1 {r['f1']:.3f} "
                  f"(P {r['precision']:.3f}, R {r['recall']:.3f}; chance {r['chance_f1']:.3f})",
                  flush=True)

    ts = time.time()
    ckpt = run / "stage3" / "last.ckpt"
    sampler = load_sampler(ckpt)
    sample_split(sampler, data, "test", out / "copmodel-tiny", seed=args.seed, progress=False)
    # the v2a track: the same model given the video and one neutral prompt for every clip
    # (tv2a, the default, also gives it the clip's caption, which states facts of the clip)
    sample_split(sampler, data, "test", out / "copmodel-tiny-v2a", seed=args.seed,
                 track="v2a", progress=False)
    timings["sample"] = time.time() - ts

    ts = time.time()
    results = out / "results"
    results.mkdir(exist_ok=True)
    # The model is scored through copbench's checkpoint path (the same sampling
    # API as `copmodel sample`), so its results are named after the run: run-stage3.
    for model in (str(ckpt), str(out / "copmodel-tiny-v2a"), f"reconstruct:{ckpt}",
                  f"rollsynth:{ckpt}") + tuple(f"baseline:{name}" for name in BASELINES):
        run_copbench(model, data, results, args.metrics)
    # the generator on every evaluated split and track: test above, valid here (the split
    # to tune on; test is reported once)
    import copdata

    splits = ["test"] + (["valid"] if copdata.open_dataset(data).ids("valid") else [])
    generator: dict = {}
    for split in splits:
        folder = results if split == "test" else out / "results-valid"
        folder.mkdir(exist_ok=True)
        for track, name in (("tv2a", "run-stage3"), ("v2a", "copmodel-tiny-v2a")):
            if split != "test":
                run_copbench(str(ckpt), data, folder, args.metrics, split, track=track,
                             name=name, seed=args.seed)
            res = json.loads((folder / f"{name}.json").read_text())
            generator[f"{split}/{track}"] = {
                m: res["metrics"][m]["mean"] for m in ("midi_note_f1", "midi_frame_f1")
                if m in res["metrics"]} | {"clips": res["n_expected"]}
    summary["generator"] = generator
    timings["copbench"] = time.time() - ts
    board = leaderboard(results)
    (out / "leaderboard.md").write_text(board + "\n", encoding="utf-8")
    (out / "leaderboard.html").write_text(leaderboard(results, fmt="html"), encoding="utf-8")
    timings["total"] = time.time() - t0
    summary["seconds"] = {k: round(v, 1) for k, v in timings.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(leaderboard(results, SUMMARY_METRICS))
    print(f"(every metric: {out / 'leaderboard.md'}, {out / 'leaderboard.html'})")
    if "roll_predictor" in summary:
        r = summary["roll_predictor"]
        print(f"\nRoll Predictor frame F1 on test video: {r['f1']:.3f} (chance {r['chance_f1']:.3f})")
    print("\ngenerator note F1 (sampling seed %d): " % args.seed + ", ".join(
        f"{k} {v['midi_note_f1']:.3f}" for k, v in generator.items() if "midi_note_f1" in v))
    print(f"demo finished in {timings['total']:.0f} s; outputs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
