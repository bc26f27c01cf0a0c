"""copmodel training: resume, 2-process DDP equivalence, checkpoints, loss log."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from copmodel.ckpt import load_checkpoint
from copmodel.data import ClipTensors
from copmodel.presets import SeqLens, get_preset
from copmodel.train import batch_indices, lr_factor, train

REPO = Path(__file__).resolve().parents[1]


def make_tensors(cfg, n=6, seconds=1.0, fps=25.0, seed=0) -> ClipTensors:
    """Clips whose features hold a tone band per active key, so stages have real structure."""
    rng = np.random.default_rng(seed)
    lens = SeqLens.derive(seconds, fps, cfg.audio, cfg.net.patch)
    items = []
    for i in range(n):
        roll = np.zeros((lens.video_frames, 88), np.float32)
        key = int(rng.integers(30, 60))
        roll[5:15, key] = 1
        feats = rng.normal(-6, 0.02, (cfg.audio.n_mels, lens.feat_frames)).astype(np.float32)
        feats[key % cfg.audio.n_mels, 10:30] += 4
        frames = rng.integers(0, 40, (lens.video_frames, cfg.net.frame_height,
                                      cfg.net.frame_width)).astype(np.uint8)
        frames[5:15, :, key // 2] = 250
        ids = np.zeros(cfg.net.text_max_tokens, np.int64)
        ids[:3] = [1, 2 + i % 5, 3]
        mask = ids > 0
        items.append({"feats": feats, "frames": frames, "roll": roll, "text": ids, "text_mask": mask})
    return ClipTensors(items, [f"c{i}" for i in range(n)], lens)


def test_schedule_and_batches():
    assert lr_factor(0, 10, 100) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100) == pytest.approx(1.0)
    assert lr_factor(100, 10, 100) == pytest.approx(0.1)
    assert lr_factor(55, 10, 100) < 1.0
    a = batch_indices(6, 4, seed=0, step=3)
    assert a == batch_indices(6, 4, seed=0, step=3) and len(set(a)) == 4
    assert batch_indices(2, 5, seed=0, step=0)[:2] == batch_indices(2, 5, seed=0, step=0)[2:4]


def test_training_lowers_the_loss_and_logs(tmp_path):
    cfg = get_preset("micro").override(train={"max_steps": 40, "lr": 3e-3, "warmup_steps": 5})
    data = make_tensors(cfg)
    result = train(1, cfg, data, tmp_path, log_every=5, progress=False)
    rows = (tmp_path / "stage1" / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,lr,loss")
    losses = [float(r.split(",")[2]) for r in rows[1:]]
    assert len(losses) == 8
    assert np.mean(losses[-2:]) < 0.8 * np.mean(losses[:2])
    assert (tmp_path / "stage1" / "loss.png").stat().st_size > 1000
    ck = load_checkpoint(result["ckpt"])
    assert {"weights", "ema", "optimizer", "scheduler", "step", "config", "rng", "stage"} <= set(ck)
    assert ck["step"] == 40 and ck["stage"] == 1
    # normalisation stats live in the state dict
    assert not torch.allclose(ck["weights"]["audio.mean"], torch.zeros(16))


def test_stages_chain_and_resume_restores_step_optimizer_rng(tmp_path):
    # the roll schedule is fixed in steps, so a 2-step run resumed to 4 equals a 4-step run
    cfg = get_preset("micro").override(train={"roll_schedule_steps": 3})
    data = make_tensors(cfg)
    train(1, cfg, data, tmp_path / "a", max_steps=2, progress=False)
    train(1, cfg, data, tmp_path / "b", max_steps=2, progress=False)
    # stage 2 starts from stage 1: continuous 4 steps vs. 2 steps + resume to 4
    full = load_checkpoint(train(2, cfg, data, tmp_path / "a", max_steps=4, progress=False)["ckpt"])
    half = load_checkpoint(train(2, cfg, data, tmp_path / "b", max_steps=2, progress=False)["ckpt"])
    assert half["step"] == 2
    assert half["init_from"].endswith("stage1/last.ckpt")
    random.seed(12345)  # disturb every generator the checkpoint restores
    np.random.seed(12345)
    torch.manual_seed(12345)
    resumed = load_checkpoint(train(2, cfg, data, tmp_path / "b", max_steps=4, resume=True,
                                    progress=False)["ckpt"])
    assert resumed["step"] == 4
    assert random.getstate() == half["rng"]["python"]
    assert np.array_equal(np.random.get_state()[1], half["rng"]["numpy"][1])
    assert torch.equal(torch.get_rng_state(), half["rng"]["torch"])
    for k, v in full["weights"].items():
        assert torch.allclose(v.float(), resumed["weights"][k].float(), rtol=1e-5, atol=1e-6), k
    for k, v in full["ema"].items():
        assert torch.allclose(v.float(), resumed["ema"][k].float(), rtol=1e-5, atol=1e-6), k
    sa, sb = full["optimizer"]["state"], resumed["optimizer"]["state"]
    assert sa.keys() == sb.keys() and len(sa) > 0
    for k in sa:
        assert torch.allclose(sa[k]["exp_avg_sq"], sb[k]["exp_avg_sq"], rtol=1e-5, atol=1e-8)
        assert float(sa[k]["step"]) == float(sb[k]["step"]) == 4
    assert full["scheduler"]["last_epoch"] == resumed["scheduler"]["last_epoch"] == 4
    rows = (tmp_path / "b" / "stage2" / "log.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["2", "4"]


DDP_SCRIPT = """
import sys, torch
from copmodel.presets import get_preset
from copmodel.train import train
sys.path.insert(0, {tests!r})
from test_model_train import make_tensors
cfg = get_preset("micro").override(train={{"batch_size": 4, "max_steps": 3}})
stage, out = int(sys.argv[1]), sys.argv[2]
init = sys.argv[3] if len(sys.argv) > 3 else None
train(stage, cfg, make_tensors(cfg), out, init=init, progress=False)
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun_two(script, env, *args: str) -> subprocess.CompletedProcess:
    """``script args`` on 2 CPU processes under torchrun (accelerate then runs DDP over gloo)."""
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                           str(script), *args], env=env, capture_output=True, text=True,
                          timeout=180)


