"""FAD at infinite N (fadtk's FAD-inf / Chong & Forsyth's FID-inf) with an honest interval.

Why: the Fréchet distance of Gaussians fitted to N samples is biased upwards
by roughly ``c / N`` (the covariance estimates' noise), so FAD moves with the
number of clips and two models scored on different N are not comparable.

Extrapolation (as fadtk ``score_inf``): compute FD on random subsets of
``fraction`` f of the sampling *units* for ``STEPS`` fractions evenly spaced in
``[MIN_FRACTION, 1]`` (fadtk: 25 sizes from 500 samples to all), fit
``FD = intercept + slope / f`` by least squares, and report the intercept.
Units are clips in ``copbench run`` (frames of one clip are not independent)
and rows for :func:`frechet_distance_inf`. Unlike fadtk, which holds a large
baseline fixed and subsamples only the evaluated set, both sides are
subsampled (with the same fraction; a clip present on both sides is kept or
dropped on both, so paired outputs stay paired): our reference set is as small
as the evaluated one, and its own ``1/N`` bias has to go too.

Interval (bias-aware, by half-sampling): draw ``HALVES`` random halves of the
units (stratified the same way), compute the extrapolated value on each half,
and take their standard deviation ``s``. For a statistic whose variance
scales as ``1/N``, a half drawn without replacement spreads around the full
value with the full sample's variance (``2V - V``), so ``value ± 1.96 s`` is
a 95% interval for the FD of the two *distributions* (infinite N). At a true
distance of 0 the statistic is not root-N and the interval is conservative.
The same halves give the spread of FD at the evaluated N
(``fd_n ± 1.96 s_n``): an interval for what a rerun at this N would give, not
for the distance itself (FD at finite N is biased). Both intervals are
symmetric, so each contains its value. The coverage of the infinite-N
interval is checked by a seeded simulation in ``tests/test_bench_fad_inf.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .frechet import frechet_result, frechet_samples_fast

STEPS = 20
MIN_FRACTION = 0.25
HALVES = 20
Z95 = 1.959963984540054


@dataclass
class FadInfResult:
    value: float  # FD extrapolated to infinite N
    ci95: tuple[float, float]
    value_at_n: float  # FD of all units (sqrtm route, clamped at 0)
    ci95_at_n: tuple[float, float]
    slope: float
    r2: float
    points: list[tuple[float, float]] = field(default_factory=list)  # (fraction, FD)
    flags: list[str] = field(default_factory=list)
    n_units: dict = field(default_factory=dict)
    n_frames: dict = field(default_factory=dict)


class _Units:
    """Frames of one side with the unit (clip) index of every row."""

    def __init__(self, units: dict, index: dict):
        self.frames = np.concatenate([np.asarray(v, np.float64) for v in units.values()])
        self.owner = np.concatenate([np.full(len(v), index[u], dtype=np.int64)
                                     for u, v in units.items()])
        self.ids = np.array(sorted({index[u] for u in units}), dtype=np.int64)

    def take(self, chosen: np.ndarray) -> np.ndarray | None:
        rows = self.frames[chosen[self.owner]]
        return rows if rows.shape[0] >= 2 else None


def _strata(a: _Units, b: _Units) -> list[np.ndarray]:
    both = np.intersect1d(a.ids, b.ids)
    return [both, np.setdiff1d(a.ids, b.ids), np.setdiff1d(b.ids, a.ids)]


def _pick(strata: list[np.ndarray], fraction: float, rng: np.random.Generator,
          size: int) -> np.ndarray:
    """A boolean mask over unit indices: ``fraction`` of every stratum (at least one)."""
    chosen = np.zeros(size, dtype=bool)
    for stratum in strata:
        if stratum.size:
            k = min(stratum.size, max(1, int(round(fraction * stratum.size))))
            chosen[rng.choice(stratum, size=k, replace=False)] = True
    return chosen


def _extrapolate(a: _Units, b: _Units, within: np.ndarray, rng: np.random.Generator,
                 steps: int, min_fraction: float):
    """(intercept, slope, r2, points) of FD against 1/fraction on subsets of the
    units marked in ``within``."""
    strata = [s[within[s]] for s in _strata(a, b)]
    points = []
    for fraction in np.linspace(min_fraction, 1.0, steps):
        chosen = _pick(strata, float(fraction), rng, within.size) if fraction < 1 else within
        rows_a, rows_b = a.take(chosen), b.take(chosen)
        if rows_a is None or rows_b is None:
            continue
        points.append((float(fraction), frechet_samples_fast(rows_a, rows_b)))
    if len({p[0] for p in points}) < 2:
        value = points[-1][1] if points else float("nan")
        return value, 0.0, float("nan"), points
    x = 1.0 / np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    slope, intercept = np.polyfit(x, y, 1)
    resid = y - (intercept + slope * x)
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / total if total > 0 else 1.0
    return float(intercept), float(slope), r2, points


def fad_inf_units(units_a: dict, units_b: dict, seed: int = 0, steps: int = STEPS,
                  min_fraction: float = MIN_FRACTION, halves: int = HALVES) -> FadInfResult:
    """FAD-inf of two sets of units (``{unit_id: (n_i, D) frames}``); ids present in
    both are subsampled together. Deterministic for a given ``seed``. Runs its many
    small eigenproblems with one BLAS thread (faster than many, and reproducible)."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):
        return _fad_inf_units(units_a, units_b, seed, steps, min_fraction, halves)


