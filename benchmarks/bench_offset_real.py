"""Benchmark: audio-to-video offset on real far-side webcam videos (AI-Pianist).

    PYTHONPATH=. python benchmarks/bench_offset_real.py /work/.mirror/ppfish45+AI-Pianist/repo
    PYTHONPATH=. python benchmarks/bench_offset_real.py /work/.mirror/ppfish45+AI-Pianist/repo \
        --set train --keys-only [--cache DIR] [--lattice first|whole15|best] [--full-only]
    PYTHONPATH=. python benchmarks/bench_offset_real.py /work/.mirror/ppfish45+AI-Pianist/repo \
        --pianoyt /work/.mirror/acappemin+Video-to-Audio-and-Piano/repo [--transcriber transkun]

Source (fetched, never committed): github:ppfish45/AI-Pianist at commit
a183028ce818e0434d25706f3b60bbc17d0df5c8: ``DataSet/TestSet/V{1,2,3,5,6,7,8,9,10}.wmv``
(``--set test``, the default) or the 71 ``DataSet/TrainSet/**/*.wmv``
(``--set train``; those missing from the snapshot are listed as such), all
640x360, 20 fps, 29-61 s, no audio, each with ``*.wmv.mid``, the
instrument's MIDI (its note numbers are one octave low: +12 here). The MIDI's
note-ons stand for the audio (not rendered and transcribed: that would add
the transcriber's timing error, not measured here).

**The MIDI's origin is not the video's start.** The repository's README says
the authors cut the MIDI's leading silence and kept each video's offset in a
``*.wmv.txt`` that is not in the repository (``utils/wav_conversion``); every
MIDI starts with a note at 0.0 s, and the videos' keys move 1.7-6.1 s after
their notes. So each video's truth is unknown up to a base offset ``b``.
Here ``b`` is the per-key estimator's own estimate over the whole video with
a wide search (+-8 s), the video's **reference**. Two kinds of sources:

* **whole video, own reference**: the MIDI shifted by ``-b + d`` for 7
  offsets ``d`` in [-0.5, 0.5] s, truth ``d``. This checks the confidence
  rule and the law "shift the notes by d, the estimate moves by d" on real
  video, not accuracy (the reference comes from the same notes);
* **each half against the other half's reference**: the notes are split at
  their median start; each half, shifted by ``-b_other + d``, is estimated
  against the reference made from the *other* half's notes alone (disjoint
  data), truth ``d``. An error here is a real disagreement of two estimates
  made from different notes of the same video (what this data can check:
  a bias both halves share, e.g. the key-travel lead, stays invisible).

For each video the keyboard is found and turned upright
(:func:`copdata.qa.detect.detect_keyboard_in_video`,
:func:`copdata.qa.orient.strip_matrix`), frames are read on the 25 fps grid
the build uses (frame ``i`` shows time ``i / 25``; the 20 fps source frames
are held), and errors are in frames of that grid. Both estimators see the
whole-video sources: the strip estimator of :mod:`copdata.qa.offset` (per 10 s
clip, then ``source_offset``; skipped with ``--keys-only``) and the per-key
one of :mod:`copdata.qa.keyoffset` (all notes of the source). Per source:
estimate, error, bootstrap half-width, second peak, the press-release gap,
matched notes, confident; per split: confident sources, confident and wrong
(> 1 frame), sources of >= 60 s confident.

Key map (``--lattice``, ``--full-only``): the black-key lattice is the best
of several per-pixel medians (``best``, the build's: 5 frames of the first clip, 15 and 25 frames over
the video; ``whole15``: 15 frames; ``first``: 5 frames of the first clip) and, unless ``--full-only``, a partial lattice (fewer than 36
black keys) gives a key map whose octave each source chooses from its notes
(:func:`copdata.qa.keyoffset.octave_key_offset`, its margin one more rule).

Splits: the per-key signal and its rules were chosen looking at the
**development** videos V1, V2, V3, V5, but the signal comparison and the
press-release gap were also printed for V6-V10 while choosing, so V6-V10
(**held-out**) are not a clean hold-out. The TrainSet videos (``--set train``)
were never looked at before the one run reported in docs/qa.md; partial
keyboards and the best-of-medians lattice were then built looking at
folders 1-7 (``train-dev``) and folders 8-14 (``train (held-out)``) were
measured once with them.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from copdata.media.decode import iter_frames
from copdata.notes import Note
from copdata.qa import keyoffset, keys
from copdata.qa import offset as qa_offset
from copdata.qa.detect import detect_keyboard_in_video
from copdata.qa.orient import strip_matrix

COMMIT = "a183028ce818e0434d25706f3b60bbc17d0df5c8"
VIDEOS = ("V1", "V2", "V3", "V5", "V6", "V7", "V8", "V9", "V10")
FPS = 25.0
CLIP_S = 10.0
OFFSETS = (-0.5, -0.31, -0.12, 0.0, 0.08, 0.24, 0.45)


def load_notes(path: Path) -> list[Note]:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(str(path))
    notes = [Note(float(n.start), float(n.end), int(n.pitch) + 12, int(n.velocity))
             for inst in midi.instruments for n in inst.notes]
    return [n for n in notes if 21 <= n.pitch <= 108]


DEV = ("V1", "V2", "V3", "V5")
# TrainSet folders used while adding partial keyboards (octave from the notes)
# and the best-of-medians lattice; folders 8-14 were measured once after
TRAIN_DEV = range(1, 8)
REFERENCE_SEARCH_S = 8.0


def strip_frames(video: Path, cache: Path | None = None, name: str = "") -> np.ndarray:
    """The upright strip's frames on the 25 fps grid (``cache``: kept there as
    ``NAME.npy`` and read back on the next run)."""
    if cache is not None and (cache / f"{name}.npy").exists():
        return np.load(cache / f"{name}.npy", mmap_mode="r")
    found, _ = detect_keyboard_in_video(video)
    if found.box is None:
        raise SystemExit(f"{video.name}: no keyboard found")
    matrix, w, h = strip_matrix(found.frame_size, found.rotation_deg, found.strip_box, found.mirrored)
    frames = np.stack(list(iter_frames(video, FPS, warp=(matrix, (w, h)))))
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.save(cache / f"{name}.tmp.npy", frames)
        (cache / f"{name}.tmp.npy").rename(cache / f"{name}.npy")
    return frames


def lattice_sets(frames: np.ndarray, how: str) -> list[np.ndarray]:
    """The frame sets whose medians :func:`copdata.qa.keys.find_key_map`
    tries: ``first`` (5 frames of the first 10 s clip: the build before
    partial keyboards), ``whole15`` (15 frames over the whole video: this
    benchmark before), ``best`` (what the build's
    :func:`copdata.qa.stage._key_map` tries now: the first clip's 5 frames and
    :data:`copdata.qa.stage.KEY_MAP_SPREAD` frames spread over the video)."""
    from copdata.qa.stage import KEY_MAP_SPREAD

    t = len(frames)
    first = frames[np.linspace(0, min(t, int(CLIP_S * FPS)) - 1, 5).round().astype(int)]
    if how == "first":
        return [first]
    if how == "whole15":
        return [frames[::max(t // 15, 1)]]
    return [first, *[frames[np.linspace(0, t - 1, n).round().astype(int)] for n in KEY_MAP_SPREAD]]


def shifted(notes: list[Note], by: float) -> list[Note]:
    return [Note(x.start + by, x.end + by, x.pitch, x.velocity) for x in notes]


def strip_source(motion: np.ndarray, heard: list[Note], n: int, max_lag: int) -> tuple[dict, int, list]:
    curves, per_clip = [], []
    for c in range(motion.shape[0] // n):
        m = motion[c * n:(c + 1) * n]
        onsets = qa_offset.note_onset_signal(heard, FPS, c * n - max_lag, n + 2 * max_lag,
                                             qa_offset.DEFAULT_BANDS)
        per_clip.append(qa_offset.estimate_offset(m, onsets, FPS))
        curves.append(qa_offset.offset_curve(m, onsets, max_lag))
    return qa_offset.source_offset(curves, FPS, len(heard)), motion.shape[0] // n, per_clip


def video_paths(repo: str, which: str, names: list[str] | None) -> list[tuple[str, str, str]]:
    """``(name, path in the repository, split)`` of the videos to measure."""
    if which == "test":
        chosen = names or list(VIDEOS)
        return [(v, f"DataSet/TestSet/{v}.wmv", "dev" if v in DEV else "held-out") for v in chosen]
    listing = subprocess.run(["git", "--git-dir", repo, "ls-tree", "-r", "--name-only", COMMIT,
                              "DataSet/TrainSet"], check=True, capture_output=True, text=True).stdout
    paths = [x for x in listing.split() if x.endswith(".wmv")]

    def split(path: str) -> str:  # folders 1-7: development of the partial keyboards
        return "train-dev" if int(path.split("/")[2]) in TRAIN_DEV else "train (held-out)"

    return [(x[len("DataSet/TrainSet/"):-len(".wmv")].replace("/", "_"), x, split(x))
            for x in paths if not names or x[len("DataSet/TrainSet/"):-len(".wmv")] in names]


def wide_offset(press, columns, notes) -> dict:
    """The per-key estimate when the MIDI's origin is unknown: the peak of the
    notes' mean curve over +-REFERENCE_SEARCH_S (notes near the video's ends
    count over the lags their window covers), then the estimator itself
    (+-1 s, whole windows) on the notes shifted by that coarse peak."""
    curves, lags = keyoffset.note_curves(press, columns, notes, FPS, 0.0, REFERENCE_SEARCH_S,
                                         partial=True)
    if len(curves) < 2:
        return keyoffset.source_key_offset(curves, lags, FPS)
    coarse = float(lags[int(np.nanargmax(np.nanmean(curves, axis=0)))]) / FPS
    fine = key_source(press, columns, shifted(notes, -coarse))
    return {**fine, "offset_s": round(fine["offset_s"] + coarse, 4),
            "release_offset_s": round(fine["release_offset_s"] + coarse, 4)
            if fine.get("release_offset_s") is not None else None}


def octave_source(press, columns, shifts, heard, wide: bool = False) -> dict:
    """:func:`key_source` (``wide``: :func:`wide_offset`) with the octave
    chosen from the notes when the key map's octave is unknown (``shifts``)."""
    one = wide_offset if wide else key_source
    if shifts is None:
        return one(press, columns, heard)
    return keyoffset.octave_key_offset(press, columns, shifts, heard, FPS,
                                       estimate=lambda p, c, n: one(p, c, n))


