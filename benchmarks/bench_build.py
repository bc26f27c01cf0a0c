"""Benchmark: ``copdata build`` throughput with 1 and 2 workers.

    PYTHONPATH=. python benchmarks/bench_build.py --source youtube
    PYTHONPATH=. python benchmarks/bench_build.py --source local --items 6 --item-seconds 20
    PYTHONPATH=. python benchmarks/bench_build.py --source synth --workers 1,2,4
    PYTHONPATH=. python benchmarks/bench_build.py --memory 10,30,60

Sources:

* ``synth``: the procedural synthetic source (rendered audio, drawn keyboard video);
* ``local``: PyAV-encoded videos (a moving bar over a keyboard-sized frame, a
  melody of piano-like tones) in a temporary folder, transcribed with basic-pitch;
* ``youtube``: the same videos served by a loopback HTTP server and fetched
  through yt-dlp (generic extractor) with a fresh download cache for every run,
  so each run includes the downloads.

For each worker count a fresh output folder is built (``executor="local"``) and
the script prints items/s, the realtime factor (seconds of output clips per wall
second) and the scaling ratio of the 2-worker run to the 1-worker run
(``rtf(2) / rtf(1)``; 2.0 is perfect scaling). Wall time includes starting the
worker processes and loading the transcriber in each of them.

What the QA stage costs: ``--workers 1 --qa both --repeat 2`` builds every
case with and without the QA stage (``--qa off``: frames not observed, clips
not measured), interleaved, and prints how much QA adds to the wall time
(the ratio per repeat and its median), after an untimed warm-up build of
one item (imports, the transcriber's model). The QA stage's time measured inside
the build is printed too, but it overstates the cost: it includes waits for
the GIL held by the background encoder thread, which the build without QA
spends elsewhere.

``--memory MINUTES,...`` instead measures the peak resident memory of one
worker: for each duration it encodes one long source video (``--size``,
default 320x64, at 30 fps, AAC mono, a seeded melody; written in blocks, so
the script itself stays small; ``--crop`` lists it in a CSV with that box),
then builds it with the ``local`` source and one worker in a fresh
Python process and prints that process's peak RSS (``ru_maxrss``), its wall
time and the clips written. Peak memory that does not grow with the
duration is the goal (<= 1 GB whatever the length).
"""

from __future__ import annotations

import argparse
import http.server
import json
import shutil
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path

import av
import numpy as np

from copdata.build import build_dataset
from copdata.sources.base import BuildSettings


