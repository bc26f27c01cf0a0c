"""SI-SDR on scaled references plus noise at known SNRs."""

import numpy as np
import pytest

from copbench.metrics.si_sdr import CEIL_DB, FLOOR_DB, si_sdr


@pytest.mark.parametrize("snr_db", [-10.0, 0.0, 12.0, 30.0])
def test_known_snr(snr_db):
    rng = np.random.default_rng(0)
    n = 44100
    ref = rng.standard_normal(n)
    ref -= ref.mean()
    noise = rng.standard_normal(n)
    noise -= noise.mean()
    noise -= (noise @ ref) / (ref @ ref) * ref  # exactly orthogonal to the reference
    noise *= np.sqrt((ref @ ref) / (noise @ noise) / 10 ** (snr_db / 10))
    for scale in (1.0, 0.1, 7.0):
        out = scale * (ref + noise)
        assert si_sdr(out, ref) == pytest.approx(snr_db, abs=1e-6)


def test_scale_and_offset_invariance():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal(1000)
    out = ref + 0.3 * rng.standard_normal(1000)
    v = si_sdr(out, ref)
    assert si_sdr(3 * out + 0.5, ref - 2.0) == pytest.approx(v, abs=1e-9)


def test_degenerate_cases_are_defined():
    ref = np.sin(np.arange(1000) / 10)
    assert si_sdr(np.zeros(1000), ref) == FLOOR_DB
    assert si_sdr(ref, np.zeros(1000)) == FLOOR_DB
    assert si_sdr(np.zeros(1000), np.zeros(1000)) == CEIL_DB
    assert si_sdr(np.full(1000, 0.2), np.full(1000, -0.1)) == CEIL_DB  # both zero after mean removal
    assert si_sdr(2 * ref, ref) == CEIL_DB
    with pytest.raises(ValueError):
        si_sdr(np.zeros(10), np.zeros(11))
