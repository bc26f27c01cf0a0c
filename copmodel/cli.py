"""``copmodel`` command line: train, sample, prefs (a thin layer over the library)."""

from __future__ import annotations

import argparse
import json
import logging
import sys

EXIT_STATUS = ("exit status: 0 ok; 1 some items failed; 2 usage or input error (one line on "
               "stderr; --debug shows the traceback)")


def _resolved_config(args):
    from .presets import load_config

    cfg = load_config(args.config, args.set or [])
    if getattr(args, "batch_size", None):
        cfg = cfg.override(train={"batch_size": args.batch_size})
    return cfg


def _config_yaml(cfg) -> str:
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def _config(args) -> int:
    print(_config_yaml(_resolved_config(args)), end="")
    return 0


def _train(args) -> int:
    from .train import train_folder

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    cfg = _resolved_config(args)
    print(f"# copmodel train --stage {args.stage}: config (saved in the checkpoint)\n"
          + _config_yaml(cfg), file=sys.stderr, flush=True)
    prefs = None
    if args.prefs:
        from .prefs import load_preferences

        prefs = {**load_preferences(args.prefs), "source": str(args.prefs)}
    result = train_folder(args.stage, cfg, args.data, args.out, max_steps=args.max_steps,
                          save_every=args.save_every, resume=args.resume, init=args.init,
                          prefs=prefs)
    print(json.dumps(result, indent=2))
    return 0


def _sample(args) -> int:
    from .sample import load_sampler, sample_split

    sampler = load_sampler(args.ckpt, device=args.device)
    info = sample_split(sampler, args.data, args.split, args.out, seed=args.seed,
                        steps=args.steps, guidance=args.guidance, output=args.output,
                        track=args.track, limit=args.limit)
    print(f"wrote {info['clips']} wav files to {args.out}")
    return 0


def _prefs(args) -> int:
    from .prefs import make_preferences

    result = make_preferences(args.ckpt, args.data, args.out, split=args.split,
                              candidates=args.candidates, steps=args.steps,
                              guidance=args.guidance,
                              limit=args.limit, seed=args.seed, device=args.device)
    print(json.dumps(result, indent=2))
    return 0


def _config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="tiny", metavar="PRESET|FILE",
                   help="a preset (micro, tiny, small, base) or a YAML/JSON file with any of the "
                   "groups audio, net, train, sample (and 'preset: NAME' to start from)")
    p.add_argument("--set", action="append", default=[], metavar="GROUP.FIELD=VALUE",
                   help="override one config field, e.g. --set net.dim=256 --set "
                   "audio.representation=mel (repeatable; `copmodel config` lists them all)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="copmodel", description=__doc__, epilog=EXIT_STATUS)
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", epilog=EXIT_STATUS, help="train one stage (writes RUN/stage<N>/last.ckpt)")
    t.add_argument("--stage", type=int, choices=(1, 2, 3), required=True)
    _config_args(t)
    t.add_argument("--data", required=True, help="dataset folder (copdata build --out)")
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--max-steps", type=int, default=None)
    t.add_argument("--save-every", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None, help="global batch size")
    t.add_argument("--threads", type=int, default=None,
                   help="CPU threads for torch (1 is fastest on a busy machine)")
    t.add_argument("--resume", action="store_true", help="continue RUN/stage<N>/last.ckpt")
    t.add_argument("--init", default=None, help="start from this checkpoint "
                   "(default for stage > 1: RUN/stage<N-1>/last.ckpt)")
    t.add_argument("--prefs", default=None, help="stage 3: preference pairs from copmodel prefs")
    t.set_defaults(func=_train)

    c = sub.add_parser("config", epilog=EXIT_STATUS,
                       help="print the resolved config (preset or file + --set) as YAML")
    _config_args(c)
    c.set_defaults(func=_config)

    s = sub.add_parser("sample", epilog=EXIT_STATUS, help="write <clip_id>.wav for every clip of a split")
    s.add_argument("--ckpt", required=True)
    s.add_argument("--data", required=True)
    s.add_argument("--split", default="test")
    s.add_argument("--out", required=True)
    s.add_argument("--steps", type=int, default=None)
    s.add_argument("--guidance", dest="guidance", type=float, default=None,
                   metavar="W", help="classifier-free guidance weight (default: the "
                   "checkpoint's sample.guidance_weight)")
    s.add_argument("--track", default="tv2a", choices=("v2a", "tv2a"),
                   help="what the model is given: v2a = video and one neutral prompt for every "
                   "clip; tv2a = video and the clip's caption (default)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="cpu", help="cpu / cuda / cuda:N")
    s.add_argument("--output", default="generate", choices=("generate", "reconstruct", "rollsynth"),
                   help="generate (the model), reconstruct (the reference audio through the "
                   "audio representation: its ceiling) or rollsynth (predicted roll -> notes -> "
                   "copdata's piano synth)")
    s.add_argument("--limit", type=int, default=None, help="at most this many clips")
    s.set_defaults(func=_sample)

    r = sub.add_parser("prefs", epilog=EXIT_STATUS, help="preference pairs: K candidates per clip ranked by MIDI F1")
    r.add_argument("--ckpt", required=True)
    r.add_argument("--data", required=True)
    r.add_argument("--out", required=True, help="output .pt file")
    r.add_argument("--split", default="train")
    r.add_argument("--candidates", type=int, default=4)
    r.add_argument("--steps", type=int, default=None)
    r.add_argument("--guidance", dest="guidance", type=float, default=None,
                   metavar="W", help="classifier-free guidance weight (default: the "
                   "checkpoint's sample.guidance_weight)")
    r.add_argument("--limit", type=int, default=None, help="at most this many clips")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--device", default=None,
                   help="cpu / cuda / cuda:N (default: the accelerator's; under accelerate "
                   "launch or torchrun each process mines every N-th clip)")
    r.set_defaults(func=_prefs)
    return p


def main(argv: list[str] | None = None) -> int:
    from copdata.cli import run_command

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    return run_command(f"copmodel {args.command}", lambda: args.func(args), args)


if __name__ == "__main__":
    sys.exit(main())
