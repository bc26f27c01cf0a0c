"""``copbench mos STUDY_DIR RATINGS... --out RESULTS_DIR``: MOS with raters-and-clips CIs.

For each system of the study (models, the hidden reference ``oracle``, the
anchor) and each question (``quality``, ``match``), the MOS is the mean of
every kept rating of the system's test trials. Its 95% CI is a two-way
("pigeonhole", Owen 2007) percentile bootstrap: each of ``n_boot`` (2000)
resamples draws the kept raters with replacement *and*, independently, the
test clips with replacement, and takes the mean of every rating at a drawn
(rater, clip) cell with the product of their multiplicities as weight. It so
covers both the rater sample and the clip sample; it is known to be slightly
conservative. (An interval that would miss the mean, possible only with very
few raters or clips, is widened to contain it.) The same resampled raters and clips serve every system
(common random numbers), seeded by ``--seed``.

Results: ``mos_quality`` and ``mos_match`` are written into
``RESULTS_DIR/<system>.json`` (created, with only these metrics, when the
system has no results file yet, as the reference and the anchor usually do)
with ``n_raters``, ``n_ratings``, ``n_clips`` and ``screened_raters``; the
per-clip means go to ``per_clip``; provenance records the study hash, the
ratings files (sha256), the screening rule and rejected files.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import __version__
from .listen.study import read_key
from .ratings import (MAX_REFERENCE_BELOW_ANCHOR, QUESTIONS, RaterRatings, RatingsError,
                      load_raters, screen)
from .results import SCHEMA_VERSION, now_iso, read_results, safe_name, write_results
from .stats import LEVEL, rng_for

log = logging.getLogger(__name__)
VERSION = "1.0"
N_BOOT = 2000
CI_METHOD = "two-way percentile bootstrap over raters and clips (pigeonhole)"


@dataclass
class MosEstimate:
    system: str
    question: str
    mean: float
    ci95: tuple[float, float]
    n_raters: int
    n_ratings: int
    n_clips: int
    per_clip: dict[str, float]

    def to_entry(self, screened: list[str]) -> dict:
        return {"mean": self.mean, "ci95": list(self.ci95), "n": self.n_ratings,
                "higher_is_better": True, "n_raters": self.n_raters,
                "n_ratings": self.n_ratings, "n_clips": self.n_clips,
                "screened_raters": sorted(screened), "scale": "ACR 1-5",
                "ci_method": CI_METHOD}


def rating_matrix(raters: list[RaterRatings], stim_by_clip: dict[str, str],
                  clips: list[str], question: str) -> np.ndarray:
    """float64 ``(raters, clips)``; NaN where a rater did not rate that clip."""
    out = np.full((len(raters), len(clips)), np.nan)
    for i, rater in enumerate(raters):
        for j, clip in enumerate(clips):
            row = rater.ratings.get(stim_by_clip.get(clip, ""))
            if row is not None:
                out[i, j] = row[question]
    return out


def two_way_bootstrap(matrix: np.ndarray, rater_weights: np.ndarray, clip_weights: np.ndarray,
                      level: float = LEVEL) -> tuple[float, float]:
    """Percentile CI of the weighted mean of ``matrix`` over resampled raters x clips.

    ``rater_weights`` ``(B, R)`` and ``clip_weights`` ``(B, C)`` are multiplicities."""
    mask = np.isfinite(matrix).astype(np.float64)
    values = np.where(mask > 0, matrix, 0.0)
    num = np.einsum("br,rc,bc->b", rater_weights, values, clip_weights)
    den = np.einsum("br,rc,bc->b", rater_weights, mask, clip_weights)
    means = num[den > 0] / den[den > 0]
    mean = float(values.sum() / mask.sum())
    if means.size == 0:
        return mean, mean
    lo, hi = np.percentile(means, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return float(min(lo, mean)), float(max(hi, mean))


def multiplicities(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_boot, n)`` counts of each index in a with-replacement resample of size n."""
    idx = rng.integers(0, n, size=(n_boot, n))
    return np.stack([np.bincount(row, minlength=n) for row in idx]).astype(np.float64)


