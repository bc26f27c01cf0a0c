"""The audio representation's ceiling: ground truth encoded, decoded and transcribed.

    PYTHONPATH=. python benchmarks/bench_ceiling.py --data DATA [--split test]
        [--variants NAME ...] [--limit N] [--json OUT.json]

For every clip of the split, the reference audio goes through one representation
(``copmodel.audio.round_trip``: encode at the internal rate, decode, resample
back) and copdata's transcriber; the note F1 against the clip's MIDI is
``copdata.scoring.note_scores`` (copbench's ``midi_note_f1``) (mean over clips, the leaderboard's number).
``ground_truth`` transcribes the reference audio itself. Without ``--data`` a
demo-sized synthetic dataset is built under /tmp.

Each variant is the ``tiny`` audio config with a few fields overridden (see
VARIANTS); the default config is the one named ``default``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

VARIANTS = {
    "seed_mel80_pinv_gl32": dict(representation="mel", mel_inverse="pinv", griffin_lim_iters=32),
    "mel80_nnls_gl32": dict(representation="mel", mel_inverse="nnls", griffin_lim_iters=32),
    "mel80_nnls_gl100": dict(representation="mel", mel_inverse="nnls", griffin_lim_iters=100),
    "mel128_hop160_nnls_gl100": dict(representation="mel", n_mels=128, hop=160,
                                     griffin_lim_iters=100),
    "mel80_hop160_gl32": dict(representation="mel", hop=160, griffin_lim_iters=32),
    "mel128_hop320_gl100": dict(representation="mel", n_mels=128, griffin_lim_iters=100),
    "mel128_hop160_gl32": dict(representation="mel", n_mels=128, hop=160, griffin_lim_iters=32),
    "mel128_hop160_gl64": dict(representation="mel", n_mels=128, hop=160, griffin_lim_iters=64),
    "stft513_gl32": dict(representation="stft", griffin_lim_iters=32),
    "stft513_gl100": dict(representation="stft", griffin_lim_iters=100),
    "stft513_hop160_gl100": dict(representation="stft", hop=160, griffin_lim_iters=100),
}


def build_demo_data(out: Path) -> Path:
    from copdata.build import build_dataset
    from copdata.sources.base import BuildSettings
    from copdata.sources.synth import SynthSource

    if not (out / "clips.jsonl").is_file():
        build_dataset(SynthSource(num_items=6, item_seconds=20.0, seed=0), out,
                      BuildSettings(clip_seconds=5.0, seed=0), workers=2, progress=False)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None)
    p.add_argument("--split", default="test")
    p.add_argument("--variants", nargs="*", default=["default"] + list(VARIANTS))
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    import copdata
    from copdata.scoring import note_scores
    from copdata.transcription import get_transcriber
    from copmodel.audio import build_audio, round_trip
    from copmodel.presets import tiny

    data = Path(args.data) if args.data else build_demo_data(Path("/tmp/cop_ceiling_data"))
    clips = list(copdata.open_dataset(data).clips(args.split))[: args.limit]
    transcriber = get_transcriber()
    base = tiny().audio
    rows = {}

    def score(name, make_audio):
        t0 = time.time()
        f1 = [note_scores(c.notes(), transcriber.transcribe(make_audio(c), c.sample_rate))["f1"]
              for c in clips]
        rows[name] = {"midi_note_f1": float(np.mean(f1)), "clips": len(clips),
                      "seconds": round(time.time() - t0, 1)}
        print(f"{name:28s} note F1 {rows[name]['midi_note_f1']:.3f}  ({rows[name]['seconds']} s)",
              flush=True)

    score("ground_truth", lambda c: c.audio())
    for name in args.variants:
        cfg = base if name == "default" else replace(base, **VARIANTS[name])
        rep = build_audio(cfg)
        score(name if name != "default" else f"default ({cfg.representation})",
              lambda c, rep=rep: round_trip(c.audio(), c.sample_rate, rep, c.num_samples))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