def key_source(press, columns, heard) -> dict:
    curves, lags, times = keyoffset.note_curves(press, columns, heard, FPS, 0.0,
                                                qa_offset.DEFAULT_MAX_OFFSET_S, with_times=True)
    release, _ = keyoffset.note_curves(press, columns, heard, FPS, 0.0, qa_offset.DEFAULT_MAX_OFFSET_S,
                                       at="end")
    return keyoffset.source_key_offset(curves, lags, FPS, release_curves=release, times=times)


def _line(new: dict, d: float) -> str:
    return ((f"octave {new['octave_shift']} (margin {new['octave_margin']}) " if "octave_shift" in new
             else "") + f"keys: {new['offset_s']:+.3f} s err {(new['offset_s'] - d) * FPS:+6.2f} fr, "
            f"+-{new['half_width_s']} s, 2nd {new['second_peak']}, release "
            f"{new.get('press_release_frames')} fr, segments "
            f"{','.join(format(x[2], '+.3f') for x in new.get('segments', []))}"
            f"{'' if new.get('segments_agree', True) else ' DISAGREE'}, "
            f"matched {new['matched']}/{new['notes']} "
            f"{'CONFIDENT' if new['confident'] else '-'}")


def summary(rows: list[dict], title: str, methods=("old", "new")) -> None:
    if not rows:
        return
    print(f"\n{title}: {len({r['video'] for r in rows})} videos ("
          f"{len({r['video'] for r in rows if r.get('partial')})} partial keyboards), {len(rows)} sources")
    for method in methods:
        if method not in rows[0]:
            continue
        conf = [r for r in rows if r[method]["confident"]]
        wrong = [r for r in conf if abs(r[f"{method}_error"]) > 1.0]
        long_ = [r for r in rows if r["seconds"] >= 60]
        print(f"  {'strip' if method == 'old' else 'keys '}: confident {len(conf)} of {len(rows)}, "
              f"confident and wrong (> 1 frame) {len(wrong)}"
              + (f" (worst {max(abs(r[f'{method}_error']) for r in wrong):.2f} frames)" if wrong else "")
              + f", sources >= 60 s confident {sum(r[method]['confident'] for r in long_)} of "
              f"{len(long_)}; median |error| "
              f"{np.median([abs(r[f'{method}_error']) for r in rows]):.2f} frames")


