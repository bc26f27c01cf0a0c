"""``is_panns`` and ``kl_panns``: av-benchmark's scores on PANNs Cnn14 logits.

Both take the 527 AudioSet logits of Cnn14 at 16 kHz on the *whole clip*
(:class:`copbench.embedders.panns.PannsEmbedder`, av-benchmark's ``logits``
feature: ``fc_audioset`` before the sigmoid).

``is_panns`` (higher is better), Inception Score as torch-fidelity's
``isc_features_to_metric`` which av-benchmark calls with ``splits=10,
samples_shuffle=True, rng_seed=2020``: permute the output clips with
``numpy.random.RandomState(2020)``, softmax the logits (float64), cut into
10 splits, per split ``exp(mean_x KL(p(y|x) || mean p(y)))``; the value is
the mean over splits (``std_splits`` is recorded). With fewer than 10 clips
the number of splits is the number of clips (flag ``few_clips``). Its CI is
a percentile bootstrap over clips (200 resamples), widened to contain the
value if resampling skew leaves it outside.

``kl_panns`` (lower is better), per clip, av-benchmark's ``KL-PANNS-softmax``
(``av_bench/metrics/kl.py`` ``compute_kl``, hkchengrex/av-benchmark):
``kl_div(log_softmax(out), log_softmax(ref), reduction="sum", log_target=True) / N``,
i.e. per clip ``sum_c p_ref,c (log p_ref,c - log p_out,c)`` with log-probabilities
from ``log_softmax`` and no epsilon; its mean over clips is ``compute_kl``'s
``kl_softmax``. ``kl_panns_sigmoid`` is av-benchmark's ``kl_sigmoid``: the same
sum with ``logsigmoid`` in place of ``log_softmax`` (positive-class terms only,
as av-benchmark computes it). ``kl_panns_audioldm`` is audioldm_eval's formula,
``kl_div((softmax(out) + 1e-6).log(), softmax(ref), reduction="sum") / N``: it
differs from av-benchmark's where ``p_out`` is small (up to ~12% at large KL), so
it carries its own name.

Audio (all columns, both sides): prepared as av-benchmark's ``AudioDataset``
(:func:`copbench.metrics.base.av_benchmark_prep`): the mean of the whole file
removed, resampled to 16 kHz, cut at the clip length, a shorter output not
padded.
"""

from __future__ import annotations

import numpy as np

from ..embedders import build_embedder
from ..stats import rng_for
from .base import Metric, ScoreItem, av_benchmark_prep

EPS = 1e-6
SPLITS = 10
ISC_SEED = 2020
N_BOOT = 200


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def inception_score(logits: np.ndarray, splits: int = SPLITS, shuffle: bool = True,
                    rng_seed: int = ISC_SEED) -> tuple[float, float]:
    """(mean, std over splits) of the Inception Score of ``(N, C)`` logits."""
    feature = np.asarray(logits, np.float64)
    n = feature.shape[0]
    if shuffle:
        feature = feature[np.random.RandomState(rng_seed).permutation(n)]
    p, log_p = _softmax(feature), _log_softmax(feature)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        q = p[lo:hi].mean(axis=0, keepdims=True)
        kl = (p[lo:hi] * (log_p[lo:hi] - np.log(q))).sum(axis=1).mean()
        scores.append(float(np.exp(kl)))
    return float(np.mean(scores)), float(np.std(scores))


def _kl_log(log_target: np.ndarray, log_estimate: np.ndarray) -> np.ndarray:
    """torch ``kl_div(log_estimate, log_target, log_target=True, reduction="none")``
    summed per row: ``sum exp(lt) * (lt - le)``."""
    return (np.exp(log_target) * (log_target - log_estimate)).sum(axis=-1)


def _log_sigmoid(x: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -np.asarray(x, np.float64))


def kl_softmax(output_logits: np.ndarray, reference_logits: np.ndarray) -> np.ndarray:
    """Per-clip av-benchmark KL-softmax: KL(softmax(reference) || softmax(output)), from
    ``log_softmax`` on both sides, no epsilon."""
    ref = _log_softmax(np.atleast_2d(np.asarray(reference_logits, np.float64)))
    out = _log_softmax(np.atleast_2d(np.asarray(output_logits, np.float64)))
    return _kl_log(ref, out)