def _fad_inf_units(units_a: dict, units_b: dict, seed: int, steps: int, min_fraction: float,
                   halves: int) -> FadInfResult:
    if not units_a or not units_b:
        raise ValueError("FAD-inf needs at least one unit on each side")
    index = {u: i for i, u in enumerate(sorted(set(units_a) | set(units_b), key=str))}
    a, b = _Units(units_a, index), _Units(units_b, index)
    full = frechet_result(a.frames, b.frames)
    flags = list(full.flags)
    rng = np.random.default_rng(seed)
    everything = np.ones(len(index), dtype=bool)
    value, slope, r2, points = _extrapolate(a, b, everything, rng, steps, min_fraction)
    inf_halves, n_halves = [], []
    if min(a.ids.size, b.ids.size) >= 4:
        strata = _strata(a, b)
        for _ in range(halves):
            half = _pick(strata, 0.5, rng, len(index))
            rows_a, rows_b = a.take(half), b.take(half)
            if rows_a is None or rows_b is None:
                continue
            n_halves.append(frechet_samples_fast(rows_a, rows_b))
            inf_halves.append(_extrapolate(a, b, half, rng, steps, min_fraction)[0])
    if len(inf_halves) >= 2:
        sd_inf, sd_n = float(np.std(inf_halves, ddof=1)), float(np.std(n_halves, ddof=1))
    else:
        flags.append("too_few_clips")
        sd_inf = sd_n = 0.0
    if not np.isfinite(r2) or len(points) < 3:
        flags.append("inf_fit_degenerate")
    return FadInfResult(
        value=value, ci95=(value - Z95 * sd_inf, value + Z95 * sd_inf),
        # FD at a finite N is a distance (>= 0): the lower end stops at 0, or at the value
        # itself when rounding made that slightly negative, so the interval holds its value.
        value_at_n=full.value,
        ci95_at_n=(min(full.value, max(0.0, full.value - Z95 * sd_n)), full.value + Z95 * sd_n),
        slope=slope, r2=r2, points=points, flags=sorted(set(flags)),
        n_units={"a": int(a.ids.size), "b": int(b.ids.size)},
        n_frames={"a": int(a.frames.shape[0]), "b": int(b.frames.shape[0])})


def frechet_distance_inf(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, tuple[float, float]]:
    """FD extrapolated to infinite N between the Gaussians of two ``(N, D)`` arrays
    (rows are the independent units), and its 95% interval (see module doc)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"need two (N >= 2, D) arrays of one D, got {a.shape} and {b.shape}")
    res = fad_inf_units({f"a{i}": a[i:i + 1] for i in range(len(a))},
                        {f"b{i}": b[i:i + 1] for i in range(len(b))}, seed=seed)
    return res.value, res.ci95