def estimate_mos(raters: list[RaterRatings], key, seed: int = 0,
                 n_boot: int = N_BOOT) -> list[MosEstimate]:
    """MOS per system and question over the kept ``raters`` (screening done)."""
    kept = [r for r in raters if not r.screened]
    if not kept:
        raise RatingsError("no rater left after screening; see the screening reasons",
                           item=key.study_id)
    trials = key.test_stimuli()
    clips = sorted({key.stimuli[s].clip for s in trials})
    systems: dict[str, dict[str, str]] = {}
    for stim in trials:
        s = key.stimuli[stim]
        systems.setdefault(s.system, {})[s.clip] = stim
    rng = rng_for(seed, f"mos/{key.study_hash}")
    rater_w = multiplicities(len(kept), n_boot, rng)
    clip_w = multiplicities(len(clips), n_boot, rng)
    out = []
    for system in sorted(systems):
        for question in QUESTIONS:
            matrix = rating_matrix(kept, systems[system], clips, question)
            rated = np.isfinite(matrix)
            if not rated.any():
                continue
            lo, hi = two_way_bootstrap(matrix, rater_w, clip_w)
            per_clip = {c: float(np.nanmean(matrix[:, j])) for j, c in enumerate(clips)
                        if rated[:, j].any()}
            out.append(MosEstimate(system, question, float(matrix[rated].mean()), (lo, hi),
                                   int(rated.any(axis=1).sum()), int(rated.sum()),
                                   int(rated.any(axis=0).sum()), per_clip))
    return out


def _results_for(system: str, results_dir: Path, key) -> dict:
    path = results_dir / f"{safe_name(system)}.json"
    if path.is_file():
        results = read_results(path)
        if results["model"] != system:
            raise RatingsError(f"{path.name} holds model {results['model']!r}, not {system!r}",
                               item=str(path))
        fp = results.get("provenance", {}).get("dataset", {}).get("fingerprint")
        if fp and fp != key.settings.get("dataset_fingerprint"):
            log.warning("%s was scored on another dataset than the study's (fingerprints differ)",
                        path.name)
        return results
    n_clips = len({key.stimuli[s].clip for s in key.test_stimuli()})
    return {"schema": SCHEMA_VERSION, "model": system, "metrics": {}, "per_clip": {},
            "pairing": {"paired": n_clips, "missing": [], "extra": []}, "errors": {},
            "provenance": {"dataset": {"fingerprint": key.settings.get("dataset_fingerprint"),
                                       "split": key.settings.get("split"),
                                       "root": key.settings.get("data")},
                           "model": key.settings.get("systems", {}).get(system, {}).get("info", {}),
                           "metrics": {}, "copbench_version": __version__,
                           "seed": key.settings.get("seed"), "command": []},
            "created": now_iso()}


