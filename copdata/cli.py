"""``copdata`` command line: a thin layer over library functions.

Every command prints one clear line for bad input (never a traceback unless
``--debug``) and exits with :data:`EXIT_STATUS`: 0 ok, 1 some items failed or
problems were found, 2 usage or input error. ``--verbose`` shows debug logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from pathlib import Path

from .errors import CopDataError
from .options import LIMITS, number

EXIT_STATUS = ("exit status: 0 ok; 1 some items failed or problems were found; "
               "2 usage or input error (one line on stderr; --debug shows the traceback)")


def _add_settings(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("clip settings")
    g.add_argument("--clip-seconds", type=number(float, *LIMITS["clip_seconds"]), default=10.0, help="clip length (default 10)")
    g.add_argument("--fps", type=number(float, *LIMITS["fps"]), default=25.0, help="video frame rate (default 25)")
    g.add_argument("--sample-rate", type=number(int, *LIMITS["sample_rate"]), default=44100, help="audio rate (default 44100)")
    g.add_argument("--frame-size", type=str, default=None, metavar="WxH",
                   help="resize frames to WxH after cropping (default: keep)")
    g.add_argument("--max-clips-per-item", type=number(int, 1), default=None,
                   help="keep at most this many clips of each item")
    g.add_argument("--video-preset", default="superfast",
                   choices=["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow"],
                   help="x264 preset of video.mp4: faster builds vs smaller files (default superfast)")
    g.add_argument("--video-crf", type=number(int, 0, 51), default=20, help="x264 CRF of video.mp4 (default 20)")
    q = p.add_argument_group("quality (QA) thresholds; off by default, always recorded in dataset.json")
    q.add_argument("--qa-min-piano", type=number(float, 0, 1), default=None, metavar="S",
                   help="reject clips whose piano_score is below S (0..1; solo piano scores "
                        "about 0.6-0.9, speech and noise about 0); default: keep all")
    q.add_argument("--qa-min-keyboard", type=number(float, 0, 1), default=None, metavar="S",
                   help="reject clips whose keyboard_score is below S (0..1); default: keep all")
    q.add_argument("--qa-max-offset", type=number(float, 0, 60), default=None, metavar="SEC",
                   help="reject clips whose confidently measured audio/video offset exceeds "
                        "SEC seconds; default: keep all")
    q.add_argument("--qa-correct-offset", action="store_true",
                   help="shift each clip's audio (and notes) by its source's one offset "
                        "before cutting, when that offset is confident (docs/qa.md)")
    q.add_argument("--video-timing", choices=["camera", "rendered"], default="camera",
                   help="local/youtube videos: camera (a frame is a snapshot at i/fps; only the "
                        "per-key offset estimator may act) or rendered (a frame shows its "
                        "interval, as copdata's renderer; the strip estimator may act too); "
                        "default camera")
    q.add_argument("--auto-crop", action="store_true",
                   help="local/youtube: find the keyboard box automatically for rows without "
                        "a crop box (recorded in the clip rows)")
    add_transcriber_arguments(p.add_argument_group("transcription (recorded sources)"))


def _note_post_list(text: str) -> tuple[str, ...]:
    from .errors import TranscriberError
    from .transcription.post import check_steps

    try:
        return check_steps(s.strip() for s in text.split(",") if s.strip())
    except TranscriberError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_transcriber_arguments(group, default: str = "auto", thresholds: bool = True,
                              device: bool = True) -> None:
    """``--transcriber``, ``--device``, ``--note-post`` and basic-pitch's
    thresholds (shared by ``copdata build``, ``copdata transcribe`` and
    ``copbench run``; ``device=False`` where the command has its own ``--device``)."""
    from .transcription import TRANSCRIBERS

    choices = ["auto", *TRANSCRIBERS]
    group.add_argument("--transcriber", default=default, choices=choices,
                       help="audio -> notes model: " + "; ".join(
                           f"{k}: {v}" for k, v in TRANSCRIBERS.items())
                       + "; auto: transkun when a CUDA GPU is visible, else basic-pitch "
                       f"(default: {default}; the choice is recorded)")
    if device:
        group.add_argument("--device", default=None, metavar="DEV",
                           help="transkun: cpu, cuda, cuda:N or auto (default: auto)")
    group.add_argument("--note-post", type=_note_post_list, default=(), metavar="STEPS",
                       help="note post-processing, comma-separated: octave (drop weaker octave "
                            "doublings), ends (halve note durations), floor (notes "
                            "last at least 0.1 s); measured in docs/transcription.md "
                            "(default: none)")
    if thresholds:
        group.add_argument("--onset-threshold", type=number(float, 0, 1), default=0.5,
                           help="basic-pitch only")
        group.add_argument("--frame-threshold", type=number(float, 0, 1), default=0.3,
                           help="basic-pitch only")
        group.add_argument("--min-note-ms", type=number(float, 0, 10000), default=127.7,
                           help="basic-pitch only")


def _settings(args):
    from .sources.base import BuildSettings
    from .transcription import resolve_transcriber_name

    size = None
    if args.frame_size:
        try:
            w, h = (int(v) for v in args.frame_size.lower().split("x"))
        except ValueError:
            raise CopDataError(f"--frame-size {args.frame_size!r} must look like 640x96") from None
        size = (w, h)
    return BuildSettings(fps=args.fps, sample_rate=args.sample_rate, clip_seconds=args.clip_seconds,
                         seed=args.seed, frame_size=size,
                         transcriber=resolve_transcriber_name(args.transcriber),
                         transcriber_device=args.device, note_post=tuple(args.note_post),
                         onset_threshold=args.onset_threshold,
                         frame_threshold=args.frame_threshold, min_note_ms=args.min_note_ms,
                         max_clips_per_item=args.max_clips_per_item,
                         video_preset=args.video_preset, video_crf=args.video_crf,
                         qa_min_piano=args.qa_min_piano, qa_min_keyboard=args.qa_min_keyboard,
                         qa_max_offset=args.qa_max_offset, qa_correct_offset=args.qa_correct_offset,
                         video_timing=args.video_timing, auto_crop=args.auto_crop)


def cmd_build(args) -> int:
    from .build import build_dataset
    from .sources import source_from_args

    source = source_from_args(args)
    summary = build_dataset(source, args.out, _settings(args), workers=args.workers,
                            executor=args.executor, ray_address=args.ray_address,
                            force=args.force, progress=not args.quiet,
                            target_hours=args.target_hours)
    ok = summary.failed == 0 and not summary.duplicates
    args.exit_status = 0 if ok else 1
    print(summary.line())
    print(f"dataset: {args.out}  (report: {Path(args.out) / 'report.json'})")
    return 0 if ok else 1


def cmd_validate(args) -> int:
    from .dataset.validate import validate_dataset

    problems = validate_dataset(args.dir, progress=not args.quiet)
    args.exit_status = 1 if problems else 0  # kept when stdout is closed early (| head)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s) found in {args.dir}")
        return 1
    print(f"ok: {args.dir} meets the clip contract")
    return 0


def cmd_stats(args) -> int:
    from .dataset.stats import dataset_stats, format_stats, plot_stats

    stats = dataset_stats(args.dir)
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    if args.plot:
        print(f"wrote {plot_stats(args.dir, args.plot)}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_qa(args) -> int:
    from .qa.summary import format_qa, plot_qa, qa_summary

    summary = qa_summary(args.dir)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_qa(summary, table=not args.no_table))
    if args.plot:
        print(f"wrote {plot_qa(summary, args.plot)}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_detect_keyboard(args) -> int:
    from .qa.detect import detect_keyboard_in_video, draw_box

    if args.frames < 1:
        raise CopDataError(f"--frames must be at least 1, got {args.frames}")
    found, frames = detect_keyboard_in_video(args.video, frames=args.frames)
    if args.json:
        print(json.dumps(found.to_dict()))
    elif found.box is None:
        print(f"{args.video}: no keyboard found")
    else:
        x0, y0, x1, y1 = found.box
        side = "far side (low keys on the right)" if found.flipped else "player's side"
        keys = (f"keys {found.lowest_key}-{found.highest_key}" if not found.partial else
                f"partial: {found.keys_visible} keys, {found.lowest_name} to {found.highest_name}")
        print(f"{args.video}: keyboard box x0={x0} y0={y0} x1={x1} y1={y1} (source pixels, x1/y1 "
              f"exclusive), confidence {found.confidence:.3f}, {found.black_keys} black keys seen, "
              f"tilt {found.angle_deg:+.1f} deg, seen from the {side}, {keys}")
    if args.out:
        out = draw_box(frames[len(frames) // 2], found.box, args.out,
                       f"confidence {found.confidence:.3f}", quad=found.quad)
        print(f"wrote {out}", file=sys.stderr if args.json else sys.stdout)
    return 0 if found.box is not None else 1


def cmd_show(args) -> int:
    from .dataset.show import show_clip

    out = show_clip(args.dir, args.clip_id, args.out)
    print(f"wrote {out}")
    return 0


def cmd_transcribe(args) -> int:
    from .transcription import transcribe_file

    from .transcription import resolve_transcriber_name

    name = resolve_transcriber_name(args.transcriber)
    notes = transcribe_file(args.audio, args.out, transcriber=name, note_post=args.note_post,
                            onset_threshold=args.onset_threshold,
                            frame_threshold=args.frame_threshold, min_note_ms=args.min_note_ms,
                            device=args.device)
    print(f"wrote {args.out}: {len(notes)} notes ({name})")
    return 0


def cmd_export(args) -> int:
    from .export.hf import export_main

    return export_main(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="copdata", description="Build, check and publish five-view CoP piano datasets "
        "(video, audio, MIDI, piano roll, text steps).")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error")
    parser.epilog = EXIT_STATUS
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser(
        "build", help="build a dataset from a source",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Build a CoP dataset (video, audio, MIDI, roll, steps per clip). Rerunning "
                    "the same command resumes an interrupted build.",
        epilog="examples:\n"
               "  copdata build --source synth --num-items 16 --item-seconds 30 --out data/synth\n"
               "  copdata build --source local --input videos/ --out data/local --workers 2\n"
               "  copdata build --source youtube --manifest manifests/pianoyt2h.csv --out data/yt2h\n"
               "  copdata build --source youtube --manifest piano10h.csv --target-hours 10 --out data/p10h\n"
               "exit status: 0 all items ok; 1 some items failed (see report.json); 2 usage or input error,\n  nothing built (bad arguments, folder held by another build, or built with other settings)\n"
               "  --force deletes only an earlier CoP build (a folder whose dataset.json copdata wrote)")
    b.add_argument("--out", required=True, help="output dataset folder")
    b.add_argument("--workers", type=number(int, 1, 1024), default=1, help="parallel worker processes")
    b.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="local worker processes (default) or a Ray cluster")
    b.add_argument("--ray-address", default=None, help="Ray cluster address (default: local Ray)")
    b.add_argument("--seed", type=int, default=0, help="seed of generation and split assignment")
    b.add_argument("--force", action="store_true", help="delete an earlier CoP build in --out first (refused for a "
                        "folder whose dataset.json copdata did not write)")
    b.add_argument("--quiet", action="store_true", help="no progress bar")
    b.add_argument("--target-hours", type=number(float, 0, 1e6), default=None, metavar="H",
                   help="stop queueing new items once H hours of accepted clips are built "
                        "(items in flight finish; the rest are 'not_queued' in report.json)")
    b.add_argument("--test-fraction", type=number(float, 0, 1), default=0.25,
                   help="share of items assigned to the test split (when not given per item)")
    from .sources import add_source_arguments

    add_source_arguments(b)
    _add_settings(b)
    b.set_defaults(func=cmd_build)

    v = sub.add_parser("validate", help="check every clip against the contract",
                       epilog="exit status: 0 the dataset meets the contract; 1 problems found "
                              "(one line each, also when stdout is closed early); 2 usage or input error "
                              "(not a dataset folder)")
    v.add_argument("dir")
    v.add_argument("--quiet", action="store_true")
    v.set_defaults(func=cmd_validate)

    st = sub.add_parser("stats", epilog=EXIT_STATUS, help="hours, clips per split, notes, failures")
    st.add_argument("dir")
    st.add_argument("--json", action="store_true", help="print JSON")
    st.add_argument("--plot", default=None, metavar="PNG",
                    help="also draw pitches, note density, hours per split and failures")
    st.set_defaults(func=cmd_stats)

    qa = sub.add_parser("qa", epilog=EXIT_STATUS, help="quality signals per clip and clips below each threshold",
                        description="Table of the QA signals of every clip (kept and rejected), "
                                    "how many clips fall below each threshold, and the signals' "
                                    "quantiles. Definitions: docs/qa.md.")
    qa.add_argument("dir")
    qa.add_argument("--json", action="store_true", help="print JSON")
    qa.add_argument("--no-table", action="store_true", help="only the counts and quantiles")
    qa.add_argument("--plot", default=None, metavar="PNG", help="also draw the signals' histograms")
    qa.set_defaults(func=cmd_qa)

    dk = sub.add_parser("detect-keyboard", help="find the keyboard box in a video",
                        description="Print the box of a top-down piano keyboard in VIDEO (source "
                                    "pixels, x1/y1 exclusive like the manifests' crop boxes), "
                                    "seen from either long side and tilted up to 20 degrees: "
                                    "its tilt, side, corners and visible key range. "
                                    "Exit status 1 when no keyboard is found.",
                        epilog=EXIT_STATUS)
    dk.add_argument("video")
    dk.add_argument("--frames", type=number(int, 1, 1000), default=7, help="frames sampled over the video (default 7)")
    dk.add_argument("--json", action="store_true",
                    help='print one line {"box": [x0, y0, x1, y1], "confidence": c, "angle_deg": a, '
                         '"flipped": f, "strip_box", "quad", "keys_visible", "lowest", "highest", '
                         '"lowest_key", "highest_key", "partial", "direction_from"} (docs/qa.md)')
    dk.add_argument("--out", default=None, metavar="PNG", help="also save a frame with the box drawn")
    dk.set_defaults(func=cmd_detect_keyboard)

    sh = sub.add_parser("show", epilog=EXIT_STATUS, help="picture of one clip: frames, spectrogram, roll, steps")
    sh.add_argument("dir")
    sh.add_argument("clip_id")
    sh.add_argument("--out", default="clip.png")
    sh.set_defaults(func=cmd_show)

    tr = sub.add_parser("transcribe", epilog=EXIT_STATUS, help="transcribe an audio or video file to MIDI")
    tr.add_argument("audio")
    tr.add_argument("--out", required=True, help="output .mid")
    add_transcriber_arguments(tr)
    tr.set_defaults(func=cmd_transcribe)

    ex = sub.add_parser("export", epilog=EXIT_STATUS, help="export a dataset in the Hugging Face Hub layout")
    try:
        from .export.hf import add_cli_arguments as add_export_arguments

        add_export_arguments(ex)
    except ImportError:
        ex.add_argument("dir")
    ex.set_defaults(func=cmd_export)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return run_command(f"copdata {args.command}", lambda: args.func(args), args)


def run_command(name: str, command, args) -> int:
    """Run ``command()`` as a CLI command: one line on stderr and exit 2 for an
    error (a traceback only with ``args.debug``), 130 on Ctrl-C; a closed stdout
    (``| head``) keeps the status the command had reached."""
    try:
        status = int(command() or 0)
        sys.stdout.flush()  # a closed pipe raises here, not at interpreter exit
        return status
    except BrokenPipeError:  # output piped into `head` and closed
        _silence_stdout()
        return int(getattr(args, "exit_status", 0))
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if getattr(args, "debug", False):
            traceback.print_exc()
        print(f"{name}: error: {error_line(exc)}", file=sys.stderr)
        return int(getattr(exc, "exit_status", 2))


def error_line(exc: BaseException) -> str:
    """One line for an error: typed errors as they are, OS errors with the file,
    anything else with its class (rerun with --debug for the traceback)."""
    if isinstance(exc, CopDataError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    if isinstance(exc, (OSError, UnicodeError, ValueError)):
        return f"{type(exc).__name__}: {exc}"
    return f"internal error {type(exc).__name__}: {exc} (rerun with --debug for the traceback)"


def _silence_stdout() -> None:
    """Point stdout at /dev/null so Python's exit flush does not raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