@pytest.mark.slow
def test_two_process_gloo_run_matches_one_process(tmp_path):
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent)))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    base = subprocess.run([sys.executable, str(script), "1", str(tmp_path / "base")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert base.returncode == 0, base.stderr[-2000:]
    init = str(tmp_path / "base" / "stage1" / "last.ckpt")
    one = subprocess.run([sys.executable, str(script), "2", str(tmp_path / "one"), init], env=env,
                         capture_output=True, text=True, timeout=120)
    assert one.returncode == 0, one.stderr[-2000:]
    # torchrun sets RANK/WORLD_SIZE/MASTER_*; accelerate then runs DDP over gloo on CPU
    # (``accelerate launch --cpu`` alone starts one process unless MPI is used)
    two = _torchrun_two(script, env, "2", str(tmp_path / "two"), init)
    assert two.returncode == 0, two.stderr[-3000:]
    a = load_checkpoint(tmp_path / "one" / "stage2" / "last.ckpt")
    b = load_checkpoint(tmp_path / "two" / "stage2" / "last.ckpt")
    assert a["step"] == b["step"] == 3
    assert a["world_size"] == 1 and b["world_size"] == 2
    for k, v in a["weights"].items():
        diff = float((v.float() - b["weights"][k].float()).abs().max())
        assert torch.allclose(v.float(), b["weights"][k].float(), atol=2e-5, rtol=1e-4), (k, diff)
    # the runs really trained (weights differ from a fresh initialisation)
    start = load_checkpoint(init)["weights"]
    moved = [k for k, v in a["weights"].items()
             if k.startswith(("extra.", "roll_predictor.")) and not torch.equal(start[k], v)]
    assert len(moved) > 10
    # stage 3: the contrastive loss gathers the global batch, so 2 processes match 1
    init3 = str(tmp_path / "one" / "stage2" / "last.ckpt")
    one3 = subprocess.run([sys.executable, str(script), "3", str(tmp_path / "one3"), init3],
                          env=env, capture_output=True, text=True, timeout=120)
    assert one3.returncode == 0, one3.stderr[-2000:]
    two3 = _torchrun_two(script, env, "3", str(tmp_path / "two3"), init3)
    assert two3.returncode == 0, two3.stderr[-3000:]
    a3 = load_checkpoint(tmp_path / "one3" / "stage3" / "last.ckpt")["weights"]
    b3 = load_checkpoint(tmp_path / "two3" / "stage3" / "last.ckpt")["weights"]
    for k, v in a3.items():
        assert torch.allclose(v.float(), b3[k].float(), atol=2e-5, rtol=1e-4), k
    assert not torch.equal(a3["contrastive.log_temp"], load_checkpoint(init3)["weights"]["contrastive.log_temp"])


CACHE_SCRIPT = """
import hashlib, json, sys
from pathlib import Path
from copmodel.audio import build_audio
from copmodel.data import ClipTensors
from copmodel.presets import get_preset
from copmodel.train import make_accelerator
cfg = get_preset("micro")
acc = make_accelerator()
data = ClipTensors.from_folder(sys.argv[1], "train", cfg, build_audio(cfg.audio), sys.argv[2],
                               accelerator=acc, progress=False)
digest = hashlib.sha256(b"".join(data[i]["feats"].numpy().tobytes() for i in range(len(data))))
# one file per rank: two processes printing to one pipe can interleave their lines
out = Path(sys.argv[3]) / f"rank{{acc.process_index}}.json"
out.write_text(json.dumps({{"rank": acc.process_index, "world": acc.num_processes,
                           "clips": len(data), "in_memory": data.items is not None,
                           "feats": digest.hexdigest()}}))
"""


@pytest.mark.slow
def test_two_processes_share_one_atomically_written_cache(tmp_path):
    from copdata.build import build_dataset
    from copdata.sources.base import BuildSettings
    from copdata.sources.synth import SynthSource

    data = tmp_path / "data"
    build_dataset(SynthSource(num_items=2, item_seconds=3.0, seed=2), data,
                  BuildSettings(clip_seconds=1.0), workers=1, progress=False)
    script = tmp_path / "cache.py"
    script.write_text(CACHE_SCRIPT.format())
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = _torchrun_two(script, env, str(data), str(cache), str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json

    rows = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in rows] == [0, 1] and all(r["world"] == 2 for r in rows)
    assert rows[0]["feats"] == rows[1]["feats"] and rows[0]["clips"] == rows[1]["clips"] > 0
    assert not any(r["in_memory"] for r in rows)  # read from the cache when used
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == rows[0]["clips"] and all(f.endswith(".npz") for f in files)
    assert not any(f.startswith(".") for f in files)  # no temporary file left behind
