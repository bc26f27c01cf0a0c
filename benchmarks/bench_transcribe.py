"""Benchmark: copdata.transcription against basic-pitch's own predict and CLI.

basic-pitch as ``pip install basic-pitch==0.4.0`` installs it (TensorFlow 2.15)
lives in its own interpreter, e.g.::

    python3 -m venv /tmp/bp-tf && /tmp/bp-tf/bin/pip install basic-pitch==0.4.0
    PYTHONPATH=. python benchmarks/bench_transcribe.py --tf-python /tmp/bp-tf/bin/python

For each length (default 10 s, 30 s and 120 s) a seeded piano performance is rendered
to a 44.1 kHz mono 16-bit WAV, then timed:

* ``bp cold``: a fresh process of the TF interpreter that imports basic-pitch and
  runs ``predict(wav)`` (loads the TF SavedModel, as every CLI call does), wall
  time from process start to the end of that first predict;
* ``bp warm``: ``predict(wav, model)`` with the model already loaded (best of N);
* ``bp CLI``: ``basic-pitch OUTDIR wav`` end to end (unless ``--skip-cli``);
* ``ours cold``: a fresh process running ``copdata.transcription.transcribe_file``;
* ``ours CLI``: ``python -m copdata transcribe wav --out x.mid`` end to end;
* ``ours warm``: ``transcribe_file`` in this process with the model loaded (best of N).

Notes are compared with mir_eval's onset-only note F1 (50 ms, 50 cents): ours
against basic-pitch's predict (goal >= 0.95) and both against the rendered notes.
Speed goal: ours >= 3x faster than basic-pitch's predict and CLI.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import mir_eval
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from copdata.notes import Note  # noqa: E402
from copdata.transcription import get_transcriber, transcribe_file  # noqa: E402

SAMPLE_RATE = 44100

TF_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from basic_pitch import ICASSP_2022_MODEL_PATH
from basic_pitch.inference import Model, predict
t_import = time.perf_counter() - t0
wav, out_json, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = time.perf_counter()
_, _, events = predict(wav)  # loads the SavedModel, as the CLI does
t_cold = time.perf_counter() - t
t_after_cold = time.perf_counter()
model = Model(ICASSP_2022_MODEL_PATH)
warm = []
for _ in range(repeats):
    t = time.perf_counter()
    _, _, events = predict(wav, model)
    warm.append(time.perf_counter() - t)
notes = [[float(s), float(e), int(p), int(round(127 * a))] for s, e, p, a, _ in events]
json.dump({"import_s": t_import, "predict_cold_s": t_cold, "predict_warm_s": min(warm),
           "after_cold_s": time.perf_counter() - t_after_cold, "notes": notes}, open(out_json, "w"))
"""

OURS_COLD = ("import sys; from copdata.transcription import transcribe_file; "
             "transcribe_file(sys.argv[1], sys.argv[2])")


def performance(seconds: float, seed: int) -> list[Note]:
    """A seeded right-hand melody over left-hand chords, 90-150 bpm."""
    rng = np.random.default_rng(seed)
    notes: list[Note] = []
    beat = 60.0 / float(rng.uniform(90, 150))
    t = 0.25
    root = int(rng.integers(45, 55))
    while t < seconds - 1.5:
        if rng.random() < 0.3:
            root = int(np.clip(root + rng.choice([-5, -3, 2, 5, 7]), 40, 57))
        for interval in (0, rng.choice([3, 4]), 7):
            notes.append(Note(t, t + 2 * beat * 0.95, root + int(interval), int(rng.integers(45, 70))))
        count = int(rng.choice([2, 3, 4]))
        for k in range(count):
            start = t + k * 2 * beat / count
            pitch = int(rng.integers(root + 12, root + 31))
            notes.append(Note(start, start + 2 * beat / count * 0.9, pitch,
                              int(rng.integers(60, 115))))
        t += 2 * beat
    return sorted(notes)


