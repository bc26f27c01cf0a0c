"""``copbench`` command line: ``run``, ``leaderboard``, ``compare``, ``weights``,
``listen``, ``mos``.

A thin layer over :mod:`copbench.run`, :mod:`copbench.leaderboard`,
:mod:`copbench.compare`, :mod:`copbench.listen` and :mod:`copbench.mos`. Exit
status: 0 ok; 1 the model failed on some clips (broken or missing outputs, without ``--allow-failures``); 2 usage or input
error, printed as one line (the traceback only with ``--debug``); ``mos``: 3 when
results were written but some ratings files were rejected.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import BenchError
from .metrics import ALL_METRICS, DEFAULT_METRICS

EXIT_STATUS = ("exit status: 0 ok; 1 the model failed on some clips (broken or missing "
               "outputs, without --allow-failures); 2 usage or input error (one line on "
               "stderr; --debug shows the traceback)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="copbench", description="CoP benchmark", epilog=EXIT_STATUS)
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="score a model (checkpoint, folder of wavs, or baseline)",
                       epilog="A clip whose output is broken (NaN/inf, empty, not audio) or "
                              "missing is a failure of the model: the run exits 1 and writes "
                              "nothing unless --allow-failures, which scores the other clips "
                              "and marks the result incomplete (n_failed/n_missing; the "
                              "leaderboard never marks it best). " + EXIT_STATUS)
    r.add_argument("--model", required=True,
                   help="checkpoint path | folder of <clip_id>.wav/.flac | baseline:NAME with "
                        "NAME one of oracle, resynth, silence, noise, shuffle (a bare NAME works "
                        "when no file or folder of that name exists here)")
    r.add_argument("--name", default=None,
                   help="results name (default: the baseline, folder or checkpoint run name); "
                        "a results file of another model is never overwritten")
    r.add_argument("--allow-failures", action="store_true",
                   help="score the clips that have outputs even when some are broken or "
                        "missing (the result is marked incomplete)")
    r.add_argument("--data", required=True, help="CoP dataset folder")
    r.add_argument("--split", default="test",
                   help="a split of the dataset (test, train, valid, ...) or all (default: test)")
    r.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                   help=f"comma-separated, from {','.join(ALL_METRICS)}")
    r.add_argument("--out", default="results", help="results folder (default: results)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--per-clip-fad", action="store_true", help="also store FAD per clip")
    r.add_argument("--track", choices=["v2a", "tv2a"], default=None,
                   help="what the model was given: v2a = video only (a neutral prompt), tv2a = "
                        "video and the clip's caption. Passed to a checkpoint's sampler "
                        "(default tv2a there); for a folder of wavs, declare how they were "
                        "made (default: not declared). Recorded as the results' 'track'; the "
                        "leaderboard ranks models within a track only")
    r.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="device a checkpoint generates on, and the MIDI metric's transkun runs on "
                        "(default cpu)")
    r.add_argument("--clap-text", default="caption", metavar="caption|sound-step|PROMPT",
                   help="the text clap_score compares with: the clip's caption (default, as "
                        "av-benchmark), its 'sound' step, or this fixed prompt")
    r.add_argument("--weights", action="append", default=[], metavar="NAME=PATH",
                   help="local weights for a pretrained embedder (vggish, vggish_relu, panns, "
                        "panns_windowed, clap (a .pt file or a transformers repo folder), "
                        "wav2clip, clip); see `copbench weights list`")
    r.add_argument("--no-progress", action="store_true")
    from copdata.cli import add_transcriber_arguments
    add_transcriber_arguments(r.add_argument_group("MIDI metric: transcription of the outputs"),
                              default="basic-pitch", thresholds=False, device=False)
    lb = sub.add_parser("leaderboard", help="table of every results file in a folder",
                        epilog=EXIT_STATUS)
    lb.add_argument("results_dir")
    lb.add_argument("--format", default="md", choices=["md", "csv", "html"])
    lb.add_argument("--out", help="write to this file instead of stdout")
    lb.add_argument("--metrics", default=None,
                    help="comma-separated columns to show, in this order, or 'all' (default: "
                         "the paper's columns: fad_*, fad_*_inf, clip_score, av_align, si_sdr, "
                         "midi_note_precision/recall/f1, mos_*)")
    w = sub.add_parser("weights", help="list or fetch the pretrained embedders' weights",
                       description="list: each embedder's weights file, source, sha256 and "
                                   "whether it is present. fetch NAME|all: download it (Hugging "
                                   "Face Hub or HTTPS; resumable; checksum verified). Example: "
                                   "copbench weights fetch vggish", epilog=EXIT_STATUS)
    wsub = w.add_subparsers(dest="weights_command", required=True)
    wsub.add_parser("list", help="show every weights file and whether it is present")
    wf = wsub.add_parser("fetch", help="download weights (NAME or all)")
    wf.add_argument("names", nargs="+", help="weights names from `copbench weights list`, or all")
    wf.add_argument("--url", help="fetch this one file from URL instead (a mirror)")
    wf.add_argument("--no-progress", action="store_true")
    lb.add_argument("--samples", type=int, default=0, metavar="N",
                    help="html only: a sample browser of N clips (video, audio per model, "
                         "spectrograms and transcribed rolls); media go to <out stem>_files/ "
                         "beside --out")
    lb.add_argument("--seed", type=int, default=0, help="seed of the sample clips' choice")
    ls = sub.add_parser("listen", help="build a static blind listening study (MOS, ACR 1-5)",
                        description="Build a static, self-contained listening study: index.html "
                        "(opens from file:// or any static host) and media/, to serve as they are; "
                        "the key (the only file naming the systems) is written outside the "
                        "folder, to OUT.study-key.json unless --key says where.",
                        epilog="example: copbench listen --data DIR --models results/ --clips 12 "
                               "--raters-seed 7 --out study/. exit status: 0 ok; 2 usage or "
                               "input error")
    ls.add_argument("--data", required=True, help="CoP dataset folder")
    ls.add_argument("--split", default="test", choices=["test", "train", "all"])
    ls.add_argument("--models", required=True,
                    help="a results folder (every model in it) or comma-separated --model values "
                         "(baselines, output folders, checkpoints)")
    ls.add_argument("--clips", type=int, default=10, help="clips in the test (default 10)")
    ls.add_argument("--raters-seed", type=int, default=0,
                    help="seed of the per-rater trial order (the order is a function of it and "
                         "the rater id)")
    ls.add_argument("--seed", type=int, default=0, help="seed of the clip choice and baselines")
    ls.add_argument("--anchor", default="noise",
                    help="low anchor: a baseline (noise, silence, shuffle, ...) or none")
    ls.add_argument("--no-training", action="store_true", help="no training section")
    ls.add_argument("--post-url", default=None,
                    help="also POST the ratings JSON there at the end (the server must answer "
                         "with Access-Control-Allow-Origin)")
    ls.add_argument("--study-id", default=None, help="default: study-<random hex>")
    ls.add_argument("--out", required=True, help="new study folder (the folder to serve)")
    ls.add_argument("--key", default=None,
                    help="where to write the study key, outside --out (default: "
                         "OUT.study-key.json beside the study folder); keep it private")
    ls.add_argument("--no-progress", action="store_true")
    mo = sub.add_parser("mos", help="MOS with 95%% CIs from ratings files of a study",
                        description="Validate ratings files against the study, screen raters, "
                        "compute MOS per system with a two-way (raters x clips) bootstrap 95%% CI, "
                        "and write mos_quality / mos_match into RESULTS_DIR/<system>.json.",
                        epilog="exit status: 0 ok; 2 usage or input error; 3 written but some "
                               "ratings files were rejected")
    mo.add_argument("study_dir")
    mo.add_argument("ratings", nargs="+", help="ratings JSON files downloaded from the study page")
    mo.add_argument("--out", required=True, help="results folder to add the MOS to")
    mo.add_argument("--key", default=None,
                    help="the study key (default: STUDY_DIR.study-key.json beside the folder)")
    mo.add_argument("--seed", type=int, default=0)
    mo.add_argument("--allow-incomplete", action="store_true",
                    help="keep raters who did not rate every trial")
    mo.add_argument("--max-reference-below-anchor", type=float, default=0.2,
                    help="screen a rater whose hidden reference got a lower rating than the "
                         "anchor in more than this fraction of (clip, question) pairs")
    c = sub.add_parser("compare", help="paired bootstrap of B - A over common clips",
                       epilog=EXIT_STATUS)
    c.add_argument("a")
    c.add_argument("b")
    c.add_argument("--seed", type=int, default=0)
    return p


def _cmd_run(args) -> int:
    from .embedders.weights import set_override
    from .run import run_benchmark
    for spec in args.weights:
        name, _, path = spec.partition("=")
        if not path:
            raise BenchError(f"--weights expects NAME=PATH, got {spec!r}")
        set_override(name, path)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    res = run_benchmark(args.model, args.data, split=args.split, metrics=metrics, out=args.out,
                        seed=args.seed, per_clip_fad=args.per_clip_fad,
                        progress=not args.no_progress, command=["copbench"] + sys.argv[1:],
                        allow_failures=args.allow_failures, name=args.name, track=args.track,
                        device=args.device, clap_text=args.clap_text,
                        transcriber={"name": args.transcriber, "device": args.device,
                                     "note_post": args.note_post})
    pairing = res["pairing"]
    scored = pairing["paired"] - res["n_failed"]
    print(f"model {res['model']}: {scored} of {res['n_expected']} clips scored; "
          f"{res['n_failed']} failed (broken output), {res['n_missing']} missing, "
          f"{len(pairing['extra'])} extra" + ("" if res["complete"] else " [INCOMPLETE]"))
    if pairing["missing"]:
        print("  missing:", " ".join(pairing["missing"][:20]) + (" ..." if len(pairing["missing"]) > 20 else ""))
    if pairing["extra"]:
        print("  extra:  ", " ".join(pairing["extra"][:20]) + (" ..." if len(pairing["extra"]) > 20 else ""))
    for cid, err in sorted(res["errors"].items()):
        print(f"  error {cid}: {err}")
    for name, m in sorted(res["metrics"].items()):
        ci = f"[{m['ci95'][0]:.4f}, {m['ci95'][1]:.4f}]" if m.get("ci95") else "(no interval)"
        print(f"  {name:28s} {m['mean']:10.4f}  {ci}  n={m['n']}")
    print(f"wrote {res['path']}")
    return 0


def _cmd_leaderboard(args) -> int:
    from .leaderboard import render_leaderboard
    only = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    if args.samples and (args.format != "html" or not args.out):
        raise SystemExit("--samples needs --format html and --out FILE")
    text = render_leaderboard(args.results_dir, args.format, only, samples=args.samples,
                              out=args.out, seed=args.seed)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _cmd_compare(args) -> int:
    from .compare import compare_files, format_comparison
    sys.stdout.write(format_comparison(compare_files(args.a, args.b, seed=args.seed)))
    return 0


def _cmd_weights(args) -> int:
    from .weights_cli import fetch_names, format_list, specs, status
    if args.weights_command == "list":
        sys.stdout.write(format_list([status(s) for s in specs().values()]))
        return 0
    for name, path in fetch_names(args.names, url=args.url, progress=not args.no_progress).items():
        print(f"{name}: {path}")
    return 0


def _cmd_listen(args) -> int:
    from .listen import build_study
    key = build_study(args.data, args.models, args.out, split=args.split, clips=args.clips,
                      raters_seed=args.raters_seed, seed=args.seed, anchor=args.anchor,
                      post_url=args.post_url, study_id=args.study_id,
                      training=not args.no_training, progress=not args.no_progress,
                      key_path=args.key)
    systems = sorted({s.system for s in key.stimuli.values()})
    print(f"study {key.study_id} (hash {key.study_hash[:12]}): {len(key.spec['trials'])} trials, "
          f"{len(key.spec['training'])} training, systems: {', '.join(systems)}")
    from .listen.study import default_key_path
    key_path = Path(args.key) if args.key else default_key_path(args.out)
    print(f"serve {Path(args.out)} (open index.html); keep the key {key_path} private")
    return 0


def _cmd_mos(args) -> int:
    from .mos import format_report, run_mos
    report = run_mos(args.study_dir, args.ratings, args.out, seed=args.seed, key_path=args.key,
                     allow_incomplete=args.allow_incomplete,
                     max_reference_below_anchor=args.max_reference_below_anchor,
                     command=["copbench"] + sys.argv[1:])
    sys.stdout.write(format_report(report))
    return 3 if report["rejected"] else 0


def main(argv: list[str] | None = None) -> int:
    from copdata.cli import run_command
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    handler = {"run": _cmd_run, "leaderboard": _cmd_leaderboard, "compare": _cmd_compare,
               "weights": _cmd_weights, "listen": _cmd_listen, "mos": _cmd_mos}
    return run_command(f"copbench {args.command}", lambda: handler[args.command](args), args)


if __name__ == "__main__":
    sys.exit(main())
