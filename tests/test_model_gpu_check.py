"""benchmarks/gpu_check.sh: the one prepared device run, kept from rotting by running
its --dry-run (same script, CPU, tiny sizes) here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_steps_per_second_come_from_the_training_log(tmp_path):
    sys.path.insert(0, str(REPO / "benchmarks"))
    from gpu_check import log_speed

    log = tmp_path / "log.csv"
    # worked by hand: steps 10 -> 30 logged at 2.0 s and 6.0 s of the loop: 20 / 4 = 5
    log.write_text("step,lr,loss,flow,roll_bce,contrastive,dpo,grad_norm,seconds\n"
                   "10,0.001,1.5,1.5,,,,0.9,2.00\n20,0.001,1.2,1.2,,,,0.8,4.50\n"
                   "30,0.001,1.0,1.0,,,,0.7,6.00\n")
    speed = log_speed(log)
    assert speed["steps_per_s_from_log"] == pytest.approx(5.0)
    assert speed["last_loss"] == pytest.approx(1.0) and speed["logged_rows"] == 3


def _run(*args, tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO)}
    return subprocess.run(["bash", str(REPO / "benchmarks" / "gpu_check.sh"), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600)


def test_gpu_check_refuses_an_unknown_argument(tmp_path):
    proc = _run("--fast", tmp_path=tmp_path)
    assert proc.returncode == 2 and "unknown argument --fast" in proc.stderr


@pytest.mark.slow
def test_gpu_check_dry_run_prints_one_json_of_every_part(tmp_path):
    proc = _run("--dry-run", "--out", str(tmp_path / "out"), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)  # stdout is exactly one JSON document
    assert report == json.loads((tmp_path / "out" / "gpu_check.json").read_text())
    assert report["dry_run"] is True and report["device"] == "cpu"
    bench = report["bench"]
    assert [r["precision"] for r in bench] == ["bf16", "no"]
    assert all(r["train_steps_per_s"] > 0 and r["sample_10s_clip_s"] > 0 for r in bench)
    stages = report["stages"]
    for name in ("stage1", "stage2", "stage3"):
        assert stages[name]["steps"] == 2 and stages[name]["steps_per_s_from_log"] > 0
    assert 0.0 <= stages["stage2"]["roll_eval"]["f1"] <= 1.0
    assert stages["stage3"]["dpo_steps"] == 2 and stages["stage3"]["dpo_pairs"] > 0
    assert stages["stage3"]["dpo_last_loss"] is not None
    for track in ("v2a", "tv2a"):
        t = report["sampling"][track]
        assert 0 < t["s_per_10s_clip_without_griffin_lim"] < t["s_per_10s_clip_with_griffin_lim"]
    bench_run = report["copbench"]
    assert bench_run["exit_status"] == 0 and 0.0 <= bench_run["scores"]["midi_note_f1"] <= 1.0