def encode_performance(path: Path, seconds: float, seed: int, fps: int = 30,
                       size: tuple[int, int] = (320, 64), sample_rate: int = 44100) -> None:
    """An mp4 (H.264 + AAC) of a seeded melody of decaying harmonic tones."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    audio = np.zeros_like(t)
    start = 0.0
    while start < seconds - 0.3:
        pitch, length = int(rng.integers(48, 84)), float(rng.uniform(0.15, 0.6))
        m = (t >= start) & (t < start + length)
        tt = t[m] - start
        f0 = 440.0 * 2 ** ((pitch - 69) / 12)
        audio[m] += 0.3 * np.exp(-3 * tt) * (np.sin(2 * np.pi * f0 * tt)
                                             + 0.3 * np.sin(4 * np.pi * f0 * tt))
        start += float(rng.uniform(0.1, 0.4))
    audio = audio.astype(np.float32)
    w, h = size
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        st = c.add_stream("aac", rate=sample_rate, layout="mono")
        for i in range(int(seconds * fps)):
            img = np.full((h, w, 3), 230, np.uint8)
            img[:, (i * 7) % w: (i * 7) % w + 6] = 20
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        for k in range(0, len(audio), 1024):
            frame = av.AudioFrame.from_ndarray(audio[None, k:k + 1024], format="flt",
                                               layout="mono")
            frame.sample_rate = sample_rate
            for p in st.encode(frame):
                c.mux(p)
        for p in st.encode():
            c.mux(p)


def encode_long_performance(path: Path, seconds: float, seed: int, fps: int = 30,
                            size: tuple[int, int] = (320, 64), sample_rate: int = 44100,
                            block_seconds: float = 10.0) -> None:
    """Like :func:`encode_performance` for long sources: the melody is rendered
    and muxed block by block, so memory does not grow with ``seconds``."""
    rng = np.random.default_rng(seed)
    tones, start = [], 0.0
    while start < seconds - 0.3:
        tones.append((start, float(rng.uniform(0.15, 0.6)), int(rng.integers(48, 84))))
        start += float(rng.uniform(0.1, 0.4))
    w, h = size
    block = int(block_seconds * sample_rate)
    total = int(seconds * sample_rate)
    with av.open(str(path), "w", format="mp4", options={"movflags": "faststart"}) as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "ultrafast"}
        st = c.add_stream("aac", rate=sample_rate, layout="mono")
        frame_index, first_tone = 0, 0
        for b0 in range(0, total, block):
            n = min(block, total - b0)
            t = (b0 + np.arange(n)) / sample_rate
            audio = np.zeros(n)
            t_lo, t_hi = b0 / sample_rate, (b0 + n) / sample_rate
            while first_tone < len(tones) and tones[first_tone][0] + tones[first_tone][1] < t_lo:
                first_tone += 1
            for onset, length, pitch in tones[first_tone:]:
                if onset >= t_hi:
                    break
                m = (t >= onset) & (t < onset + length)
                tt = t[m] - onset
                f0 = 440.0 * 2 ** ((pitch - 69) / 12)
                audio[m] += 0.3 * np.exp(-3 * tt) * (np.sin(2 * np.pi * f0 * tt)
                                                     + 0.3 * np.sin(4 * np.pi * f0 * tt))
            audio = audio.astype(np.float32)
            for k in range(0, n, 1024):
                frame = av.AudioFrame.from_ndarray(audio[None, k:k + 1024], format="flt",
                                                   layout="mono")
                frame.sample_rate = sample_rate
                for p in st.encode(frame):
                    c.mux(p)
            while frame_index < int(round(t_hi * fps)):
                img = np.full((h, w, 3), 230, np.uint8)
                x = (frame_index * 7) % w
                img[:, x:x + 6] = 20
                for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    c.mux(p)
                frame_index += 1
        for stream in (vs, st):
            for p in stream.encode():
                c.mux(p)


def _measure_build(listing: str, out: str, clip_seconds: float) -> None:
    """Child process of ``--memory``: build one local video (a folder or a CSV
    listing), print peak RSS as JSON."""
    import resource

    from copdata.sources.local import LocalSource

    started = time.perf_counter()
    summary = build_dataset(LocalSource(listing, test_fraction=0.0), out,
                            BuildSettings(clip_seconds=clip_seconds), workers=1, progress=False)
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_rss_mb": round(peak_mb, 1), "wall_s": round(wall, 1),
                      "clips": summary.clips, "failed": summary.failed}))


def memory_benchmark(minutes: list[float], clip_seconds: float, as_json: bool,
                     size: tuple[int, int] = (320, 64), crop: str | None = None) -> None:
    import subprocess

    results = []
    work = Path(tempfile.mkdtemp(prefix="bench_build_mem-"))
    try:
        for m in minutes:
            folder = work / f"src-{m:g}"
            folder.mkdir()
            video = folder / f"long_{m:g}min.mp4"
            encode_long_performance(video, m * 60.0, seed=int(m), size=size)
            listing = folder
            if crop:
                listing = folder / "list.csv"
                listing.write_text("path,crop_x0,crop_y0,crop_x1,crop_y1\n"
                                   f"{video.name},{crop}\n", encoding="utf-8")
            proc = subprocess.run([sys.executable, __file__, "--measure-child", str(listing),
                                   str(work / f"out-{m:g}"), str(clip_seconds)],
                                  capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                raise SystemExit(f"build of the {m:g} min source failed")
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["minutes"] = m
            results.append(row)
            shutil.rmtree(work / f"out-{m:g}", ignore_errors=True)
            video.unlink()
        print(f"one worker, local source, {size[0]}x{size[1]} video"
              + (f" cropped to {crop}" if crop else "") + f", clips of {clip_seconds:g} s")
        print(f"{'minutes':>7} {'clips':>6} {'wall s':>8} {'peak RSS MB':>12}")
        for r in results:
            print(f"{r['minutes']:>7g} {r['clips']:>6} {r['wall_s']:>8.1f} {r['peak_rss_mb']:>12.1f}")
        if as_json:
            print(json.dumps(results))
    finally:
        shutil.rmtree(work, ignore_errors=True)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class _QATimer:
    """Times the QA stage of an in-process (one-worker) build: the frame
    observer (shrinking frames for the motion signal, keeping the detector's
    frames) and :func:`copdata.qa.stage.clip_qa` (keyboard, offset, piano
    score, loudness)."""

    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        import copdata.build.cut as build_module
        from copdata.qa.stage import ClipObserver

        self._saved = (build_module.clip_qa, ClipObserver.__call__)
        clip_qa, observe = self._saved
        timer = self

        def timed_clip_qa(*a, **kw):
            t = time.perf_counter()
            try:
                return clip_qa(*a, **kw)
            finally:
                timer.seconds += time.perf_counter() - t

        def timed_observe(observer, frame):
            t = time.perf_counter()
            try:
                return observe(observer, frame)
            finally:
                timer.seconds += time.perf_counter() - t

        build_module.clip_qa = timed_clip_qa
        ClipObserver.__call__ = timed_observe
        return self

    def __exit__(self, *exc):
        import copdata.build.cut as build_module
        from copdata.qa.stage import ClipObserver

        build_module.clip_qa, ClipObserver.__call__ = self._saved
        return False


class _NoQA:
    """Builds without the QA stage (``--qa off``): the frame observer does
    nothing and :func:`copdata.qa.stage.clip_qa` only cuts the clip's audio and
    notes (no measurement, no claims), so ``--qa both`` measures what the QA
    stage adds to the wall time by building with and without it. Patched in
    this process, so only for one-worker builds (workers are spawned)."""

    def __enter__(self):
        import copdata.build.cut as build_module
        from copdata.notes import segment_notes
        from copdata.qa.stage import ClipObserver, ClipQA

        self._saved = (build_module.clip_qa, ClipObserver.__call__)

        def bare_clip_qa(observer, audio_window, window_start, item_notes, t0, settings,
                         recorded=False, source_offset=None):
            first = int(round(t0 * settings.sample_rate)) - window_start
            audio = audio_window[first:first + settings.samples_per_clip]
            notes = segment_notes(item_notes, t0, t0 + settings.clip_seconds)
            return ClipQA({"claims": {"keyboard": False, "solo_piano": False}, "passed": True},
                          audio, notes, [])

        build_module.clip_qa = bare_clip_qa
        ClipObserver.__call__ = lambda observer, frame: None
        return self

    def __exit__(self, *exc):
        import copdata.build.cut as build_module
        from copdata.qa.stage import ClipObserver

        build_module.clip_qa, ClipObserver.__call__ = self._saved
        return False


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # yt-dlp closes probing connections early; that is not a failure


def serve(folder: Path) -> http.server.ThreadingHTTPServer:
    handler = partial(_QuietHandler, directory=str(folder))
    httpd = _QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def make_source(kind: str, work: Path, args, run: str, httpd=None):
    if kind == "synth":
        from copdata.sources.synth import SynthSource

        return SynthSource(num_items=args.items, item_seconds=args.item_seconds, seed=0)
    crop_cols = ",crop_x0,crop_y0,crop_x1,crop_y1" if args.crop else ""
    crop_vals = ("," + args.crop) if args.crop else ""
    if kind == "local":
        from copdata.sources.local import LocalSource

        if not args.crop:
            return LocalSource(work / "videos", test_fraction=0.0)
        listing = work / "videos.csv"
        listing.write_text("path,split" + crop_cols + "\n" + "".join(
            f"videos/take_{k:03d}.mp4,train{crop_vals}\n" for k in range(args.items)))
        return LocalSource(listing, test_fraction=0.0)
    from copdata.sources.youtube import YouTubeSource

    port = httpd.server_address[1]
    manifest = work / "manifest.csv"
    manifest.write_text("url,split" + crop_cols + "\n" + "".join(
        f"http://127.0.0.1:{port}/take_{k:03d}.mp4,train{crop_vals}\n" for k in range(args.items)))
    return YouTubeSource(manifest, work / f"cache-{run}", retries=0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", choices=["synth", "local", "youtube"], default="youtube")
    p.add_argument("--items", type=int, default=4)
    p.add_argument("--item-seconds", type=float, default=12.0)
    p.add_argument("--clip-seconds", type=float, default=None,
                   help="clip length (default 4 s; 10 s with --memory)")
    p.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    p.add_argument("--size", default="320x64", help="source video size WxH (local/youtube)")
    p.add_argument("--crop", default=None, metavar="X0,Y0,X1,Y1",
                   help="keyboard crop box in source pixels, e.g. PianoYT-like "
                        "--size 1920x1080 --crop 40,680,1880,880")
    p.add_argument("--video-preset", default="superfast", help="x264 preset of video.mp4")
    p.add_argument("--qa", choices=["on", "off", "both"], default="on",
                   help="build with the QA stage (on), without it (off: frames unobserved, "
                        "clips unmeasured), or both, interleaved per worker count, printing "
                        "the wall-time ratio (what QA adds)")
    p.add_argument("--repeat", type=int, default=1,
                   help="build each (workers, qa) case this many times, interleaved; "
                        "the figures are medians")
    p.add_argument("--json", action="store_true", help="also print the figures as JSON")
    p.add_argument("--memory", default=None, metavar="MINUTES",
                   help="comma-separated source lengths in minutes: measure one worker's "
                        "peak RSS building one such video (e.g. 10,30,60)")
    p.add_argument("--measure-child", nargs=3, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.measure_child:
        video, out, clip_seconds = args.measure_child
        _measure_build(video, out, float(clip_seconds))
        return 0
    if args.memory:
        size = tuple(int(v) for v in args.size.lower().split("x"))
        memory_benchmark([float(m) for m in args.memory.split(",")],
                         args.clip_seconds or 10.0, args.json, size=size, crop=args.crop)
        return 0
    args.clip_seconds = args.clip_seconds or 4.0
    size = tuple(int(v) for v in args.size.lower().split("x"))
    counts = [int(w) for w in args.workers.split(",")]
    if args.qa != "on" and max(counts) > 1:
        p.error("--qa off/both builds in this process: use --workers 1")
    settings = BuildSettings(clip_seconds=args.clip_seconds, video_preset=args.video_preset)
    work = Path(tempfile.mkdtemp(prefix="bench_build-"))
    httpd = None
    try:
        if args.source in ("local", "youtube"):
            (work / "videos").mkdir()
            for k in range(args.items):
                encode_performance(work / "videos" / f"take_{k:03d}.mp4", args.item_seconds, k,
                                   size=size)
        if args.source == "youtube":
            httpd = serve(work / "videos")
        results = []
        qa_timer = _QATimer()
        modes = {"on": [True], "off": [False], "both": [False, True]}[args.qa]
        runs: dict[tuple[int, bool], list[dict]] = {}
        if args.qa == "both":  # untimed: imports and the transcriber load land on no one case
            items, args.items = args.items, 1
            build_dataset(make_source(args.source, work, args, "warmup", httpd), work / "out-warmup",
                          settings, workers=1, progress=False)
            args.items = items
            shutil.rmtree(work / "out-warmup", ignore_errors=True)
        for rep in range(args.repeat):
            for workers in counts:
                for with_qa in modes:
                    run = f"w{workers}-{'qa' if with_qa else 'noqa'}-{rep}"
                    source = make_source(args.source, work, args, run, httpd)
                    out = work / f"out-{run}"
                    qa_timer.seconds = 0.0
                    timing = qa_timer if with_qa and workers <= 1 else _nothing()
                    started = time.perf_counter()
                    with (_NoQA() if not with_qa else _nothing()), timing:
                        summary = build_dataset(source, out, settings, workers=workers,
                                                progress=False)
                    wall = time.perf_counter() - started
                    if summary.failed:
                        report = json.loads((out / "report.json").read_text())
                        print("failures:", [r.get("message") for r in report if r["status"] != "ok"],
                              file=sys.stderr)
                    shutil.rmtree(out, ignore_errors=True)
                    runs.setdefault((workers, with_qa), []).append(
                        {"workers": workers, "qa": with_qa, "items": summary.items, "ok": summary.ok,
                         "clips": summary.clips, "wall_s": wall, "qa_stage_s": qa_timer.seconds,
                         "seconds": summary.seconds})
                    print(f"run {rep + 1}/{args.repeat}: {workers} worker(s), QA {'on' if with_qa else 'off'}: "
                          f"{wall:.1f} s wall" + (f" (QA stage timed inside: {qa_timer.seconds:.1f} s)"
                                                  if with_qa and workers <= 1 else ""), flush=True)
        for (workers, with_qa), rs in runs.items():
            wall = float(np.median([r["wall_s"] for r in rs]))
            results.append({"workers": workers, "qa": with_qa, "items": rs[0]["items"],
                            "ok": rs[0]["ok"], "clips": rs[0]["clips"], "wall_s": round(wall, 2),
                            "walls_s": [round(r["wall_s"], 2) for r in rs],
                            "items_per_s": round(rs[0]["items"] / wall, 3),
                            "realtime_factor": round(rs[0]["seconds"] / wall, 2)})
            if with_qa and workers <= 1:
                stage = float(np.median([r["qa_stage_s"] for r in rs]))
                print(f"one worker: the QA stage timed inside the build took {stage:.1f} s of "
                      f"{wall:.1f} s wall (includes waits for the encoder thread)")
        for workers in counts:
            if (workers, True) in runs and (workers, False) in runs:
                ratios = [a["wall_s"] / b["wall_s"] - 1 for a, b in
                          zip(runs[(workers, True)], runs[(workers, False)])]
                print(f"{workers} worker(s): QA adds {float(np.median(ratios)):.0%} to the build's "
                      f"wall time (per repeat: {', '.join(f'{r:.0%}' for r in ratios)})")
        print(f"source={args.source} items={args.items} x {args.item_seconds:g} s, "
              f"clips of {args.clip_seconds:g} s"
              + (f", video {args.size}" + (f" cropped to {args.crop}" if args.crop else "")
                 if args.source != "synth" else ""))
        print(f"{'workers':>7} {'QA':>3} {'ok':>4} {'clips':>5} {'wall s':>8} {'items/s':>8} {'RTF':>7}")
        for r in results:
            print(f"{r['workers']:>7} {'on' if r['qa'] else 'off':>3} {r['ok']:>4} {r['clips']:>5} "
                  f"{r['wall_s']:>8.2f} {r['items_per_s']:>8.3f} {r['realtime_factor']:>6.2f}x")
        by = {r["workers"]: r for r in results if r["qa"] == (args.qa != "off")}
        if 1 in by and 2 in by and by[1]["realtime_factor"] > 0:
            ratio = by[2]["realtime_factor"] / by[1]["realtime_factor"]
            print(f"scaling 2 vs 1 workers: {ratio:.2f}x (2.00 = perfect)")
        if args.json:
            print(json.dumps(results))
    finally:
        if httpd is not None:
            httpd.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