def render(notes: list[Note], seconds: float) -> np.ndarray:
    """copdata.render.piano when present, else additive partials with decay."""
    try:
        from copdata.render.piano import render_notes
        return np.asarray(render_notes(notes, SAMPLE_RATE, seconds), dtype=np.float32)
    except ImportError:
        pass
    audio = np.zeros(int(seconds * SAMPLE_RATE) + SAMPLE_RATE)
    for n in notes:
        freq = 440.0 * 2 ** ((n.pitch - 69) / 12)
        t = np.arange(int((n.end - n.start + 0.05) * SAMPLE_RATE)) / SAMPLE_RATE
        wave = np.zeros_like(t)
        for k in range(1, 9):
            wave += np.sin(2 * np.pi * k * freq * np.sqrt(1 + 4e-4 * k * k) * t) / k ** 1.2 \
                * np.exp(-t * (1.5 + 0.6 * k))
        wave *= np.minimum(1, t / 0.003) * np.minimum(1, (t[-1] - t) / 0.05) * n.velocity / 127
        i = int(n.start * SAMPLE_RATE)
        audio[i:i + wave.size] += wave
    audio = audio[:int(seconds * SAMPLE_RATE)]
    return (0.5 * audio / np.abs(audio).max()).astype(np.float32)


def write_wav(path: Path, audio: np.ndarray) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout="mono")
        for start in range(0, pcm.size, 8192):
            frame = av.AudioFrame.from_ndarray(pcm[None, start:start + 8192], format="s16",
                                               layout="mono")
            frame.sample_rate = SAMPLE_RATE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def onset_f1(reference: list[Note], estimate: list[Note]) -> float:
    def arrays(notes):
        intervals = np.array([[n.start, n.end] for n in notes], dtype=float).reshape(-1, 2)
        return intervals, 440.0 * 2 ** ((np.array([n.pitch for n in notes], float) - 69) / 12)
    (ri, rp), (ei, ep) = arrays(reference), arrays(estimate)
    return mir_eval.transcription.precision_recall_f1_overlap(
        ri, rp, ei, ep, onset_tolerance=0.05, offset_ratio=None)[2]


def same_notes(theirs: list[Note], ours: list[Note], tolerance: float = 1.1e-3) -> bool:
    """Same pitches and velocities, times equal within the MIDI tick (1/960 s)."""
    theirs, ours = sorted(theirs, key=lambda n: (n.pitch, n.start)), \
        sorted(ours, key=lambda n: (n.pitch, n.start))
    return len(theirs) == len(ours) and all(
        a.pitch == b.pitch and a.velocity == b.velocity and abs(a.start - b.start) <= tolerance
        and abs(a.end - b.end) <= tolerance for a, b in zip(theirs, ours))


def timed_run(cmd: list[str], env: dict | None = None) -> float:
    t = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"command failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return wall


