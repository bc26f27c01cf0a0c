"""What each modelling choice changes in the demo: one demo run per variant.

    PYTHONPATH=. python benchmarks/bench_ablation.py --out ABL [--variants NAME ...]
        [--jobs 2] [--seeds 0 1 2 3 4] [--demo-args "--steps 50 700 60"]

Every trained variant is ``examples/demo.py`` (same synthetic data, same seed, same
step counts) with a few ``--set`` overrides or demo flags (VARIANTS); ``default`` is
the demo as shipped. Sampling variants (SAMPLING: guidance convention, sway) sample
the ``default`` run's checkpoints with other settings. After each run the stage-2 and stage-3 checkpoints generate
the test split once per sampling seed, and each clip's audio is transcribed and
scored with ``copdata.scoring.note_scores`` (copbench's ``midi_note_f1``). The
table gives the mean over clips and seeds (the leaderboard's number averages over
clips for one seed; with 4 test clips one seed moves it by several hundredths, so
the ablation averages over ``--seeds``), the spread of the per-seed means, and the
run's wall time. Runs are independent processes with one torch thread each, so
``--jobs 2`` uses both cores of a 2-core machine.

Writes ``OUT/<variant>/`` (the demo's outputs), ``OUT/<variant>.scores.json``,
``OUT/ablation.json`` and ``OUT/ablation.md``; a finished variant is neither run nor
scored again (delete its folder and scores file to redo it).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# name -> (issue item, what it changes, extra demo arguments)
VARIANTS: dict[str, tuple[str, str, list[str]]] = {
    "default": ("", "the demo as shipped", []),
    "mel80_gl32": ("1", "previous audio representation: log-mel 80, pinv, Griffin-Lim 32",
                   ["--set", "audio.representation=mel", "--set", "audio.mel_inverse=pinv",
                    "--set", "audio.griffin_lim_iters=32"]),
    "roll_true": ("2", "train on the true binary roll, sample on the thresholded prediction",
                  ["--set", "train.roll_condition=true"]),
    "roll_predicted": ("2", "train stages 2 and 3 on the predicted soft roll (the seed)",
                       ["--set", "train.roll_condition=predicted"]),
    "dropout_independent": ("3", "each condition dropped on its own with p=0.1, no joint drop",
                            ["--set", "train.cond_dropout_all=0", "--set",
                             "train.cond_dropout=0.1"]),
    "no_contrastive": ("4", "stage 3 without the InfoNCE term",
                       ["--set", "train.contrastive_weight=0"]),
    "no_dpo": ("5", "stage 3 without preference pairs", ["--no-dpo"]),
    "stage3_full_lr": ("", "stage 3 at the full LR (train.stage3_lr_scale=1)",
                       ["--set", "train.stage3_lr_scale=1"]),
}

# columns taken from the demo's copbench results of run-stage3 (sampling seed 0)
BOARD = ("midi_note_f1", "av_align", "fad_mel")

# sampling-only variants: the ``default`` run's checkpoints sampled with other settings
SAMPLING: dict[str, tuple[str, str, dict]] = {
    "guidance_seed_w1": ("3", "the seed's guidance convention (roll kept in the null pass), "
                         "w=1 (= ours w=2)", {"guidance_convention": "seed",
                                                         "guidance_weight": 1.0}),
    "guidance_seed_w2": ("3", "the seed's guidance convention, w=2", {"guidance_convention": "seed",
                                                                      "guidance_weight": 2.0}),
    "no_guidance": ("3", "no guidance (ours, w=1)", {"guidance_weight": 1.0}),
    "sway_-1": ("3", "sway sampling s=-1 (F5-TTS)", {"sway": -1.0}),
}


def score_checkpoint(ckpt: Path, data: Path, seeds: list[int], split: str = "test",
                     sample: dict | None = None, track: str = "tv2a") -> dict:
    """Note F1 of a checkpoint's generations on ``track``: per seed the mean over clips;
    ``sample`` overrides fields of the checkpoint's sampling config."""
    from dataclasses import replace

    import copdata
    from copmodel.prefs import score_candidates
    from copmodel.sample import load_sampler

    import torch

    torch.set_num_threads(1)
    sampler = load_sampler(ckpt)
    if sample:
        sampler.cfg = replace(sampler.cfg, sample=replace(sampler.cfg.sample, **sample))
        sampler.model.cfg = sampler.cfg
    clips = list(copdata.open_dataset(data).clips(split))
    per_seed = []
    for seed in seeds:
        f1 = [score_candidates([sampler.generate(c, seed=seed, track=track)], c.sample_rate,
                                c.notes())[0]
              for c in clips]
        per_seed.append(float(np.mean(f1)))
    return {"note_f1": float(np.mean(per_seed)), "per_seed": per_seed,
            "seed_spread": float(np.std(per_seed)), "clips": len(clips)}


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def run_variant(name: str, out: Path, demo_args: list[str]) -> dict:
    folder = out / name
    done = folder / "summary.json"
    if not done.is_file():
        cmd = [sys.executable, str(ROOT / "examples" / "demo.py"), "--out", str(folder),
               *demo_args, *VARIANTS[name][2]]
        t0 = time.time()
        with open(out / f"{name}.log", "w") as log:
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        if rc != 0:
            return {"variant": name, "error": f"demo exited {rc}; see {out / (name + '.log')}",
                    "seconds": time.time() - t0}
    return {"variant": name, **json.loads(done.read_text())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="ablation")
    p.add_argument("--variants", nargs="*", default=list(VARIANTS) + list(SAMPLING),
                   choices=list(VARIANTS) + list(SAMPLING))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2, 3, 4])
    p.add_argument("--demo-args", default="", help="extra arguments for every demo run")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    demo_args = shlex.split(args.demo_args)
    trained = [n for n in args.variants if n in VARIANTS]
    if any(n in SAMPLING for n in args.variants) and "default" not in trained:
        trained.insert(0, "default")
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        runs = {r["variant"]: r for r in pool.map(lambda n: run_variant(n, out, demo_args),
                                                  trained)}
    rows, jobs = [], {}
    with ProcessPoolExecutor(max(1, args.jobs), mp_context=get_context("spawn")) as pool:
        for name in args.variants:
            item, change, sample = ((VARIANTS[name][:2] + (None,)) if name in VARIANTS
                                    else SAMPLING[name])
            run = runs["default" if name in SAMPLING else name]
            row = {"variant": name, "item": item, "change": change}
            if "error" in run:
                row["error"] = run["error"]
            else:
                row["demo_seconds"] = run["seconds"]["total"] if name in VARIANTS else None
                if name in VARIANTS:  # the demo's own copbench scores (seed 0) of the model
                    res = json.loads((out / name / "results" / "run-stage3.json").read_text())
                    row["copbench"] = {m: res["metrics"][m]["mean"] for m in BOARD
                                       if m in res["metrics"]}
                cached = _read_json(out / f"{name}.scores.json")
                for stage in (2, 3):
                    if cached.get("seeds") == args.seeds and f"stage{stage}" in cached:
                        row[f"stage{stage}"] = cached[f"stage{stage}"]
                        continue
                    ckpt = out / run["variant"] / "run" / f"stage{stage}" / "last.ckpt"
                    jobs[name, stage] = pool.submit(score_checkpoint, ckpt, Path(run["dataset"]),
                                                    args.seeds, "test", sample)
            rows.append(row)
        for row in rows:
            for stage in (2, 3):
                if (row["variant"], stage) in jobs:
                    row[f"stage{stage}"] = jobs[row["variant"], stage].result()
            if "stage3" in row:  # scores are kept: a rerun only scores what is new
                (out / f"{row['variant']}.scores.json").write_text(json.dumps(
                    {"seeds": args.seeds, "stage2": row["stage2"], "stage3": row["stage3"]}))
            print(json.dumps(row), flush=True)
    (out / "ablation.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [f"note F1 on the demo test split, mean over clips and sampling seeds {args.seeds} "
             "(± std of the per-seed means).", "copbench columns: the demo's own leaderboard entry for run-stage3 (one "
             "sampling seed).", "",
             "| variant | item | change | stage 2 | stage 3 | "
             + " | ".join(f"copbench {m}" for m in BOARD) + " | demo s |",
             "|---|---|---|---|---|" + "---|" * len(BOARD) + "---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['variant']} | {r['item']} | {r['change']} | {r['error']} | | |")
            continue
        cells = [f"{r[f'stage{s}']['note_f1']:.3f} ± {r[f'stage{s}']['seed_spread']:.3f}"
                 for s in (2, 3)]
        secs = "" if r["demo_seconds"] is None else f"{r['demo_seconds']:.0f}"
        board = [f"{r['copbench'][m]:.4g}" if m in r.get("copbench", {}) else "" for m in BOARD]
        lines.append(f"| {r['variant']} | {r['item']} | {r['change']} | {cells[0]} | {cells[1]} "
                     f"| {' | '.join(board)} | {secs} |")
    (out / "ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
