"""``fad_<embedder>``: Fréchet Audio Distance between outputs and references.

Every output clip's audio and every reference clip's audio are embedded into
``(n_i, D)`` frames by one embedder (:mod:`copbench.embedders`); each side is
summarised by its float64 mean and unbiased covariance; FAD is the Fréchet
distance between the two Gaussians (:mod:`copbench.metrics.frechet`, the value
fadtk / frechet-audio-distance / av-benchmark compute on the same frames).
Lower is better.

Reference side: *all* clips of the evaluated split, whatever the model
produced, so every model is compared with the same statistics; a model with
missing clips gets the flag ``missing_clips`` (and fewer output clips, shown
as N in the leaderboard). Reference frames are cached by a hash of (every
split clip id with its audio sha256, embedder name, version, weights hash,
settings) under the copbench cache (never in the dataset folder).

Two columns (see :mod:`copbench.metrics.fad_inf`):

- ``fad_<e>``: FD at the evaluated N, with N (output/reference clips and
  frames), flags (``rank_deficient``, ``negative``, ``missing_clips``, ...)
  and a 95% interval for the FD a rerun at this N would give (half-sampling
  over clips); FD at finite N is biased upwards, so compare models at equal N;
- ``fad_<e>_inf``: fadtk's FAD-inf (``score_inf``): reference statistics of
  all reference frames fixed, output frames drawn with replacement at 25 sizes
  from 500 to all, FD fitted against 1/n, the intercept; seeded by the run's
  seed. No interval (fadtk gives none); a negative intercept is flagged.

Audio: ``fad_vggish`` and ``fad_panns`` (av-benchmark's FD-VGG and FD-PANN)
prepare both sides as av-benchmark's ``AudioDataset`` (the whole file's mean
removed, resampled, cut at the clip length, a shorter output not padded; see
:func:`copbench.metrics.base.av_benchmark_prep`); the other embedders take the
output trimmed or zero-padded to the reference length, with its DC.

``per_clip=True`` also stores each clip's Fréchet distance between its own
frames' Gaussian and the reference one, under the per-clip column
``fad_<e>_clip_fd`` (a diagnostic, not a FAD: ``copbench compare`` never
bootstraps it as one).
"""

from __future__ import annotations

import numpy as np

from .. import cache
from ..embedders import build_embedder
from .base import (AV_BENCHMARK_EMBEDDERS, Metric, ScoreItem, av_benchmark_prep, fit_length,
                   remove_dc)
from .fad_inf import HALVES, MIN_N, STEPS, fad_inf, spread_at_n
from .frechet import frechet_from_stats, frechet_result, gaussian_stats

VERSION = "3.0"  # 3.0: _inf is fadtk's estimator
# 3.1 (fad_vggish, fad_panns only): av-benchmark's audio preparation on both sides
AV_BENCHMARK_VERSION = "3.1"


