"""A seeded model of raters, to check that ``copbench mos`` recovers a known MOS.

Rating of system s on clip c by rater r for one question:
``clip(round(mu_s + b_r + g_c + e_sc + eps), 1, 5)`` with rater bias
``b_r ~ N(0, rater_sd)``, clip effect ``g_c ~ N(0, clip_sd)`` shared by all
systems, system-by-clip interaction ``e_sc ~ N(0, interaction_sd)`` and noise
``eps ~ N(0, noise_sd)``. The true MOS of s is the population expectation of
that rating, :func:`true_mos` (exact, from the normal CDF). Careless raters
(``careless``) rate uniformly at random and should be screened out.

:func:`write_simulated_study` writes a study key (no media: ``copbench mos``
reads only the key, written beside ``out`` as
:func:`~copbench.listen.study.default_key_path` says) and one ratings file per rater, in the page's format.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..results import now_iso
from .order import trial_order
from .study import QUESTIONS, SCALE, Stimulus, StudyKey, default_key_path, key_hash, spec_hash


@dataclass(frozen=True)
class RaterModel:
    rater_sd: float = 0.4
    clip_sd: float = 0.3
    interaction_sd: float = 0.2
    noise_sd: float = 0.6

    @property
    def total_sd(self) -> float:
        return math.sqrt(self.rater_sd ** 2 + self.clip_sd ** 2 + self.interaction_sd ** 2
                         + self.noise_sd ** 2)


def true_mos(mu: float, sd: float) -> float:
    """E[clip(round(X), 1, 5)] for X ~ N(mu, sd)."""
    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf((x - mu) / (sd * math.sqrt(2))))
    edges = [-math.inf, 1.5, 2.5, 3.5, 4.5, math.inf]
    return sum(k * (cdf(edges[k]) - cdf(edges[k - 1])) for k in range(1, 6))


def write_simulated_study(out: str | Path, latent: dict[str, dict[str, float]],
                          roles: dict[str, str], n_clips: int = 12, n_raters: int = 20,
                          careless: int = 0, model: RaterModel = RaterModel(),
                          seed: int = 0) -> tuple[StudyKey, list[Path], dict]:
    """Simulate a study of the systems in ``latent`` (system -> question -> mu).

    Returns the key, the ratings files, and the true MOS (system -> question)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([int(seed), 0x51])
    clips = [f"clip{j:03d}" for j in range(n_clips)]
    stimuli = {}
    for system in sorted(latent):
        for clip in clips:
            stim_id = f"s{rng.integers(1 << 47):012x}"
            stimuli[stim_id] = Stimulus(stim_id, system, roles.get(system, "model"), clip)
    spec = {"format": "copbench-study", "version": 1, "study_id": f"sim-{seed}",
            "order_seed": int(seed), "questions": QUESTIONS,
            "scale": {str(k): v for k, v in SCALE.items()}, "training": [],
            "trials": [{"stimulus": s, "media": f"media/{s}.mp4"} for s in sorted(stimuli)],
            "post_url": None}
    secret = f"{rng.integers(1 << 62):016x}" * 4
    spec["key_hash"] = key_hash(stimuli, secret)
    key = StudyKey(spec, spec_hash(spec), stimuli,
                   {"simulated": True, "rater_model": model.__dict__, "split": "test"}, now_iso(),
                   secret)
    default_key_path(out).write_text(json.dumps(key.to_dict(), sort_keys=True, indent=1), "utf-8")
    questions = [q["id"] for q in QUESTIONS]
    clip_fx = {(c, q): rng.normal(0, model.clip_sd) for c in clips for q in questions}
    inter_fx = {(s, q): rng.normal(0, model.interaction_sd) for s in stimuli for q in questions}
    files = []
    for r in range(n_raters + careless):
        rater = f"rater{r:02d}"
        bias = {q: rng.normal(0, model.rater_sd) for q in questions}
        rows = []
        for pos, stim in enumerate(trial_order(sorted(stimuli), key.spec["order_seed"], rater)):
            s = stimuli[stim]
            row = {"trial": pos + 1, "stimulus": stim, "play_count": 1, "listened_s": 10.0,
                   "shown": f"2026-01-01T{pos // 120:02d}:{pos // 2 % 60:02d}:{pos % 2 * 30:02d}Z",
                   "time": f"2026-01-01T{pos // 120:02d}:{pos // 2 % 60:02d}:"
                           f"{pos % 2 * 30 + 20:02d}Z"}
            for q in questions:
                if r >= n_raters:
                    row[q] = int(rng.integers(1, 6))
                    continue
                x = (latent[s.system][q] + bias[q] + clip_fx[(s.clip, q)] + inter_fx[(stim, q)]
                     + rng.normal(0, model.noise_sd))
                row[q] = int(min(5, max(1, math.floor(x + 0.5))))
            rows.append(row)
        doc = {"format": "copbench-ratings", "version": 1, "study_id": key.study_id,
               "study_hash": key.study_hash, "rater_id": rater, "training": [], "ratings": rows}
        path = out / f"ratings-{rater}.json"
        path.write_text(json.dumps(doc), encoding="utf-8")
        files.append(path)
    truth = {s: {q: true_mos(mu, model.total_sd) for q, mu in qs.items()}
             for s, qs in latent.items()}
    return key, files, truth