def run_mos(study_dir: str | Path, ratings: list[str | Path], out: str | Path, seed: int = 0,
            allow_incomplete: bool = False,
            max_reference_below_anchor: float = MAX_REFERENCE_BELOW_ANCHOR,
            n_boot: int = N_BOOT, command: list[str] | None = None,
            key_path: str | Path | None = None) -> dict:
    """Validate, screen, estimate and write; returns a report dict
    (``estimates``, ``raters``, ``rejected``, ``written``)."""
    key = read_key(study_dir, key_path)
    raters, rejected = load_raters(list(ratings), key)
    if not raters:
        raise RatingsError("no valid ratings file (" + "; ".join(
            f"{r['path']}: {r['error']}" for r in rejected) + ")", item=str(study_dir))
    screen(raters, key, allow_incomplete, max_reference_below_anchor)
    estimates = estimate_mos(raters, key, seed=seed, n_boot=n_boot)
    screened = [r.rater_id for r in raters if r.screened]
    out = Path(out)
    written = []
    settings = {"study_id": key.study_id, "study_hash": key.study_hash, "seed": int(seed),
                "n_boot": n_boot, "level": LEVEL, "ci_method": CI_METHOD,
                "screening": {"allow_incomplete": allow_incomplete,
                              "max_reference_below_anchor": max_reference_below_anchor,
                              "rules": ["incomplete", "too_few", "reference_below_anchor",
                                        "straight_lining"]},
                "raters": [r.to_dict() for r in raters], "rejected_files": rejected}
    for system in sorted({e.system for e in estimates}):
        results = _results_for(system, out, key)
        for e in (e for e in estimates if e.system == system):
            column = f"mos_{e.question}"
            results["metrics"][column] = e.to_entry(screened)
            for clip, value in e.per_clip.items():
                results.setdefault("per_clip", {}).setdefault(clip, {})[column] = value
        results["provenance"].setdefault("metrics", {})["mos"] = {"version": VERSION,
                                                                  "settings": settings}
        if command is not None:
            results["provenance"]["mos_command"] = list(command)
        results.pop("path", None)
        written.append(str(write_results(results, out)))
    return {"study_id": key.study_id, "estimates": estimates, "raters": raters,
            "rejected": rejected, "written": written}


def ratings_frame(study_dir: str | Path, ratings: list[str | Path],
                  key_path: str | Path | None = None):
    """Every rating of the valid files as a pandas DataFrame, for analysis in a
    notebook: ``rater``, ``position`` (1-based, in that rater's order),
    ``stimulus``, ``system``, ``role``, ``clip``, ``question``, ``rating``,
    ``screened`` (the rater's screening reasons, joined; empty = kept)."""
    import pandas as pd

    from .listen.order import trial_order
    key = read_key(study_dir, key_path)
    raters, _ = load_raters(list(ratings), key)
    screen(raters, key)
    rows = []
    for rater in raters:
        order = trial_order(key.test_stimuli(), key.spec["order_seed"], rater.rater_id)
        position = {stim: i + 1 for i, stim in enumerate(order)}
        for stim, values in sorted(rater.ratings.items(), key=lambda kv: position[kv[0]]):
            s = key.stimuli[stim]
            for question in QUESTIONS:
                rows.append({"rater": rater.rater_id, "position": position[stim],
                             "stimulus": stim, "system": s.system, "role": s.role,
                             "clip": s.clip, "question": question, "rating": values[question],
                             "screened": "; ".join(rater.screened)})
    return pd.DataFrame(rows, columns=["rater", "position", "stimulus", "system", "role", "clip",
                                       "question", "rating", "screened"])


def _printable(text) -> str:
    """``text`` with control characters (newlines, ANSI escapes) shown escaped."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def format_report(report: dict) -> str:
    lines = [f"study {_printable(report['study_id'])}: {len(report['raters'])} ratings files "
             f"kept, {len(report['rejected'])} rejected"]
    for r in report["rejected"]:
        lines.append(f"  REJECTED {_printable(r['path'])}: {_printable(r['error'])}")
    for r in report["raters"]:
        if r.screened:
            lines.append(f"  screened rater {_printable(r.rater_id)}: {'; '.join(r.screened)}")
    lines.append(f"{'system':24s} {'question':8s} {'MOS':>6s}  {'95% CI':>14s}  raters  ratings")
    for e in report["estimates"]:
        lines.append(f"{_printable(e.system):24s} {e.question:8s} {e.mean:6.3f}  [{e.ci95[0]:.2f}, "
                     f"{e.ci95[1]:.2f}]  {e.n_raters:6d}  {e.n_ratings:7d}")
    lines += [f"wrote {p}" for p in report["written"]]
    return "\n".join(lines) + "\n"