class FadMetric(Metric):
    SET_LEVEL = True
    VERSION = VERSION

    def __init__(self, embedder: str, per_clip: bool = False):
        self.embedder = build_embedder(embedder).load()
        self.NAME = f"fad_{embedder}"
        # FD-VGG / FD-PANN: audio prepared as av-benchmark prepares it (DC, cut)
        self.av_benchmark = embedder in AV_BENCHMARK_EMBEDDERS
        if self.av_benchmark:
            self.VERSION = AV_BENCHMARK_VERSION
        self.COLUMNS = {self.NAME: False, f"{self.NAME}_inf": False}
        self.per_clip = per_clip
        self._outputs: dict[str, np.ndarray] = {}
        self._split_clips: list = []  # from bind_split; else the scored clips
        self._scored_clips: dict = {}
        self.flags: list[str] = []

    def _audio_prep(self) -> dict:
        if self.av_benchmark:
            return av_benchmark_prep()
        return {"dc": "none", "length_rule": "the output trimmed or zero-padded at the end to "
                                             "the reference length"}

    def settings(self) -> dict:
        return {"embedder": self.embedder.provenance(), **self._audio_prep(),
                "covariance": "unbiased (ddof=1)",
                "reference": "all clips of the split",
                "fad_inf": f"fadtk score_inf: reference stats fixed, output frames drawn with "
                           f"replacement at {STEPS} sizes from {MIN_N} to all, FD = a + b / n, a",
                "ci": f"fad: spread at this N, half-sampling over clips ({HALVES} halves), "
                      f"value +- 1.96 sd; fad_inf: none",
                "per_clip": self.per_clip}

    def provenance(self) -> dict:
        out = super().provenance()
        out["flags"] = list(self.flags)
        return out

    def bind_split(self, clips: list) -> None:
        self._split_clips = sorted(clips, key=lambda c: str(c.id))

    def score(self, item: ScoreItem) -> dict[str, float]:
        if self.av_benchmark:
            self._outputs[item.clip_id] = self.embedder.embed(
                item.av_benchmark_output(), item.sample_rate, seconds=item.seconds)
        else:
            self._outputs[item.clip_id] = self.embedder.embed(item.audio, item.sample_rate)
        self._scored_clips[item.clip_id] = item.clip
        return {}

    def _reference_units(self) -> dict[str, np.ndarray]:
        clips = self._split_clips or [self._scored_clips[k] for k in sorted(self._scored_clips)]
        files = [(str(c.id), cache.file_sha256(c.dir / "audio.flac")) for c in clips]
        key = cache.cache_key({"kind": "fad_reference", "files": files,
                               "embedder": self.embedder.provenance(),
                               "audio_prep": self._audio_prep()})
        hit = cache.load("fad_reference", key)
        if hit is not None and {"ids", "lengths", "frames"} <= set(hit):  # else: an older layout
            bounds = np.cumsum(hit["lengths"])[:-1]
            return dict(zip([str(i) for i in hit["ids"]], np.split(hit["frames"], bounds)))
        units = {str(c.id): self._embed_reference(c) for c in clips}
        cache.save("fad_reference", key, {
            "ids": np.array(list(units), dtype=str),
            "lengths": np.array([u.shape[0] for u in units.values()], dtype=np.int64),
            "frames": np.concatenate(list(units.values()))})
        return units

    def _embed_reference(self, clip) -> np.ndarray:
        if self.av_benchmark:
            return self.embedder.embed(remove_dc(clip.audio()), clip.sample_rate,
                                       seconds=int(clip.num_samples) / int(clip.sample_rate))
        return self.embedder.embed(fit_length(clip.audio(), clip.num_samples), clip.sample_rate)

    def finalize(self, seed: int) -> dict:
        if not self._outputs:
            return {}
        refs = self._reference_units()
        outputs = dict(sorted(self._outputs.items()))
        out_frames = np.concatenate(list(outputs.values()))
        ref_frames = np.concatenate(list(refs.values()))
        full = frechet_result(out_frames, ref_frames)
        spread = spread_at_n(outputs, refs, seed=seed)
        inf = fad_inf(ref_frames, out_frames, seed=seed)
        flags = set(full.flags) | set(spread.flags)
        if set(refs) - set(outputs):
            flags.add("missing_clips")
        self.flags = sorted(flags)
        inf_flags = sorted((flags - {"negative"}) | set(inf.flags))
        counts = {"n_clips": {"output": len(outputs), "reference": len(refs)},
                  "n_frames": {"output": int(out_frames.shape[0]),
                               "reference": int(ref_frames.shape[0])}}
        summary = {"mean": full.value, "ci95": [float(v) for v in spread.ci95],
                   "n": len(outputs), **counts, "value_eig": full.value_eig,
                   "flags": self.flags, "set_level": True,
                   "interval": "spread of FD at this N (half-sampling over clips); "
                               "not an interval for the distance itself: see _inf"}
        inf_entry = {"mean": inf.value, "ci95": None, "n": len(outputs),
                     **counts, "slope": inf.slope, "r2": inf.r2, "flags": inf_flags,
                     "points": [[n, fd] for n, fd in inf.points], "set_level": True,
                     "estimator": "fadtk score_inf", "seed": seed,
                     "interval": "none (fadtk's FAD-inf gives none)"}
        if self.per_clip:
            mu_r, sigma_r = gaussian_stats(ref_frames)
            per = {}
            for cid, emb in outputs.items():
                if emb.shape[0] >= 2:
                    m, s = gaussian_stats(emb)
                    per[cid] = frechet_from_stats(m, s, mu_r, sigma_r).value
            summary["per_clip"] = per
            summary["per_clip_column"] = f"{self.NAME}_clip_fd"
        return {self.NAME: summary, f"{self.NAME}_inf": inf_entry}
