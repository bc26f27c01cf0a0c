"""The published PianoYT-2h test set: the first N consecutive 10 s clips of each
test video (N = ``max_segments`` in ``manifests/pianoyt2h.csv``), 76 clips.

Usage::

    # the 76 clip ids
    python manifests/pianoyt2h_test_segments.py
    # a manifest of the 3 test videos only (build the test set alone)
    python manifests/pianoyt2h_test_segments.py --write-manifest test_only.csv
    copdata build --source youtube --manifest test_only.csv --out cop_yt2h_test \\
        --clip-seconds 10
    # check a built dataset holds exactly the published test clips
    python manifests/pianoyt2h_test_segments.py --check cop_yt2h_test
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "pianoyt2h.csv"
CLIP_SECONDS = 10.0


def test_rows(manifest: Path = MANIFEST) -> list[dict]:
    lines = [ln for ln in manifest.read_text(encoding="utf-8").splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    return [r for r in csv.DictReader(lines) if r["split"] == "test"]


def test_clip_ids(manifest: Path = MANIFEST) -> list[str]:
    """``<youtube_id>.<segment:08d>`` for segments 0..N-1 of every test video."""
    return [f"{r['youtube_id']}.{k:08d}" for r in test_rows(manifest)
            for k in range(int(r["max_segments"]))]


def check(dataset_dir: str) -> list[str]:
    """Problems: missing or extra test clips, or a clip length other than 10 s."""
    from copdata import open_dataset

    ds = open_dataset(dataset_dir)
    want, have = set(test_clip_ids()), set(ds.ids("test"))
    problems = [f"missing {cid}" for cid in sorted(want - have)]
    problems += [f"extra test clip {cid}" for cid in sorted(have - want)]
    if ds.clip_seconds != CLIP_SECONDS:
        problems.append(f"clip length is {ds.clip_seconds:g} s, the published set uses 10 s")
    return problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--write-manifest", metavar="CSV", help="write a test-only manifest")
    p.add_argument("--check", metavar="DIR", help="check a built dataset against the 76 ids")
    args = p.parse_args(argv)
    if args.write_manifest:
        rows = test_rows()
        with open(args.write_manifest, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        print(f"wrote {args.write_manifest}: {len(rows)} test videos, "
              f"{len(test_clip_ids())} clips")
        return 0
    if args.check:
        problems = check(args.check)
        for line in problems:
            print(line)
        print(f"{len(problems)} problem(s)" if problems else
              f"ok: {args.check} holds the {len(test_clip_ids())} published test clips")
        return 1 if problems else 0
    print("\n".join(test_clip_ids()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
