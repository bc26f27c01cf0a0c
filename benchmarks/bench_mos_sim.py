"""Simulated listening study: does `copbench mos` recover a known MOS within its CI?

One seeded 20-rater study (12 clips, 4 systems, 2 careless raters) printed as a
table of true MOS, estimate and 95% CI, then the empirical coverage of the CI
over ``--studies`` independent simulated studies.

    .venv/bin/python benchmarks/bench_mos_sim.py [--raters 20] [--clips 12] [--studies 200]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from copbench.listen.simulate import write_simulated_study
from copbench.mos import run_mos

LATENT = {"oracle": {"quality": 4.6, "match": 4.7}, "noise": {"quality": 1.2, "match": 1.1},
          "modelA": {"quality": 3.0, "match": 3.4}, "modelB": {"quality": 3.6, "match": 3.2}}
ROLES = {"oracle": "reference", "noise": "anchor"}


def one_study(folder: Path, seed: int, raters: int, clips: int, careless: int, n_boot: int):
    _, files, truth = write_simulated_study(folder, LATENT, ROLES, n_clips=clips,
                                            n_raters=raters, careless=careless, seed=seed)
    report = run_mos(folder, files, folder / "results", seed=0, n_boot=n_boot)
    return report, truth


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--raters", type=int, default=20)
    p.add_argument("--clips", type=int, default=12)
    p.add_argument("--careless", type=int, default=2)
    p.add_argument("--studies", type=int, default=200)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        report, truth = one_study(Path(tmp) / "main", args.seed, args.raters, args.clips,
                                  args.careless, 2000)
        screened = [f"{r.rater_id} ({'; '.join(r.screened)})" for r in report["raters"] if r.screened]
        print(f"simulated study: {args.raters} raters + {args.careless} careless, {args.clips} "
              f"clips, seed {args.seed}; screened: {', '.join(screened) or 'none'}")
        print(f"{'system':8s} {'question':8s} {'true':>6s} {'MOS':>6s}  {'95% CI':>14s}  covered")
        for e in report["estimates"]:
            t = truth[e.system][e.question]
            print(f"{e.system:8s} {e.question:8s} {t:6.3f} {e.mean:6.3f}  [{e.ci95[0]:.3f}, "
                  f"{e.ci95[1]:.3f}]  {'yes' if e.ci95[0] <= t <= e.ci95[1] else 'NO'}")
        start, hits, total, width = time.perf_counter(), 0, 0, 0.0
        for s in range(args.studies):
            report, truth = one_study(Path(tmp) / f"s{s}", 1000 + s, args.raters, args.clips,
                                      args.careless, 1000)
            for e in report["estimates"]:
                t = truth[e.system][e.question]
                hits += e.ci95[0] <= t <= e.ci95[1]
                total += 1
                width += e.ci95[1] - e.ci95[0]
        print(f"coverage of the 95% CI over {args.studies} studies x 8 (system, question): "
              f"{hits / total:.3f} (mean width {width / total:.3f}); "
              f"{(time.perf_counter() - start) / args.studies * 1000:.0f} ms per study")


if __name__ == "__main__":
    main()