def bench_one(seconds: float, args: argparse.Namespace, work: Path) -> dict:
    truth = performance(seconds, args.seed)
    wav = work / f"piano_{int(seconds)}s.wav"
    write_wav(wav, render(truth, seconds))
    row: dict = {"seconds": seconds, "notes_true": len(truth)}

    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    cli = Path(args.tf_python).with_name("basic-pitch") if args.tf_python else None
    run_cli = cli is not None and cli.exists() and not args.skip_cli
    ours_cli = importlib.util.find_spec("copdata.cli") is not None
    cold, ours_cli_runs, process, bp_runs, cli_runs = [], [], [], [], []
    # cold runs interleaved, so that load from other processes hits both sides alike
    for i in range(args.cold_repeats):
        cold.append(timed_run([sys.executable, "-c", OURS_COLD, str(wav), str(work / "cold.mid")],
                              env))
        if ours_cli:
            ours_cli_runs.append(timed_run([sys.executable, "-m", "copdata", "transcribe", str(wav),
                                            "--out", str(work / "cli.mid")], env))
        if args.tf_python:
            out_json = work / f"bp_{int(seconds)}s_{i}.json"
            wall = timed_run([args.tf_python, "-c", TF_SCRIPT, str(wav), str(out_json),
                              str(args.repeats)], env)
            bp_runs.append(json.loads(out_json.read_text()))
            process.append(wall - bp_runs[-1]["after_cold_s"])  # start, import, load, predict
        if run_cli:
            out_dir = work / f"cli_{int(seconds)}_{i}"
            out_dir.mkdir()
            cli_runs.append(timed_run([str(cli), str(out_dir), str(wav)], env))
    row["ours_cold_s"] = min(cold)
    if ours_cli_runs:
        row["ours_cli_s"] = min(ours_cli_runs)
    get_transcriber()
    warm = []
    for _ in range(args.repeats * args.cold_repeats):
        t = time.perf_counter()
        ours = transcribe_file(wav, work / "ours.mid")
        warm.append(time.perf_counter() - t)
    row["ours_warm_s"] = min(warm)
    row["notes_ours"] = len(ours)
    row["f1_ours_vs_truth"] = onset_f1(truth, ours)
    if bp_runs:
        theirs = [Note(*n) for n in bp_runs[-1]["notes"]]
        row["bp_process_s"] = min(process)
        row["bp_import_s"] = min(r["import_s"] for r in bp_runs)
        row["bp_cold_s"] = min(r["import_s"] + r["predict_cold_s"] for r in bp_runs)
        row["bp_warm_s"] = min(r["predict_warm_s"] for r in bp_runs)
        row["notes_bp"] = len(theirs)
        row["f1_ours_vs_bp"] = onset_f1(theirs, ours)
        row["f1_bp_vs_truth"] = onset_f1(truth, theirs)
        row["same_notes"] = same_notes(theirs, ours)
    if cli_runs:
        row["bp_cli_s"] = min(cli_runs)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tf-python", default=None,
                        help="python of a venv with `pip install basic-pitch==0.4.0` (TensorFlow)")
    parser.add_argument("--seconds", type=float, nargs="+", default=[10.0, 30.0, 120.0])
    parser.add_argument("--repeats", type=int, default=2,
                        help="warm runs per cold run (best is reported)")
    parser.add_argument("--cold-repeats", type=int, default=2,
                        help="cold process runs per side, interleaved (best is reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-cli", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench_transcribe_"))
    try:
        rows = [bench_one(s, args, work) for s in args.seconds]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    info = get_transcriber().info()
    print(f"ours: {info['name']} {info['version']} {info['model']} via {info['runtime']}, "
          f"resampler {info['resampler']}; cpus={os.cpu_count()}")
    for row in rows:
        print(f"\n== {row['seconds']:.0f} s of piano ({row['notes_true']} notes rendered)")
        print(f"  ours       cold (process) {row['ours_cold_s']:7.2f} s   warm {row['ours_warm_s']:7.2f} s"
              f"   notes {row['notes_ours']:4d}   F1 vs truth {row['f1_ours_vs_truth']:.3f}")
        if "bp_cold_s" in row:
            print(f"  basic-pitch cold (process) {row['bp_process_s']:7.2f} s   warm {row['bp_warm_s']:7.2f} s"
                  f"   notes {row['notes_bp']:4d}   F1 vs truth {row['f1_bp_vs_truth']:.3f}"
                  f"   (import {row['bp_import_s']:.2f} s, import+predict {row['bp_cold_s']:.2f} s)")
            if "bp_cli_s" in row:
                print(f"  basic-pitch CLI end to end {row['bp_cli_s']:7.2f} s"
                      + (f"   `copdata transcribe` end to end {row['ours_cli_s']:7.2f} s   "
                         f"CLI speed-up {row['bp_cli_s'] / row['ours_cli_s']:5.1f}x"
                         if "ours_cli_s" in row else ""))
            print(f"  onset F1 ours vs basic-pitch predict: {row['f1_ours_vs_bp']:.4f} (goal >= 0.95);"
                  f" identical notes (pitch, velocity, times within 1.1 ms): {row['same_notes']}")
            print(f"  speed-up cold process: {row['bp_process_s'] / row['ours_cold_s']:5.1f}x   "
                  f"warm: {row['bp_warm_s'] / row['ours_warm_s']:5.1f}x"
                  + (f"   vs CLI: {row['bp_cli_s'] / row['ours_cold_s']:5.1f}x" if "bp_cli_s" in row else "")
                  + "   (goal >= 3x)")
    if args.json:
        args.json.write_text(json.dumps({"info": info, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
