"""Transcription accuracy on real piano recordings: OMAPS development pieces 001-025.

Data: the OMAPS recordings of ``itec-hust/transition-aware`` (a real upright /
digital piano through a webcam microphone, with hand-aligned labels
``onset offset pitch`` per line). Only pieces 001-025 are read: 026-050 are
reserved for independent evaluation and this script refuses them. The media are
never copied into this repository; give the path of a fetched snapshot (a bare
git directory as the project's ``fetch`` tool leaves it, or a checkout)::

    python benchmarks/bench_transcribe_real.py /work/.mirror/itec-hust+transition-aware/repo \\
        --transcribers basic-pitch,transkun --files 1-25 --cache /tmp/omaps-cache

Prints, per transcriber and per piece: note counts, onset-only note F1 and
with-offset note F1 (``mir_eval.transcription``, 50 ms onset tolerance, offset
within 20% of the note or 50 ms), with each post-processing in
:mod:`copdata.transcription.post` applied, the mean over the pieces, and the speed
(seconds of audio per second of wall time, "x realtime", on this machine).
Diagnostics: estimated / labelled duration of matched notes, and the share of
false positives that are an octave above or below a labelled note with the same
onset. ``--cache`` keeps each piece's raw notes and timing, so a rerun (or a
run with more pieces) only transcribes what is missing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from copdata.media.decode import read_audio  # noqa: E402
from copdata.notes import Note  # noqa: E402
from copdata.scoring import note_scores  # noqa: E402
from copdata.transcription import TRANSCRIBERS, get_transcriber  # noqa: E402
from copdata.transcription.post import POSTPROCESSINGS, postprocess  # noqa: E402

DEVELOPMENT = range(1, 26)  # OMAPS 001-025; 026-050 are reserved: never read
SAMPLE_RATE = 44100


def parse_files(text: str) -> list[int]:
    numbers: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        numbers += list(range(int(lo), int(hi or lo) + 1))
    bad = [n for n in numbers if n not in DEVELOPMENT]
    if bad:
        raise SystemExit(f"pieces {bad} are outside the development set 1-25 "
                         "(026-050 are reserved for independent evaluation)")
    return sorted(set(numbers))


def read_member(snapshot: Path, name: str) -> bytes:
    """``OMAPS/<name>`` from a checkout or a bare git directory."""
    if (snapshot / "OMAPS" / name).is_file():
        return (snapshot / "OMAPS" / name).read_bytes()
    return subprocess.run(["git", "--git-dir", str(snapshot), "show", f"HEAD:OMAPS/{name}"],
                          check=True, capture_output=True).stdout


def load_piece(snapshot: Path, number: int) -> tuple[np.ndarray, list[Note]]:
    stem = f"{number:03d}"
    labels = np.loadtxt(read_member(snapshot, f"{stem}.txt").decode().splitlines(), ndmin=2)
    reference = [Note(float(s), float(e), int(round(p)), 64) for s, e, p in labels]
    with tempfile.NamedTemporaryFile(suffix=".mp3") as tmp:
        tmp.write(read_member(snapshot, f"{stem}.mp3"))
        tmp.flush()
        audio, _ = read_audio(tmp.name, SAMPLE_RATE)
    return audio, reference


def transcribe_cached(name: str, number: int, audio: np.ndarray, cache: Path | None,
                      device: str | None) -> tuple[list[Note], float]:
    path = None if cache is None else cache / name / f"{number:03d}.json"
    if path is not None and path.is_file():
        row = json.loads(path.read_text())
        return [Note(*n) for n in row["notes"]], row["wall_s"]
    settings = {"device": device} if name == "transkun" else {}
    transcriber = get_transcriber(name, **settings)
    start = time.perf_counter()
    notes = transcriber.transcribe(audio, SAMPLE_RATE, item=f"{number:03d}")
    wall = time.perf_counter() - start
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"notes": [[n.start, n.end, n.pitch, n.velocity] for n in notes],
                                    "wall_s": wall, "info": transcriber.info()}))
    return notes, wall


def diagnostics(reference: list[Note], estimate: list[Note]) -> tuple[float, float]:
    """Median estimated/labelled duration of onset-matched notes; share of
    false positives that double a labelled note an octave away (same onset)."""
    import mir_eval

    if not reference or not estimate:
        return float("nan"), float("nan")
    ref_i = np.array([[n.start, n.end] for n in reference])
    ref_p = np.array([440 * 2 ** ((n.pitch - 69) / 12) for n in reference])
    est_i = np.array([[n.start, n.end] for n in estimate])
    est_p = np.array([440 * 2 ** ((n.pitch - 69) / 12) for n in estimate])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        matched = mir_eval.transcription.match_notes(ref_i, ref_p, est_i, est_p, offset_ratio=None)
    ratios = [(estimate[j].end - estimate[j].start) / max(reference[i].end - reference[i].start,
                                                           1e-3) for i, j in matched]
    hit = {j for _, j in matched}
    false = [n for j, n in enumerate(estimate) if j not in hit]
    octave = sum(1 for n in false if any(abs(r.pitch - n.pitch) == 12 and abs(r.start - n.start) <= 0.05
                                         for r in reference))
    return float(np.median(ratios)) if ratios else float("nan"), octave / max(len(false), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snapshot", type=Path, help="fetched itec-hust/transition-aware "
                        "(bare git dir or checkout)")
    parser.add_argument("--transcribers", default="basic-pitch,transkun",
                        help=f"comma-separated, of {sorted(TRANSCRIBERS)}")
    parser.add_argument("--files", default="1-25", help="pieces, e.g. 1-25 or 1,4,21 (only 1-25)")
    parser.add_argument("--cache", type=Path, help="folder keeping raw notes per piece")
    parser.add_argument("--device", default=None, help="transkun device (cpu, cuda, auto)")
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    parser.add_argument("--markdown", action="store_true",
                        help="also print the per-piece raw F1 of every transcriber as a table")
    args = parser.parse_args(argv)
    numbers = parse_files(args.files)
    names = [n.strip() for n in args.transcribers.split(",") if n.strip()]
    for name in names:
        if name not in TRANSCRIBERS:
            parser.error(f"unknown transcriber {name!r}; choose from {sorted(TRANSCRIBERS)}")
    results: dict = {}
    pieces = {}
    for number in numbers:
        pieces[number] = load_piece(args.snapshot, number)
    for name in names:
        rows = []
        audio_s = wall_s = 0.0
        for number in numbers:
            audio, reference = pieces[number]
            notes, wall = transcribe_cached(name, number, audio, args.cache, args.device)
            audio_s += audio.shape[0] / SAMPLE_RATE
            wall_s += wall
            row = {"piece": f"{number:03d}", "seconds": audio.shape[0] / SAMPLE_RATE,
                   "n_ref": len(reference), "wall_s": wall}
            for post in POSTPROCESSINGS:
                estimate = postprocess(notes, post)
                scores = note_scores(reference, estimate)
                row[post] = {"n_est": len(estimate), "f1": scores["f1"],
                             "f1_offset": scores["f1_offset"]}
            row["duration_ratio"], row["octave_fp_share"] = diagnostics(reference, notes)
            rows.append(row)
            print(f"{name:12s} {row['piece']}  {row['seconds']:6.1f} s  ref {len(reference):4d}  "
                  + "  ".join(f"{post}: est {row[post]['n_est']:4d} F1 {row[post]['f1']:.3f} "
                              f"off {row[post]['f1_offset']:.3f}" for post in POSTPROCESSINGS)
                  + f"  dur x{row['duration_ratio']:.2f}  octave-FP {row['octave_fp_share']:.0%}"
                  + f"  {row['seconds'] / wall:.2f}x rt", flush=True)
        mean = {post: {k: float(np.mean([r[post][k] for r in rows])) for k in ("f1", "f1_offset")}
                for post in POSTPROCESSINGS}
        results[name] = {"pieces": [r["piece"] for r in rows], "mean": mean, "rows": rows,
                         "median_duration_ratio": float(np.nanmedian([r["duration_ratio"]
                                                                      for r in rows])),
                         "octave_fp_share": float(np.nanmean([r["octave_fp_share"] for r in rows])),
                         "x_realtime": audio_s / wall_s if wall_s else float("nan")}
    print()
    print(f"{'transcriber':12s} {'post':10s} {'pieces':>6s} {'onset F1':>9s} {'offset F1':>10s}"
          f" {'x realtime':>11s}")
    for name, res in results.items():
        for post in POSTPROCESSINGS:
            m = res["mean"][post]
            print(f"{name:12s} {post:10s} {len(res['pieces']):6d} {m['f1']:9.3f} "
                  f"{m['f1_offset']:10.3f} {res['x_realtime']:11.2f}")
        print(f"{name:12s} raw: matched-note duration x{res['median_duration_ratio']:.2f} "
              f"(median per piece), octave doublings {res['octave_fp_share']:.0%} of false positives")
    if args.markdown:
        print()
        print("| piece | seconds | notes | " + " | ".join(
            f"{n} onset F1 | {n} with-offset F1" for n in results) + " |")
        print("|---|---|---|" + "---|---|" * len(results))
        for i, number in enumerate(numbers):
            first = next(iter(results.values()))["rows"][i]
            print(f"| {first['piece']} | {first['seconds']:.0f} | {first['n_ref']} | " + " | ".join(
                f"{res['rows'][i]['raw']['f1']:.3f} | {res['rows'][i]['raw']['f1_offset']:.3f}"
                for res in results.values()) + " |")
        print("| mean | | | " + " | ".join(
            f"**{res['mean']['raw']['f1']:.3f}** | **{res['mean']['raw']['f1_offset']:.3f}**"
            for res in results.values()) + " |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
