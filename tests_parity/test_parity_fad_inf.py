"""``fad_<e>_inf`` / ``copbench.metrics.frechet_distance_inf`` against fadtk 1.1.0's own
``FrechetAudioDistance.score_inf`` (reference statistics from an ``.npz`` file, evaluation
embeddings as ``.npy`` files, its global numpy generator seeded with ``np.random.seed``).
Oracle: fadtk's code; bound: relative difference <= 1e-6 on the value and every point."""

import types

import numpy as np
import pytest

from copbench.metrics import frechet_distance_inf


def fadtk_score_inf(tmp_path, reference, evaluation, seed):
    from conftest import reference_import
    fad = reference_import("fadtk.fad")
    scorer = object.__new__(fad.FrechetAudioDistance)  # its __init__ loads a model and probes sox
    scorer.ml = types.SimpleNamespace(name="parity")
    stats = tmp_path / "reference_stats.npz"
    np.savez(stats, **{"parity.mu": reference.mean(0), "parity.cov": np.cov(reference, rowvar=False)})
    files = []
    for i, chunk in enumerate(np.array_split(evaluation, 7)):  # one file per "clip"
        files.append(tmp_path / f"clip{i}.npy")
        np.save(files[-1], chunk)
    np.random.seed(seed)
    return scorer.score_inf(stats, files)


@pytest.mark.parametrize("n_ref,n_eval,dim,shift", [(3000, 2400, 64, 0.3), (1200, 300, 128, 0.0)])
def test_fad_inf_matches_fadtk_score_inf(tmp_path, n_ref, n_eval, dim, shift):
    rng = np.random.default_rng(dim)
    mix = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    reference = rng.standard_normal((n_ref, dim)) @ mix
    evaluation = rng.standard_normal((n_eval, dim)) @ mix * 1.2 + shift
    want = fadtk_score_inf(tmp_path, reference, evaluation, seed=11)
    value, ours = frechet_distance_inf(reference, evaluation, seed=11)
    points = np.array([fd for _, fd in ours.points])
    want_points = np.array([fd for _, fd in want.points])
    assert [n for n, _ in ours.points] == [n for n, _ in want.points]
    rel = max(abs(value - want.score) / abs(want.score),
              float(np.abs(points - want_points).max() / np.abs(want_points).max()))
    print(f"\nPARITY fad_inf vs fadtk 1.1.0 score_inf (N_ref={n_ref}, M={n_eval}, D={dim}): "
          f"{value:.6g} vs {want.score:.6g}, max rel diff {rel:.3g}")
    assert rel <= 1e-6 and ours.r2 == pytest.approx(want.r2, rel=1e-6)
    assert frechet_distance_inf(reference, evaluation, seed=12)[0] != value  # teeth: the draws matter
