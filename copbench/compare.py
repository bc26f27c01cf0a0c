"""``copbench compare A.json B.json``: per-metric differences B - A.

For every metric column with per-clip values in both files, the difference is
taken over the clips common to both (paired), with a seeded paired bootstrap
95% CI and the fraction of resamples where B - A > 0. Set-level columns (FAD
without per-clip values) show the difference of the two aggregates, without a
CI: a set-level column (``set_level`` in the results, every ``fad_*``) is never
bootstrapped from per-clip values, even when a file stores per-clip Fréchet
distances (those live under ``fad_*_clip_fd`` and are not a FAD). ``better`` says which model the CI favours given the metric's direction
(``tie`` when the CI contains 0). Both files should share the dataset
fingerprint; a mismatch is reported.
"""

from __future__ import annotations

from pathlib import Path

from .results import read_results
from .stats import paired_bootstrap_ci


def compare_results(a: dict, b: dict, seed: int = 0) -> dict:
    common = sorted(set(a.get("per_clip", {})) & set(b.get("per_clip", {})))
    fp_a = a.get("provenance", {}).get("dataset", {}).get("fingerprint")
    fp_b = b.get("provenance", {}).get("dataset", {}).get("fingerprint")
    rows = {}
    for column in sorted(set(a["metrics"]) & set(b["metrics"])):
        higher = a["metrics"][column].get("higher_is_better", True)
        set_level = (column.startswith("fad_") or a["metrics"][column].get("set_level")
                     or b["metrics"][column].get("set_level"))
        clips = [] if set_level else [c for c in common if column in a["per_clip"][c]
                                      and column in b["per_clip"][c]]
        if clips:
            res = paired_bootstrap_ci([a["per_clip"][c][column] for c in clips],
                                      [b["per_clip"][c][column] for c in clips],
                                      seed=seed, label=column)
            lo, hi = res["ci95"]
            if lo > 0 or hi < 0:
                b_up = lo > 0
                res["better"] = "B" if b_up == higher else "A"
            else:
                res["better"] = "tie"
        else:
            res = {"diff": b["metrics"][column]["mean"] - a["metrics"][column]["mean"],
                   "ci95": None, "n": 0, "better": None, "set_level": bool(set_level)}
        res["higher_is_better"] = higher
        rows[column] = res
    return {"a": a["model"], "b": b["model"], "common_clips": len(common),
            "same_dataset": fp_a == fp_b, "metrics": rows}


def compare_files(path_a: str | Path, path_b: str | Path, seed: int = 0) -> dict:
    return compare_results(read_results(path_a), read_results(path_b), seed=seed)


def format_comparison(cmp: dict) -> str:
    lines = [f"B - A with A = {cmp['a']}, B = {cmp['b']}: {cmp['common_clips']} common clips"]
    if not cmp["same_dataset"]:
        lines.append("WARNING: the two results come from different datasets (fingerprints differ)")
    lines.append(f"{'metric':30s} {'B - A':>10s}  {'95% CI':>22s}  {'n':>5s}  better")
    for name, r in cmp["metrics"].items():
        ci = f"[{r['ci95'][0]:.4f}, {r['ci95'][1]:.4f}]" if r["ci95"] else "(set-level, no CI)"
        lines.append(f"{name:30s} {r['diff']:10.4f}  {ci:>22s}  {r['n']:5d}  {r['better'] or '-'}")
    return "\n".join(lines) + "\n"
