"""SI-SDR: scale-invariant signal-to-distortion ratio (dB), per clip.

Definition (Le Roux et al. 2019): remove the mean of the output ``s`` and the
reference ``r``; ``alpha = <s, r> / <r, r>``; target ``t = alpha r``; noise
``e = s - t``; ``SI-SDR = 10 log10(|t|^2 / |e|^2)`` in float64.

Degenerate cases have defined values, never NaN: the result is clipped to
``[-100, 100]`` dB; a silent (zero-energy after mean removal) reference and a
silent output give +100 dB (identical signals); exactly one of them silent
gives -100 dB; an output that is an exact scaled copy gives +100 dB.
"""

from __future__ import annotations

import numpy as np

from .base import Metric, ScoreItem

NAME = "si_sdr"
VERSION = "1.0"
FLOOR_DB = -100.0
CEIL_DB = 100.0
_TINY = 1e-20


def si_sdr(output: np.ndarray, reference: np.ndarray) -> float:
    """SI-SDR in dB of ``output`` against ``reference`` (equal lengths)."""
    return si_sdr_with_convention(output, reference)[0]


def si_sdr_with_convention(output: np.ndarray, reference: np.ndarray) -> tuple[float, str | None]:
    """``(SI-SDR dB, convention)``: the convention's name when a silent side
    decided the value (``both_silent`` +100, ``one_silent`` -100), else None."""
    s = np.asarray(output, dtype=np.float64).reshape(-1)
    r = np.asarray(reference, dtype=np.float64).reshape(-1)
    if s.shape != r.shape:
        raise ValueError(f"si_sdr needs equal lengths, got {s.shape[0]} and {r.shape[0]}")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(r))):
        raise ValueError("si_sdr input holds NaN or inf")
    s = s - s.mean()
    r = r - r.mean()
    rr, ss = float(r @ r), float(s @ s)
    if rr <= _TINY or ss <= _TINY:
        if rr <= _TINY and ss <= _TINY:
            return CEIL_DB, "both_silent"
        return FLOOR_DB, "one_silent"
    alpha = float(s @ r) / rr
    t = alpha * r
    e = s - t
    tt, ee = float(t @ t), float(e @ e)
    if ee <= _TINY * tt:
        return CEIL_DB, None
    if tt <= _TINY:
        return FLOOR_DB, None
    return float(np.clip(10.0 * np.log10(tt / ee), FLOOR_DB, CEIL_DB)), None


class SiSdr(Metric):
    NAME = NAME
    VERSION = VERSION
    COLUMNS = {"si_sdr": True}
    CONVENTIONS = {"both_silent": "output and reference silent: +100 dB",
                   "one_silent": "exactly one of output and reference silent: -100 dB"}

    def settings(self) -> dict:
        return {"zero_mean": True, "floor_db": FLOOR_DB, "ceil_db": CEIL_DB}

    def score(self, item: ScoreItem) -> dict[str, float]:
        value, convention = si_sdr_with_convention(item.audio, item.reference_audio())
        if convention:
            self.count_convention(convention)
        return {"si_sdr": value}
