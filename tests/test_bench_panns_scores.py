"""is_panns and kl_panns against their definitions (torch-fidelity ISC, torch kl_div)."""

import numpy as np
import pytest
import torch

from copbench.metrics.panns_scores import inception_score, kl_sigmoid, kl_softmax


def test_inception_score_known_values():
    # identical posteriors everywhere: KL to the marginal is 0, IS = 1
    assert inception_score(np.zeros((20, 5)))[0] == pytest.approx(1.0)
    # every clip certain of its own class, 4 classes per split of 4: IS = 4 per split
    logits = np.full((40, 4), -50.0)
    logits[np.arange(40), np.arange(40) % 4] = 50.0
    mean, std = inception_score(logits, splits=10, shuffle=False)
    assert mean == pytest.approx(4.0, rel=1e-6) and std == pytest.approx(0.0, abs=1e-6)


def test_inception_score_split_and_shuffle_as_torch_fidelity():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((23, 7)) * 3
    perm = np.random.RandomState(2020).permutation(23)
    p = torch.from_numpy(logits[perm]).double().softmax(dim=1)
    scores = []
    for i in range(10):
        chunk = p[i * 23 // 10:(i + 1) * 23 // 10]
        q = chunk.mean(dim=0, keepdim=True)
        scores.append(float((chunk * (chunk.log() - q.log())).sum(dim=1).mean().exp()))
    mean, std = inception_score(logits)
    assert mean == pytest.approx(np.mean(scores), rel=1e-9)
    assert std == pytest.approx(np.std(scores), rel=1e-9)


def av_benchmark_compute_kl(paired, gt):
    """hkchengrex/av-benchmark ``av_bench/metrics/kl.py`` ``compute_kl`` (commit 050a5cd),
    the formula restated: KL(gt || generated) through torch ``kl_div`` with ``log_target``."""
    F = torch.nn.functional
    n = len(paired)
    return {"kl_softmax": float(F.kl_div(F.log_softmax(paired, dim=1), F.log_softmax(gt, dim=1),
                                         reduction="sum", log_target=True) / n),
            "kl_sigmoid": float(F.kl_div(F.logsigmoid(paired), F.logsigmoid(gt), reduction="sum",
                                         log_target=True) / n)}


@pytest.mark.parametrize("scale", [2.0, 20.0])
def test_kl_is_av_benchmarks_and_audioldm_keeps_its_name(scale):
    from copbench.metrics.panns_scores import kl_softmax_audioldm
    rng = np.random.default_rng(1)
    out, ref = rng.standard_normal((6, 527)) * scale, rng.standard_normal((6, 527)) * scale
    t_out, t_ref = torch.from_numpy(out), torch.from_numpy(ref)
    want = av_benchmark_compute_kl(t_out, t_ref)
    assert kl_softmax(out, ref).mean() == pytest.approx(want["kl_softmax"], rel=1e-9)
    assert kl_sigmoid(out, ref).mean() == pytest.approx(want["kl_sigmoid"], rel=1e-9)
    audioldm = torch.nn.functional.kl_div((t_out.softmax(dim=1) + 1e-6).log(), t_ref.softmax(dim=1),
                                          reduction="sum") / 6
    assert kl_softmax_audioldm(out, ref).mean() == pytest.approx(float(audioldm), rel=1e-9)
    assert kl_softmax(ref, ref) == pytest.approx(np.zeros(6), abs=1e-12)  # no epsilon floor
    if scale == 20.0:  # large KL: the epsilon caps log p_out, the two definitions part
        assert kl_softmax(out, ref).mean() > 1.05 * float(audioldm)