def kl_sigmoid(output_logits: np.ndarray, reference_logits: np.ndarray) -> np.ndarray:
    """Per-clip av-benchmark KL-sigmoid: ``sum sigmoid(ref) (logsigmoid(ref) - logsigmoid(out))``."""
    return _kl_log(_log_sigmoid(np.atleast_2d(reference_logits)),
                   _log_sigmoid(np.atleast_2d(output_logits)))


def kl_softmax_audioldm(output_logits: np.ndarray, reference_logits: np.ndarray) -> np.ndarray:
    """Per-clip audioldm_eval KL-softmax: ``sum p_ref (log p_ref - log(p_out + 1e-6))``."""
    target = _softmax(np.atleast_2d(np.asarray(reference_logits, np.float64)))
    estimate = _softmax(np.atleast_2d(np.asarray(output_logits, np.float64)))
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(target > 0, target * (np.log(target) - np.log(estimate + EPS)), 0.0)
    return terms.sum(axis=-1)


class _PannsLogits(Metric):
    def __init__(self):
        self.embedder = build_embedder("panns").load()

    def settings(self) -> dict:
        return {"embedder": self.embedder.provenance(), "features": "Cnn14 logits, whole clip",
                **av_benchmark_prep()}

    def logits(self, audio: np.ndarray, sample_rate: int, seconds: float | None = None) -> np.ndarray:
        return self.embedder.embed_with_logits(audio, sample_rate, seconds)[1][0]

    def output_logits(self, item: ScoreItem) -> np.ndarray:
        """Logits of the output prepared as av-benchmark's (DC removed, cut at the clip length)."""
        return self.logits(item.av_benchmark_output(), item.sample_rate, item.seconds)

    def reference_logits(self, item: ScoreItem) -> np.ndarray:
        return self.logits(item.av_benchmark_reference(), item.sample_rate, item.seconds)


class InceptionScorePanns(_PannsLogits):
    NAME = "is_panns"
    VERSION = "1.1"  # 1.1: av-benchmark's audio preparation (DC removed, cut, no pad)
    COLUMNS = {"is_panns": True}
    SET_LEVEL = True

    def __init__(self):
        super().__init__()
        self._logits: dict[str, np.ndarray] = {}

    def settings(self) -> dict:
        return {**super().settings(), "splits": SPLITS, "shuffle_seed": ISC_SEED,
                "ci": f"percentile bootstrap over clips ({N_BOOT})"}

    def score(self, item: ScoreItem) -> dict[str, float]:
        self._logits[item.clip_id] = self.output_logits(item)
        return {}

    def finalize(self, seed: int) -> dict[str, dict]:
        if not self._logits:
            return {}
        logits = np.stack([self._logits[k] for k in sorted(self._logits)])
        n = logits.shape[0]
        splits = min(SPLITS, n)
        value, std = inception_score(logits, splits)
        boots = []
        if n > 1:
            rng = rng_for(seed, self.NAME)
            boots = [inception_score(logits[rng.integers(0, n, size=n)], splits)[0]
                     for _ in range(N_BOOT)]
        lo, hi = (np.percentile(boots, [2.5, 97.5]) if boots else (value, value))
        return {self.NAME: {"mean": value, "ci95": [min(float(lo), value), max(float(hi), value)],
                            "n": n, "std_splits": std, "splits": splits, "set_level": True,
                            "flags": ["few_clips"] if n < SPLITS else []}}


class KlPanns(_PannsLogits):
    NAME = "kl_panns"
    # 2.0: av-benchmark's log_softmax formula (was audioldm_eval's + 1e-6)
    # 2.1: av-benchmark's audio preparation on both sides (DC removed, cut, no pad)
    VERSION = "2.1"
    COLUMNS = {"kl_panns": False, "kl_panns_sigmoid": False, "kl_panns_audioldm": False}

    def settings(self) -> dict:
        return {**super().settings(),
                "kl_panns": "av-benchmark compute_kl kl_softmax (log_softmax, no epsilon)",
                "kl_panns_sigmoid": "av-benchmark compute_kl kl_sigmoid (logsigmoid)",
                "kl_panns_audioldm": "audioldm_eval: (softmax(out) + 1e-6).log()"}

    def score(self, item: ScoreItem) -> dict[str, float]:
        out, ref = self.output_logits(item), self.reference_logits(item)
        return {"kl_panns": float(kl_softmax(out, ref)[0]),
                "kl_panns_sigmoid": float(kl_sigmoid(out, ref)[0]),
                "kl_panns_audioldm": float(kl_softmax_audioldm(out, ref)[0])}
