"""Throughput of every copbench metric on 10 s clips, and AV-Align fast vs reference.

Builds (once, cached in --work) a synthetic CoP dataset of 10 s clips with a
PianoYT-like 1840x200 keyboard video through ``copdata``'s synth source, then:

1. per metric: clips/s of ``Metric.score`` over the clips with the oracle
   output (set-level metrics include ``finalize``; AV-Align with its video
   trajectory cache off), after one warm-up clip;
2. AV-Align: the reference-equivalent implementation
   (:mod:`copbench.metrics.av_align_reference`, files in, frames in a list) vs
   the fast streaming one (trajectory cache off) on the same files: seconds
   per clip, speedup, IoU equality and the largest per-frame difference of the
   flow trajectories (the reference's own run-to-run spread is printed too
   with --ref-repeat 2); and the fast one again with the per-video trajectory
   cache warm, which is what scoring every model after the first costs.

The fast path's cold speedup comes from running frame pairs in parallel, so it
scales with free cores: on a busy or 2-core machine expect little.

Pretrained metrics (``fad_vggish``, ``fad_panns``, ``is_panns``, ``kl_panns``,
...) run with the real weights when present; ``--random-weights`` instead
writes random weights in each reference's file layout (same architecture,
so the same cost) and uses them. FAD's time includes ``finalize`` (FAD-inf
extrapolation and its half-sampling interval).

Usage::

    PYTHONPATH=. python benchmarks/bench_metrics.py --clips 3 [--metrics si_sdr,midi,...]
    PYTHONPATH=. python benchmarks/bench_metrics.py --clips 3 --skip-av-ref --random-weights \
        --metrics fad_vggish,fad_panns,is_panns,kl_panns,fad_mel
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(work: Path, clips: int, seconds: float, width: int, height: int) -> Path:
    from copdata.build import build_dataset
    from copdata.sources.base import BuildSettings
    from copdata.sources.synth import SynthSource
    out = work / f"bench-{clips}x{seconds:g}s-{width}x{height}"
    if not (out / "clips.jsonl").is_file():
        build_dataset(SynthSource(num_items=clips, item_seconds=seconds, seed=7, test_fraction=1.0,
                                  frame_size=(width, height)), out,
                      BuildSettings(clip_seconds=seconds), progress=True)
    return out


def random_weights(folder: Path) -> None:
    """Random weights in the published layouts, used through ``set_override``."""
    import torch
    from copbench.embedders.panns import build_cnn14
    from copbench.embedders.vggish import build_vggish
    from copbench.embedders.wav2clip import build_wav2clip
    from copbench.embedders.weights import set_override
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    vggish = folder / "vggish.pth"
    torch.save(build_vggish().state_dict(), vggish)
    panns = folder / "Cnn14_16k.pth"
    torch.save({"model": build_cnn14().state_dict(), "iteration": 0}, panns)
    wav2clip = folder / "Wav2CLIP.pt"
    torch.save({("audio_encoder." if k.startswith("encoder.") else "audio_transform.")
                + k.split(".", 1)[1]: v for k, v in build_wav2clip().state_dict().items()}, wav2clip)
    for name, path in (("vggish", vggish), ("vggish_relu", vggish), ("panns", panns),
                       ("panns_windowed", panns), ("wav2clip", wav2clip)):
        set_override(name, path)


def bench_metrics(ds, names: list[str]) -> list[dict]:
    from copbench.metrics import ScoreItem, build_metric
    clips = list(ds.clips())
    rows = []
    for name in names:
        try:
            metric = build_metric(name)
        except Exception as exc:  # e.g. pretrained weights absent: report, go on
            rows.append({"metric": name, "error": f"{type(exc).__name__}: {exc}"[:160]})
            continue
        if hasattr(metric, "use_cache"):
            metric.use_cache = False  # cold: measure the optical flow, not the cache
        warm = ScoreItem(clips[0], clips[0].audio())
        metric.score(warm)
        if metric.SET_LEVEL:
            metric = build_metric(name)
        items = [ScoreItem(c, c.audio()) for c in clips]
        t0 = time.perf_counter()
        for item in items:
            metric.score(item)
        if metric.SET_LEVEL:
            metric.finalize(seed=0)
        dt = time.perf_counter() - t0
        rows.append({"metric": name, "clips": len(items), "seconds": dt, "clips_per_s": len(items) / dt})
    return rows


def bench_av_align(ds, workers: int | None, ref_repeat: int, repeat: int = 1) -> dict:
    import cv2
    import soundfile
    from copbench.metrics import av_align as fast
    from copbench.metrics import av_align_reference as ref
    rows = []
    for clip in ds.clips():
        video, audio_file = clip.dir / "video.mp4", clip.dir / "audio.flac"
        audio, sr = soundfile.read(str(audio_file), dtype="float32")
        t_ref = t_fast = float("inf")
        for _ in range(repeat):  # alternate and keep the best: load on a shared box drifts
            t0 = time.perf_counter()
            ref_value = ref.reference_av_align(video, audio_file)
            t_ref = min(t_ref, time.perf_counter() - t0)
            t0 = time.perf_counter()
            fast_value = fast.av_align(video, audio, sr, workers=workers, use_cache=False)
            t_fast = min(t_fast, time.perf_counter() - t0)
        fast.av_align(video, audio, sr, workers=workers, use_cache=True)  # fills the cache
        t0 = time.perf_counter()
        cached_value = fast.av_align(video, audio, sr, workers=workers, use_cache=True)
        t_cached = time.perf_counter() - t0
        ref_traj, _ = ref.reference_trajectory(video) if ref_repeat > 1 else (None, None)
        fast_traj, _ = fast.flow_trajectory(video, workers=workers)
        row = {"clip": clip.id, "ref_s": t_ref, "fast_s": t_fast, "cached_s": t_cached,
               "ref_iou": ref_value, "fast_iou": fast_value,
               "identical_iou": ref_value == fast_value == cached_value}
        if ref_traj is not None:
            again, _ = ref.reference_trajectory(video)
            row["ref_run_to_run_max_diff"] = float(np.abs(np.asarray(ref_traj) - np.asarray(again)).max())
            row["fast_vs_ref_max_diff"] = float(np.abs(np.asarray(ref_traj) - fast_traj).max())
        rows.append(row)
    total_ref = sum(r["ref_s"] for r in rows)
    total_fast = sum(r["fast_s"] for r in rows)
    total_cached = sum(r["cached_s"] for r in rows)
    return {"rows": rows, "ref_clips_per_s": len(rows) / total_ref,
            "cached_clips_per_s": len(rows) / total_cached, "speedup_cached": total_ref / total_cached,
            "fast_clips_per_s": len(rows) / total_fast, "speedup": total_ref / total_fast,
            "all_identical": all(r["identical_iou"] for r in rows),
            "opencv_threads_default": cv2.getNumThreads(), "cpu_count": os.cpu_count(),
            "workers": workers or fast.default_workers()}


def main() -> int:
    from copbench.metrics import DEFAULT_METRICS
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--width", type=int, default=1840)
    p.add_argument("--height", type=int, default=200)
    p.add_argument("--metrics", default=",".join(DEFAULT_METRICS))
    p.add_argument("--workers", type=int, default=None, help="AV-Align fast workers (default: CPUs)")
    p.add_argument("--ref-repeat", type=int, default=1, help="2: also measure the reference's noise")
    p.add_argument("--repeat", type=int, default=1, help="AV-Align timings: best of N alternating runs")
    p.add_argument("--skip-metrics", action="store_true")
    p.add_argument("--skip-av-ref", action="store_true", help="skip the slow reference comparison")
    p.add_argument("--work", default=os.environ.get("COPBENCH_BENCH_DIR", "/tmp/copbench-bench"))
    p.add_argument("--json", help="also write the figures here")
    p.add_argument("--random-weights", action="store_true",
                   help="use random weights in the published layouts for pretrained metrics")
    args = p.parse_args()
    os.environ.setdefault("COPBENCH_CACHE", str(Path(args.work) / "cache"))
    from copdata import open_dataset
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    ds = open_dataset(build(work, args.clips, args.seconds, args.width, args.height))
    print(f"dataset: {len(ds)} clips of {args.seconds:g} s, {args.width}x{args.height} video "
          f"(ready in {time.perf_counter() - t0:.1f} s); {os.cpu_count()} CPUs")
    names = [] if args.skip_metrics else [m for m in args.metrics.split(",") if m]
    if args.random_weights:
        random_weights(work / "random-weights")
    report = {"metrics": bench_metrics(ds, names)}
    print(f"\n{'metric':18s} {'clips/s':>9s} {'s/clip':>8s}")
    for r in report["metrics"]:
        if "error" in r:
            print(f"{r['metric']:18s} unavailable: {r['error']}")
        else:
            print(f"{r['metric']:18s} {r['clips_per_s']:9.3f} {r['seconds'] / r['clips']:8.2f}")
    if not args.skip_av_ref:
        av = bench_av_align(ds, args.workers, args.ref_repeat, args.repeat)
        report["av_align"] = av
        print(f"\nAV-Align reference vs fast ({av['workers']} workers, OpenCV default threads "
              f"{av['opencv_threads_default']}):")
        for r in av["rows"]:
            extra = (f"  traj diff fast-ref {r['fast_vs_ref_max_diff']:.1e}, ref-ref "
                     f"{r['ref_run_to_run_max_diff']:.1e}" if "fast_vs_ref_max_diff" in r else "")
            print(f"  {r['clip']}: ref {r['ref_s']:.2f} s, fast {r['fast_s']:.2f} s, fast with the "
                  f"video trajectory cached {r['cached_s']:.2f} s, IoU "
                  f"{r['ref_iou']:.6f} / {r['fast_iou']:.6f} identical={r['identical_iou']}{extra}")
        print(f"  throughput: reference {av['ref_clips_per_s']:.3f} clips/s, fast "
              f"{av['fast_clips_per_s']:.3f} clips/s, speedup {av['speedup']:.2f}x, "
              f"identical values: {av['all_identical']}")
        print(f"  a second model on the same clips (video trajectory cached): "
              f"{av['cached_clips_per_s']:.3f} clips/s, {av['speedup_cached']:.1f}x the reference")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
