"""Checkpoints and preference files are data: a hostile pickle runs nothing.

The hostile files are real ``torch.save`` archives (and a plain pickle) whose
unpickling would call ``os.system`` to create a marker file. Loading them must
raise a typed error and leave no marker, directly and end to end through
``copbench run --model evil.ckpt`` (exit status 2, a one-line error).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from copdata.build import build_dataset
from copdata.sources.base import BuildSettings
from copdata.sources.synth import SynthSource
from copmodel.ckpt import FORMAT, load_checkpoint, rng_state, save_checkpoint, set_rng_state
from copmodel.errors import CheckpointError
from copmodel.prefs import load_preferences


class RunsACommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def hostile_torch_file(path: Path, marker: Path) -> Path:
    torch.save({"format": FORMAT, "weights": {}, "pairs": [], "payload": RunsACommand(marker)}, path)
    return path


def hostile_plain_pickle(path: Path, marker: Path) -> Path:
    path.write_bytes(pickle.dumps(RunsACommand(marker)))
    return path


def test_the_hostile_file_would_run_its_command(tmp_path):
    """The fixture is really hostile: an unrestricted load creates the marker."""
    marker = tmp_path / "ran"
    evil = hostile_torch_file(tmp_path / "evil.ckpt", marker)
    torch.load(evil, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("make", [hostile_torch_file, hostile_plain_pickle])
def test_load_checkpoint_refuses_a_hostile_file(tmp_path, make):
    marker = tmp_path / "ran"
    evil = make(tmp_path / "evil.ckpt", marker)
    with pytest.raises(CheckpointError, match="refusing to load checkpoint"):
        load_checkpoint(evil)
    with pytest.raises(CheckpointError, match="refusing to load preferences file"):
        load_preferences(evil)
    assert not marker.exists()


def test_checkpoint_with_rng_states_round_trips_weights_only(tmp_path):
    import random

    import numpy as np

    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    state = rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    save_checkpoint(tmp_path / "a.ckpt", {"rng": state, "weights": {"w": torch.ones(2)}})
    loaded = load_checkpoint(tmp_path / "a.ckpt")  # weights_only: no numpy objects inside
    set_rng_state(loaded["rng"])
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_copbench_run_refuses_a_hostile_checkpoint(tmp_path):
    data = tmp_path / "data"
    build_dataset(SynthSource(num_items=2, item_seconds=2.0, seed=1), data,
                  BuildSettings(clip_seconds=1.0), workers=1, progress=False)
    marker = tmp_path / "ran"
    evil = hostile_torch_file(tmp_path / "evil.ckpt", marker)
    for model in (str(evil), f"reconstruct:{evil}", f"rollsynth:{evil}"):
        proc = subprocess.run([sys.executable, "-m", "copbench", "run", "--model", model,
                               "--data", str(data), "--out", str(tmp_path / "results")],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "refusing to load checkpoint" in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr
    assert not marker.exists()
