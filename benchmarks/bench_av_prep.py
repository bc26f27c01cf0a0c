"""Effect of av-benchmark's audio preparation on the metrics credited to it.

Scores baselines and two prepared output folders on a CoP dataset with
``fad_vggish``, ``fad_panns``, ``kl_panns`` and ``is_panns`` and prints one row per
output. The folders (written once under ``--work``): ``dc_long`` (the reference + 0.1
DC + a 0.5 s noise tail) and ``dc_short`` (the reference cut 1 s short + 0.1 DC).
VGGish and Cnn14 get seeded random weights in their published layouts (the real
files cannot be fetched everywhere); Cnn14's ``fc1`` and ``fc_audioset`` are scaled
x100 each so that clips differ. Run it with the code before and after a change
(``PYTHONPATH``) and compare the rows; the figures are in docs/copbench.md.

Usage::

    PYTHONPATH=. python benchmarks/bench_av_prep.py --data demo/data --work /tmp/avprep
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

METRICS = ["fad_vggish", "fad_panns", "kl_panns", "is_panns"]
BASELINES = ["oracle", "resynth", "noise", "shuffle", "silence"]


def random_weights(work: Path) -> tuple[Path, Path]:
    import torch
    from copbench.embedders.panns import build_cnn14
    from copbench.embedders.vggish import build_vggish
    work.mkdir(parents=True, exist_ok=True)
    panns = work / "Cnn14_16k_mAP=0.438.pth"
    if not panns.exists():
        torch.manual_seed(0)
        net = build_cnn14().eval()
        with torch.no_grad():
            net.fc1.weight *= 100.0
            net.fc_audioset.weight *= 100.0
        torch.save({"model": net.state_dict()}, panns)
    found = sorted(work.glob("vggish-*.pth"))
    if found:
        return panns, found[0]
    torch.manual_seed(1)
    raw = work / "vggish.tmp"
    torch.save(build_vggish().eval().state_dict(), raw)
    vggish = work / f"vggish-{hashlib.sha256(raw.read_bytes()).hexdigest()[:8]}.pth"
    raw.rename(vggish)
    return panns, vggish


def output_folders(data: Path, split: str, work: Path) -> list[Path]:
    import soundfile
    from copdata import open_dataset
    folders = [work / "dc_long", work / "dc_short"]
    if all(f.is_dir() for f in folders):
        return folders
    rng = np.random.default_rng(0)
    for f in folders:
        f.mkdir(parents=True, exist_ok=True)
    for clip in sorted(open_dataset(data).clips(split), key=lambda c: c.id):
        audio = clip.audio().astype(np.float32)
        tail = 0.1 * rng.standard_normal(clip.sample_rate // 2).astype(np.float32)
        soundfile.write(folders[0] / f"{clip.id}.wav", np.concatenate([audio, tail]) + 0.1,
                        clip.sample_rate, subtype="FLOAT")
        soundfile.write(folders[1] / f"{clip.id}.wav", audio[:clip.num_samples - clip.sample_rate]
                        + 0.1, clip.sample_rate, subtype="FLOAT")
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--split", default="all")
    parser.add_argument("--work", required=True, type=Path)
    args = parser.parse_args()
    from copbench.embedders.weights import set_override
    from copbench.run import run_benchmark
    panns, vggish = random_weights(args.work)
    set_override("panns", panns)
    set_override("vggish", vggish)
    rows = {}
    for model in [f"baseline:{b}" for b in BASELINES] + [
            str(f) for f in output_folders(args.data, args.split, args.work)]:
        res = run_benchmark(model, args.data, split=args.split, metrics=METRICS, progress=False,
                            command=["bench_av_prep"])
        rows[res["model"]] = {m: res["metrics"][m]["mean"] for m in METRICS}
        print(json.dumps({res["model"]: rows[res["model"]]}), flush=True)


if __name__ == "__main__":
    main()
