"""`copbench mos`: a simulated 20-rater study with known true MOS, screening, results files."""

import json

import numpy as np
import pytest

from copbench.frame import load_results
from copbench.leaderboard import render_leaderboard
from copbench.listen.order import trial_order
from copbench.listen.simulate import RaterModel, true_mos, write_simulated_study
from copbench.mos import ratings_frame, run_mos, two_way_bootstrap
from copbench.ratings import RatingsError

LATENT = {"oracle": {"quality": 4.6, "match": 4.7}, "noise": {"quality": 1.2, "match": 1.1},
          "modelA": {"quality": 3.0, "match": 3.4}, "modelB": {"quality": 3.6, "match": 3.2}}
ROLES = {"oracle": "reference", "noise": "anchor"}


def test_true_mos_matches_monte_carlo():
    rng = np.random.default_rng(0)
    x = np.clip(np.floor(rng.normal(3.3, 0.8, 400_000) + 0.5), 1, 5)
    assert true_mos(3.3, 0.8) == pytest.approx(x.mean(), abs=0.01)
    assert true_mos(-50, 1.0) == pytest.approx(1.0) and true_mos(50, 1.0) == pytest.approx(5.0)


def test_simulated_20_rater_study_recovers_true_mos(tmp_path):
    key, files, truth = write_simulated_study(tmp_path / "study", LATENT, ROLES, n_clips=12,
                                              n_raters=20, careless=2, seed=1)
    report = run_mos(tmp_path / "study", files, tmp_path / "results", seed=0)
    screened = {r.rater_id for r in report["raters"] if r.screened}
    assert screened == {"rater20", "rater21"}  # the two careless raters, by the documented rule
    assert len(report["estimates"]) == 8
    for e in report["estimates"]:
        true = truth[e.system][e.question]
        assert e.ci95[0] <= true <= e.ci95[1], (e.system, e.question, true, e.ci95)
        assert e.ci95[0] <= e.mean <= e.ci95[1]
        assert e.n_raters == 20 and e.n_ratings == 240 and e.n_clips == 12
    ratings = ratings_frame(tmp_path / "study", files)
    assert len(ratings) == 22 * 48 * 2 and set(ratings.position) == set(range(1, 49))
    kept = ratings[ratings.screened == ""]
    means = kept.groupby(["system", "question"])["rating"].mean()
    for e in report["estimates"]:
        assert means[(e.system, e.question)] == pytest.approx(e.mean, rel=1e-12)
    frame = load_results(tmp_path / "results")
    row = frame[(frame.model == "modelB") & (frame.metric == "mos_quality")].iloc[0]
    assert row.extra["n_raters"] == 20 and row.extra["screened_raters"] == ["rater20", "rater21"]
    assert row.group == "listening" and row.n == 240
    md = render_leaderboard(tmp_path / "results", "md", ["mos_quality", "mos_match"])
    assert md.splitlines()[0] == "| model | n | mos_quality ↑ | mos_match ↑ |"
    assert f"**{frame.set_index(['model', 'metric']).loc[('oracle', 'mos_quality'), 'mean']:.4g}" in md


def test_two_way_bootstrap_is_wider_than_raters_only():
    """Clip effects the rater-only bootstrap ignores widen the two-way interval."""
    rng = np.random.default_rng(3)
    ratings = 3 + rng.normal(0, 0.2, (20, 1)) + rng.normal(0, 0.8, (1, 8)) + rng.normal(0, 0.3, (20, 8))
    boot = np.random.default_rng(0)
    raters = np.stack([np.bincount(r, minlength=20) for r in boot.integers(0, 20, (2000, 20))]).astype(float)
    clips = np.stack([np.bincount(r, minlength=8) for r in boot.integers(0, 8, (2000, 8))]).astype(float)
    lo2, hi2 = two_way_bootstrap(ratings, raters, clips)
    lo1, hi1 = two_way_bootstrap(ratings, raters, np.ones((2000, 8)))
    assert hi2 - lo2 > 2 * (hi1 - lo1)
    assert lo2 <= ratings.mean() <= hi2


def test_mos_updates_existing_results_and_checks_the_study(tmp_path):
    key, files, _ = write_simulated_study(tmp_path / "study", LATENT, ROLES, n_clips=4,
                                          n_raters=5, seed=2)
    results = tmp_path / "results"
    results.mkdir()
    existing = {"schema": 1, "model": "modelA", "metrics": {"si_sdr": {
        "mean": 3.0, "ci95": [2.0, 4.0], "n": 4, "higher_is_better": True}},
        "per_clip": {}, "pairing": {"paired": 4, "missing": [], "extra": []}, "errors": {},
        "provenance": {"seed": 0}}
    (results / "modelA.json").write_text(json.dumps(existing))
    run_mos(tmp_path / "study", files, results)
    updated = json.loads((results / "modelA.json").read_text())
    assert set(updated["metrics"]) == {"si_sdr", "mos_quality", "mos_match"}
    assert updated["provenance"]["metrics"]["mos"]["settings"]["study_hash"] == key.study_hash
    assert len(updated["per_clip"]) == 4
    # a rater id twice, an edited key, a file of another study
    doc = json.loads(files[0].read_text())
    (tmp_path / "dup.json").write_text(json.dumps(doc))
    with pytest.raises(RatingsError, match="two files"):
        run_mos(tmp_path / "study", [files[0], tmp_path / "dup.json"], results)
    other = dict(doc, study_hash="f" * 64, rater_id="zed")
    (tmp_path / "other.json").write_text(json.dumps(other))
    with pytest.raises(RatingsError, match="no valid ratings file"):
        run_mos(tmp_path / "study", [tmp_path / "other.json"], results)
    from copbench.listen import default_key_path
    key_path = default_key_path(tmp_path / "study")
    edited = json.loads(key_path.read_text())
    edited["spec"]["order_seed"] = 99
    key_path.write_text(json.dumps(edited))
    from copbench.listen import StudyError
    with pytest.raises(StudyError, match="does not match its hash"):
        run_mos(tmp_path / "study", files, results)


def test_incomplete_rater_is_screened_unless_allowed(tmp_path):
    _, files, _ = write_simulated_study(tmp_path / "s", LATENT, ROLES, n_clips=4, n_raters=4, seed=5)
    doc = json.loads(files[0].read_text())
    doc["ratings"] = doc["ratings"][:10]
    files[0].write_text(json.dumps(doc))
    report = run_mos(tmp_path / "s", files, tmp_path / "r1")
    assert [r.screened for r in report["raters"]][0] == ["incomplete (10/16 trials)"]
    report = run_mos(tmp_path / "s", files, tmp_path / "r2", allow_incomplete=True)
    assert not report["raters"][0].screened
    # a single trial passes no screen even when incomplete raters are allowed
    doc["ratings"] = doc["ratings"][:1]
    files[0].write_text(json.dumps(doc))
    report = run_mos(tmp_path / "s", files, tmp_path / "r3", allow_incomplete=True)
    assert report["raters"][0].screened == ["too_few (1/16 trials; at least half are needed)"]


def test_python_order_is_a_seeded_permutation():
    stimuli = [f"s{i:02d}" for i in range(12)]
    a = trial_order(stimuli, 7, "alice")
    assert sorted(a) == stimuli and a != stimuli
    assert a == trial_order(stimuli, 7, "alice") and a != trial_order(stimuli, 7, "bob")
    assert a != trial_order(stimuli, 8, "alice")


def test_rater_model_total_sd():
    assert RaterModel(0.3, 0.4, 0.0, 0.0).total_sd == pytest.approx(0.5, rel=1e-12)
