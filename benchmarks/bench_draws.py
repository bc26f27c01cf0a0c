"""The demo's headline over data draws and sampling seeds, on valid and test.

    PYTHONPATH=. python benchmarks/bench_draws.py --out DRAWS [--draws 0 1 2]
        [--seeds 0 1 2 3 4] [--jobs 2] [--demo-args "..."]

One ``examples/demo.py --seed N`` run per data draw N (other synthetic performances,
split and initialisation; ``OUT/draw-N/``, skipped when its ``summary.json`` exists).
Each run's stage-3 checkpoint then generates the valid and the test split on both
tracks (tv2a: video + the clip's caption; v2a: video + one neutral prompt) once per
sampling seed, scored with ``benchmarks/bench_ablation.score_checkpoint`` (note F1 of
the transcription, copbench's ``midi_note_f1``): per draw the mean over clips and
sampling seeds. The headline is the mean over draws, with the std and the min-max of
the per-draw means. The demo's own copbench entry (sampling seed 0, test) is shown
beside it.

Hyperparameters are tuned on ``valid``; ``test`` is for reporting. Writes
``OUT/draw-N.scores.json`` (kept: a rerun scores only what is new), ``OUT/draws.json``
and ``OUT/draws.md``.
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_ablation import score_checkpoint  # noqa: E402

SPLITS = ("valid", "test")
TRACKS = ("tv2a", "v2a")


def run_draw(draw: int, out: Path, demo_args: list[str]) -> dict:
    folder = out / f"draw-{draw}"
    done = folder / "summary.json"
    if not done.is_file():
        cmd = [sys.executable, str(ROOT / "examples" / "demo.py"), "--out", str(folder),
               "--seed", str(draw), *demo_args]
        t0 = time.time()
        with open(out / f"draw-{draw}.log", "w") as log:
            rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        if rc != 0:
            return {"draw": draw, "error": f"demo exited {rc}; see {out}/draw-{draw}.log",
                    "seconds": time.time() - t0}
    return {"draw": draw, **json.loads(done.read_text())}


def spread(values: list[float]) -> dict:
    return {"mean": float(np.mean(values)), "std": float(np.std(values)),
            "min": float(np.min(values)), "max": float(np.max(values)), "n": len(values)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="draws")
    p.add_argument("--draws", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                   help="sampling seeds")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--demo-args", default="", help="extra arguments for every demo run")
    args = p.parse_args(argv)
    import copdata

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    demo_args = shlex.split(args.demo_args)
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        runs = list(pool.map(lambda d: run_draw(d, out, demo_args), args.draws))
    rows, jobs = [], {}
    with ProcessPoolExecutor(max(1, args.jobs), mp_context=get_context("spawn")) as pool:
        for run in runs:
            row = {"draw": run["draw"]}
            if "error" in run:
                rows.append({**row, "error": run["error"]})
                continue
            data = out / f"draw-{run['draw']}" / "data"
            ds = copdata.open_dataset(data)
            row["clips"] = {s: len(ds.ids(s)) for s in ("train", "valid", "test")}
            row["roll_f1"] = run.get("roll_predictor", {}).get("f1")
            row["copbench_seed0"] = run.get("generator", {})
            row["seconds"] = run["seconds"]["total"]
            cache = out / f"draw-{run['draw']}.scores.json"
            cached = json.loads(cache.read_text()) if cache.is_file() else {}
            ckpt = out / f"draw-{run['draw']}" / "run" / "stage3" / "last.ckpt"
            for split in SPLITS:
                if not row["clips"][split]:
                    continue
                for track in TRACKS:
                    key = f"{split}/{track}"
                    if cached.get("seeds") == args.seeds and key in cached:
                        row[key] = cached[key]
                    else:
                        jobs[run["draw"], key] = pool.submit(score_checkpoint, ckpt, data,
                                                             args.seeds, split, None, track)
            rows.append(row)
        for row in rows:
            keys = [k for (d, k) in jobs if d == row["draw"]]
            for key in keys:
                row[key] = jobs[row["draw"], key].result()
            if keys:
                (out / f"draw-{row['draw']}.scores.json").write_text(json.dumps(
                    {"seeds": args.seeds, **{k: row[k] for k in row if "/" in k}}))
            print(json.dumps(row), flush=True)
    ok = [r for r in rows if "error" not in r]
    headline = {}
    for split in SPLITS:
        for track in TRACKS:
            key = f"{split}/{track}"
            vals = [r[key]["note_f1"] for r in ok if key in r]
            if vals:
                headline[key] = spread(vals)
            seed0 = [r["copbench_seed0"][key]["midi_note_f1"] for r in ok
                     if key in r["copbench_seed0"]]
            if seed0:
                headline[f"copbench_seed0 {key}"] = spread(seed0)
    (out / "draws.json").write_text(json.dumps({"seeds": args.seeds, "rows": rows,
                                                "headline": headline}, indent=2) + "\n")
    cols = [f"{s}/{t}" for s in SPLITS for t in TRACKS]
    lines = [f"Generator (stage 3) note F1: mean over clips and sampling seeds {args.seeds} "
             "(± std of the per-seed means); copbench: the demo's own test entry (seed 0).", "",
             "| draw (`--seed`) | train / valid / test clips | Roll F1 | "
             + " | ".join(cols) + " | copbench test tv2a / v2a | demo s |",
             "|---|---|---|" + "---|" * len(cols) + "---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['draw']} | {r['error']} |" + " |" * (len(cols) + 3))
            continue
        c = r["clips"]
        cells = [f"{r[k]['note_f1']:.3f} ± {r[k]['seed_spread']:.3f}" if k in r else ""
                 for k in cols]
        cb = " / ".join(f"{r['copbench_seed0'][f'test/{t}']['midi_note_f1']:.3f}"
                        if f"test/{t}" in r["copbench_seed0"] else "" for t in TRACKS)
        roll = "" if r["roll_f1"] is None else f"{r['roll_f1']:.3f}"
        lines.append(f"| {r['draw']} | {c['train']} / {c['valid']} / {c['test']} | {roll} | "
                     + " | ".join(cells) + f" | {cb} | {r['seconds']:.0f} |")
    cells = [(f"**{headline[k]['mean']:.3f}** (std {headline[k]['std']:.3f}; "
              f"{headline[k]['min']:.3f}-{headline[k]['max']:.3f})") if k in headline else ""
             for k in cols]
    cb = " / ".join(f"{headline[f'copbench_seed0 test/{t}']['mean']:.3f}"
                    if f"copbench_seed0 test/{t}" in headline else "" for t in TRACKS)
    lines.append(f"| mean over {len(ok)} draws (std; min-max) | | | " + " | ".join(cells)
                 + f" | {cb} | |")
    (out / "draws.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
