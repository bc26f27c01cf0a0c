"""Peak memory of stage-1 training against the size of the training set (CPU).

    PYTHONPATH=. python benchmarks/bench_memory.py [--preset small] [--clips 50 400 3600]
        [--stacked-up-to 400] [--precompute-clips 2 6]

Training: each run is a fresh process that trains 2 steps of stage 1 (batch 2) on N
cached 10 s clips of the preset's shapes (the same cache file listed N times: the
trainer reads every clip from disk, as with N distinct files; 3600 clips = 10 h),
normalisation statistics included (a streaming pass over all N clips), and reports
its peak resident memory (``ru_maxrss``). ``--stacked-up-to``: the same with the
statistics computed the old way (every clip's features stacked in memory) for N up
to this, for contrast. Precompute: a synthetic dataset of N real 10 s clips built
with copdata, precomputed into the cache (``ClipTensors.from_folder``) in a fresh
process, peak memory reported. Two figures per training run: the peak after the
trainer's set-up (model, optimizer, statistics) and after 2 steps. Memory that does not grow with N is what the
trainer promises (docs/copmodel.md).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from copmodel.audio import build_audio
from copmodel.data import ClipTensors, write_npz_atomic
from copmodel.presets import SeqLens, load_config
from copmodel.train import Trainer
mode, preset, n, work = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
cfg = load_config(preset, ["net.video_encoder=cnn", "net.text_encoder=builtin",
                           "train.batch_size=2", "train.max_steps=2", "train.num_workers=0",
                           "train.stats_clips=0"])
t0 = time.time()
if mode == "precompute":
    from copdata.build import build_dataset
    from copdata.sources.base import BuildSettings
    from copdata.sources.synth import SynthSource
    data = f"{work}/data"
    build_dataset(SynthSource(num_items=n, item_seconds=10.0, seed=1, test_fraction=0.0), data,
                  BuildSettings(clip_seconds=10.0), workers=1, progress=False)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tensors = ClipTensors.from_folder(data, "train", cfg, build_audio(cfg.audio), f"{work}/cache",
                                      progress=False)
    clips = len(tensors)
else:
    lens = SeqLens.derive(10.0, 25.0, cfg.audio, cfg.net.patch)
    rng = np.random.default_rng(0)
    channels = build_audio(cfg.audio).channels
    path = __import__("pathlib").Path(work) / "clip.npz"
    write_npz_atomic(path, {
        "feats": rng.normal(-5, 1, (channels, lens.feat_frames)).astype(np.float32),
        "frames": rng.integers(0, 256, (lens.video_frames, cfg.net.frame_height,
                                        cfg.net.frame_width), dtype=np.uint8),
        "roll": (rng.random((lens.video_frames, 88)) > 0.95).astype(np.float32),
        "text": rng.integers(2, cfg.net.text_vocab, cfg.net.text_max_tokens).astype(np.int64),
        "text_mask": np.ones(cfg.net.text_max_tokens, bool)})
    data = ClipTensors(None, [f"c{i}" for i in range(n)], lens, paths=[path] * n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if mode == "stacked":  # the old statistics: every clip's features in one tensor
        Trainer.fit_stats = lambda self, model: model.audio.fit_stats(self.data.stacked_feats())
    trainer = Trainer(1, cfg, data, f"{work}/run", progress=False)
    setup = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # model + statistics
    trainer.run()
    clips = n
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"mode": mode, "clips": clips, "hours": round(clips * 10 / 3600, 2),
                  "peak_rss_mib": round(peak / 1024), "rss_before_mib": round(before / 1024),
                  "peak_after_stats_mib": round((setup if mode != "precompute" else peak) / 1024),
                  "seconds": round(time.time() - t0, 1)}))
"""


def run(mode: str, preset: str, n: int) -> dict:
    with tempfile.TemporaryDirectory() as work:
        proc = subprocess.run([sys.executable, "-c", CHILD, mode, preset, str(n), work],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"{mode} {n}: {proc.stderr[-2000:]}")
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="small")
    p.add_argument("--clips", type=int, nargs="+", default=[50, 400, 3600])
    p.add_argument("--stacked-up-to", type=int, default=400)
    p.add_argument("--precompute-clips", type=int, nargs="+", default=[2, 6])
    p.add_argument("--json", default=None)
    args = p.parse_args()
    rows = [run("precompute", args.preset, n) for n in args.precompute_clips]
    rows += [run("train", args.preset, n) for n in args.clips]
    rows += [run("stacked", args.preset, n) for n in args.clips if n <= args.stacked_up_to]
    print(f"# peak memory, {args.preset}, stage 1 (CPU, one process)")
    print("| what | clips | hours | peak RSS after set-up + statistics (MiB) | peak RSS after "
          "2 training steps (MiB) | seconds |")
    print("|---|---|---|---|---|---|")
    names = {"precompute": "precompute (copdata synth -> cache)",
             "train": "stage-1 training, streaming stats",
             "stacked": "stage-1 training, stacked stats (old)"}
    for r in rows:
        print(f"| {names[r['mode']]} | {r['clips']} | {r['hours']} | "
              f"{r['peak_after_stats_mib']} | {r['peak_rss_mib']} | {r['seconds']} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