PIANOYT = ("tests/piano_2h_cropped2_cuts/nwwHuxHMIpc.00000000.mp4",
           "tests/piano_2h_cropped2_cuts/nwwHuxHMIpc.00000001.mp4")


def pianoyt(repo: str, transcriber: str) -> int:
    """The per-key estimator on two consecutive 10 s PianoYT-2h clips (top-down,
    already cropped to the 88 keys, 25 fps, with the recording's own audio):
    no injected offset, no known truth; what it reads and whether it is
    confident."""
    from copdata.media.decode import read_audio
    from copdata.transcription.registry import transcriber_for

    model = transcriber_for(transcriber)
    onsets, releases, times = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for k, path in enumerate(PIANOYT):
            clip = Path(tmp) / f"{k}.mp4"
            clip.write_bytes(subprocess.run(["git", "--git-dir", repo, "show", f"HEAD:{path}"],
                                            check=True, capture_output=True).stdout)
            frames = np.stack(list(iter_frames(clip, FPS)))
            columns = keys.find_key_columns(frames[::15])
            if columns is None:
                print(f"{path}: no key map")
                return 1
            audio, sr = read_audio(clip, 22050)
            notes = model.transcribe(audio, sr)
            press = keyoffset.press_signal(frames, columns)
            c, lags, t = keyoffset.note_curves(press, columns, notes, FPS, 0.0,
                                               qa_offset.DEFAULT_MAX_OFFSET_S, with_times=True)
            r, _ = keyoffset.note_curves(press, columns, notes, FPS, 0.0,
                                         qa_offset.DEFAULT_MAX_OFFSET_S, at="end")
            print(f"{path}: {len(notes)} notes ({transcriber}): "
                  f"{keyoffset.source_key_offset(c, lags, FPS, release_curves=r, times=t)}")
            onsets.append(c)
            releases.append(r)
            times.append(t + CLIP_S * k)
    both = keyoffset.source_key_offset(np.concatenate(onsets), lags, FPS,
                                       release_curves=np.concatenate(releases),
                                       times=np.concatenate(times))
    print(f"both clips as one source: {both}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("repo", help="git directory of the fetched github:ppfish45/AI-Pianist snapshot")
    p.add_argument("--set", choices=("test", "train"), default="test",
                   help="DataSet/TestSet (V1-V10: development V1 V2 V3 V5, held-out V6-V10) or "
                        "DataSet/TrainSet (71 videos: folders 1-7 development of partial keyboards, "
                        "8-14 held out)")
    p.add_argument("--videos", nargs="*", help="subset (V1..V10, or TrainSet paths like 10/+45/1)")
    p.add_argument("--keys-only", action="store_true", help="skip the strip estimator (faster)")
    p.add_argument("--pianoyt", metavar="GIT_DIR",
                   help="instead: the two PianoYT-2h clips of github:acappemin/Video-to-Audio-and-Piano "
                        "(their own audio, transcribed) as one source")
    p.add_argument("--transcriber", default="basic-pitch", help="for --pianoyt")
    p.add_argument("--lattice", choices=("first", "whole15", "best"), default="best",
                   help="frames whose medians give the black-key lattice (see lattice_sets)")
    p.add_argument("--full-only", action="store_true",
                   help="only key maps with all 36 black keys (the state before partial keyboards)")
    p.add_argument("--cache", type=Path, help="keep the decoded strips here (NAME.npy) for reruns")
    args = p.parse_args(argv)
    if args.pianoyt:
        return pianoyt(args.pianoyt, args.transcriber)
    max_lag = int(math.ceil(qa_offset.DEFAULT_MAX_OFFSET_S * FPS))
    n = int(CLIP_S * FPS)
    rows, cross = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path, split in video_paths(args.repo, args.set, args.videos):
            cached = args.cache is not None and (args.cache / f"{name}.npy").exists() \
                and (args.cache / f"{name}.mid").exists()
            got = [subprocess.run(["git", "--git-dir", args.repo, "show", f"{COMMIT}:{path}{suffix}"],
                                  capture_output=True) for suffix in (("",) if not cached else ()) + (".mid",)]
            if cached:
                got = [subprocess.CompletedProcess([], 0, b"", b""), *got]
            if any(g.returncode for g in got):
                print(f"{name} [{split}]: not in the snapshot ({got[0].stderr.decode().strip()[:80]})",
                      flush=True)
                continue
            for suffix, g in zip(("", ".mid"), got):
                (Path(tmp) / f"{name}.wmv{suffix}").write_bytes(g.stdout)
            if args.cache is not None:
                args.cache.mkdir(parents=True, exist_ok=True)
                (args.cache / f"{name}.mid").write_bytes(got[1].stdout)
            try:
                frames = strip_frames(Path(tmp) / f"{name}.wmv", args.cache, name)
            except SystemExit as exc:
                print(f"{name} [{split}]: {exc}", flush=True)
                continue
            notes = load_notes(Path(tmp) / f"{name}.wmv.mid")
            seconds = round(frames.shape[0] / FPS, 1)
            sets = lattice_sets(frames, args.lattice)
            found = keys.find_key_map(sets[0], sets[1:])
            if found is not None and args.full_only and found[1] is not None:
                found = None
            if found is None:
                print(f"{name} [{split}] {seconds:.1f}s: no key map (no lattice of 36 black keys"
                      + ("" if args.full_only else f" or of >= {keys.MIN_PARTIAL_BLACK} that fits")
                      + ")", flush=True)
                continue
            columns, shifts = found
            press = keyoffset.press_signal(frames, columns)
            motion = None if args.keys_only else qa_offset.motion_signal(frames, qa_offset.DEFAULT_BANDS)
            del frames
            ref = octave_source(press, columns, shifts, notes, wide=True)
            b = ref["offset_s"]
            ordered = sorted(notes, key=lambda x: x.start)
            halves = (ordered[:len(ordered) // 2], ordered[len(ordered) // 2:])
            refs = [octave_source(press, columns, shifts, h, wide=True) for h in halves]
            octave = "" if shifts is None else (
                f" (partial keyboard: octave from the notes, shift {ref['octave_shift']} of "
                f"{list(shifts)}, margin {ref['octave_margin']}; halves "
                f"{refs[0]['octave_shift']}/{refs[1]['octave_shift']})")
            shown = columns if shifts is None else columns.shifted(ref["octave_shift"])
            inside = [p for p in shown.pitches if 21 <= p <= 108]
            print(f"{name} [{split}] {seconds:.1f}s, keys {inside[0]}-{inside[-1]}{octave}, "
                  f"{len(notes)} notes: reference b = {b:+.3f} s (+-{ref['half_width_s']} s, 2nd "
                  f"{ref['second_peak']}, releases {ref.get('release_offset_s')} s, "
                  f"{'confident' if ref['confident'] else 'not confident'}); first half of the notes "
                  f"{refs[0]['offset_s']:+.3f} s, second half {refs[1]['offset_s']:+.3f} s (differ by "
                  f"{abs(refs[0]['offset_s'] - refs[1]['offset_s']) * FPS:.2f} frames)", flush=True)
            for d in OFFSETS:
                heard = shifted(notes, -b + d)
                new = octave_source(press, columns, shifts, heard)
                row = {"video": name, "split": split, "seconds": seconds, "d": d, "new": new,
                       "new_error": round((new["offset_s"] - d) * FPS, 2), "partial": shifts is not None}
                text = ""
                if motion is not None:
                    old, clips, _ = strip_source(motion, heard, n, max_lag)
                    row.update(old=old, old_error=round((old["offset_s"] - d) * FPS, 2))
                    text = (f"strip: {old['offset_s']:+.3f} s err {row['old_error']:+6.2f} fr "
                            f"{'CONF' if old['confident'] else '-':4} | ")
                rows.append(row)
                print(f"  d={d:+.2f} | {text}{_line(new, d)}", flush=True)
            # each half against the other half's reference: truth from disjoint notes
            for h, other in ((0, 1), (1, 0)):
                span = (halves[h][-1].start - halves[h][0].start) if halves[h] else 0.0
                for d in OFFSETS:
                    new = octave_source(press, columns, shifts,
                                        shifted(halves[h], -refs[other]["offset_s"] + d))
                    cross.append({"video": name, "split": split, "seconds": round(span, 1), "d": d,
                                  "new": new, "new_error": round((new["offset_s"] - d) * FPS, 2),
                                  "partial": shifts is not None,
                                  "reference_confident": refs[other]["confident"]})
                worst = cross[-len(OFFSETS):]
                print(f"  half {h + 1} ({len(halves[h])} notes over {span:.1f} s) against half "
                      f"{other + 1}'s reference ({'confident' if refs[other]['confident'] else 'NOT confident'}): {sum(r['new']['confident'] for r in worst)} of "
                      f"{len(worst)} confident, errors "
                      f"{', '.join(format(r['new_error'], '+.2f') for r in worst)} frames",
                      flush=True)
    for split in ("dev", "held-out", "train-dev", "train (held-out)"):
        summary([r for r in rows if r["split"] == split],
                f"{split}, whole videos against their own reference")
        part = [r for r in cross if r["split"] == split]
        summary([r for r in part if r["reference_confident"]],
                f"{split}, each half against the other half's confident reference (its span as "
                "its length)")
        unverified = [r for r in part if not r["reference_confident"]]
        if unverified:
            print(f"  ({sum(r['new']['confident'] for r in unverified)} of {len(unverified)} half "
                  "sources whose other half is not confident are confident: no truth to check them "
                  f"against; their |difference| from that other half: median "
                  f"{np.median([abs(r['new_error']) for r in unverified if r['new']['confident']] or [0]):.2f} frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
