"""``copbench`` command line: ``run``, ``leaderboard``, ``compare``.

A thin layer over :mod:`copbench.run`, :mod:`copbench.leaderboard` and
:mod:`copbench.compare`; errors of copdata/copbench print one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from copdata.errors import CopDataError

from .metrics import ALL_METRICS, DEFAULT_METRICS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="copbench", description="CoP benchmark")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="score a model (checkpoint, folder of wavs, or baseline)")
    r.add_argument("--model", required=True,
                   help="checkpoint path | folder of <clip_id>.wav/.flac | oracle | resynth | "
                        "silence | noise | shuffle")
    r.add_argument("--data", required=True, help="CoP dataset folder")
    r.add_argument("--split", default="test", choices=["test", "train", "all"])
    r.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                   help=f"comma-separated, from {','.join(ALL_METRICS)}")
    r.add_argument("--out", default="results", help="results folder (default: results)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--per-clip-fad", action="store_true", help="also store FAD per clip")
    r.add_argument("--weights", action="append", default=[], metavar="NAME=PATH",
                   help="local weights for a pretrained embedder (vggish, panns, clap, wav2clip, "
                        "clip)")
    r.add_argument("--no-progress", action="store_true")
    lb = sub.add_parser("leaderboard", help="table of every results file in a folder")
    lb.add_argument("results_dir")
    lb.add_argument("--format", default="md", choices=["md", "csv", "html"])
    lb.add_argument("--out", help="write to this file instead of stdout")
    lb.add_argument("--metrics", default=None,
                    help="comma-separated columns to show, in this order (default: all)")
    c = sub.add_parser("compare", help="paired bootstrap of B - A over common clips")
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
            raise SystemExit(f"--weights expects NAME=PATH, got {spec!r}")
        set_override(name, path)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    res = run_benchmark(args.model, args.data, split=args.split, metrics=metrics, out=args.out,
                        seed=args.seed, per_clip_fad=args.per_clip_fad,
                        progress=not args.no_progress, command=["copbench"] + sys.argv[1:])
    pairing = res["pairing"]
    print(f"model {res['model']}: {pairing['paired']} clips paired, "
          f"{len(pairing['missing'])} missing, {len(pairing['extra'])} extra")
    if pairing["missing"]:
        print("  missing:", " ".join(pairing["missing"][:20]) + (" ..." if len(pairing["missing"]) > 20 else ""))
    if pairing["extra"]:
        print("  extra:  ", " ".join(pairing["extra"][:20]) + (" ..." if len(pairing["extra"]) > 20 else ""))
    for cid, err in sorted(res["errors"].items()):
        print(f"  error {cid}: {err}")
    for name, m in sorted(res["metrics"].items()):
        print(f"  {name:28s} {m['mean']:10.4f}  [{m['ci95'][0]:.4f}, {m['ci95'][1]:.4f}]  n={m['n']}")
    print(f"wrote {res['path']}")
    return 0


def _cmd_leaderboard(args) -> int:
    from .leaderboard import render_leaderboard
    only = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else None
    text = render_leaderboard(args.results_dir, args.format, only)
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


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    handler = {"run": _cmd_run, "leaderboard": _cmd_leaderboard, "compare": _cmd_compare}
    try:
        return handler[args.command](args)
    except CopDataError as exc:
        print(f"copbench: {exc.error_class}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
