"""``fad_<embedder>``: Fréchet Audio Distance between outputs and references.

Every paired clip's output and reference audio are embedded into ``(n_i, D)``
frames by one embedder (:mod:`copbench.embedders`); each set is summarised by
its float64 mean and covariance; FAD is the Fréchet distance between the two
Gaussians (:mod:`copbench.metrics.frechet`, flags reported). Lower is better.

The reference statistics are cached by a hash of (clip ids and the sha256 of
every reference audio file, embedder name, version, weights hash, settings)
under the copbench cache (never in the dataset folder). The 95% CI is a
bootstrap over the evaluated clips (100 resamples; the reference statistics
stay fixed; eigenvalue route). With ``per_clip=True`` each clip also gets the
Fréchet distance between its own frames' Gaussian and the reference one.
"""

from __future__ import annotations

import numpy as np

from .. import cache
from ..embedders import build_embedder
from ..stats import rng_for
from .base import Metric, ScoreItem, fit_length
from .frechet import _psd_sqrt, frechet_from_stats, gaussian_stats, trace_sqrt_product_eig

VERSION = "1.0"
N_BOOT = 100


class FadMetric(Metric):
    SET_LEVEL = True
    VERSION = VERSION

    def __init__(self, embedder: str, per_clip: bool = False):
        self.embedder = build_embedder(embedder).load()
        self.NAME = f"fad_{self.embedder.NAME}"
        self.COLUMNS = {self.NAME: False}
        self.per_clip = per_clip
        self._outputs: list[np.ndarray] = []
        self._refs: dict[str, np.ndarray] = {}
        self._ref_files: list[tuple[str, str]] = []
        self._clips: list = []  # reference clips (not their audio: re-read on a cache miss)
        self.flags: list[str] = []

    def settings(self) -> dict:
        return {"embedder": self.embedder.provenance(), "covariance": "unbiased (ddof=1)",
                "ci": f"bootstrap over clips, {N_BOOT} resamples", "per_clip": self.per_clip}

    def provenance(self) -> dict:
        out = super().provenance()
        out["flags"] = list(self.flags)
        return out

    def _ref_key(self) -> str:
        return cache.cache_key({"kind": "fad_reference", "files": sorted(self._ref_files),
                                "embedder": self.embedder.provenance()})

    def score(self, item: ScoreItem) -> dict[str, float]:
        emb = self.embedder.embed(item.audio, item.sample_rate)
        self._outputs.append(emb)
        self._clips.append(item.clip)
        ref_file = item.clip.dir / "audio.flac"
        self._ref_files.append((item.clip_id, cache.file_sha256(ref_file)))
        return {}

    def _reference_stats(self) -> tuple[np.ndarray, np.ndarray, int]:
        key = self._ref_key()
        hit = cache.load("fad_reference", key)
        if hit is not None:
            return hit["mu"], hit["sigma"], int(hit["n"])
        frames = np.concatenate([
            self.embedder.embed(fit_length(clip.audio(), clip.num_samples), clip.sample_rate)
            for clip in self._clips])
        mu, sigma = gaussian_stats(frames)
        cache.save("fad_reference", key, {"mu": mu, "sigma": sigma, "n": np.int64(frames.shape[0])})
        return mu, sigma, frames.shape[0]

    def finalize(self, seed: int) -> dict:
        if not self._outputs:
            return {}
        mu_r, sigma_r, n_r = self._reference_stats()
        frames = np.concatenate(self._outputs)
        mu, sigma = gaussian_stats(frames)
        result = frechet_from_stats(mu, sigma, mu_r, sigma_r, n_samples=min(frames.shape[0], n_r))
        self.flags = sorted(set(result.flags))
        # Bootstrap over clips with the eigenvalue route. For n frames with n <= D the
        # nonzero eigenvalues of S_r^(1/2) S S_r^(1/2) equal those of the n x n matrix
        # Xc S_r Xc^T / (n - 1) (Xc: centred frames), which is far cheaper.
        root_r = _psd_sqrt(sigma_r)
        base_r = float(np.trace(sigma_r))
        rng = rng_for(seed, self.NAME)
        n = len(self._outputs)
        boots = []
        for _ in range(N_BOOT if n > 1 else 0):
            pick = np.concatenate([self._outputs[i] for i in rng.integers(0, n, size=n)])
            if pick.shape[0] < 2:
                continue
            m = pick.mean(axis=0)
            centred = pick - m
            d = m - mu_r
            trace_s = float((centred * centred).sum()) / (pick.shape[0] - 1)
            if pick.shape[0] <= pick.shape[1]:
                gram = centred @ sigma_r @ centred.T / (pick.shape[0] - 1)
                w = np.linalg.eigvalsh((gram + gram.T) / 2)
                tr_sqrt = float(np.sqrt(np.clip(w, 0, None)).sum())
            else:
                tr_sqrt = trace_sqrt_product_eig(sigma_r, np.cov(pick, rowvar=False), root_r)
            boots.append(max(float(d @ d + trace_s + base_r - 2 * tr_sqrt), 0.0))
        ci = ([float(v) for v in np.percentile(boots, [2.5, 97.5])] if boots
              else [result.value, result.value])
        summary = {"mean": result.value, "ci95": ci, "n": n, "value_eig": result.value_eig,
                   "flags": self.flags}
        out = {self.NAME: summary}
        if self.per_clip:
            per = {}
            for clip, emb in zip(self._clips, self._outputs):
                if emb.shape[0] >= 2:
                    m, s = gaussian_stats(emb)
                    per[str(clip.id)] = frechet_from_stats(m, s, mu_r, sigma_r).value
            summary["per_clip"] = per
        return out
