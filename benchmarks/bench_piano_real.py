"""Benchmark: the piano filter (``piano_score``) on real recordings, piano and not.

    PYTHONPATH=. python benchmarks/bench_piano_real.py OUT \\
        --omaps /work/.mirror/itec-hust+transition-aware/repo \\
        --pianoyt /work/.mirror/acappemin+Video-to-Audio-and-Piano/repo \\
        --mirdata /work/.mirror/mir-dataset-loaders+mirdata/repo \\
        --librosa-data /work/.mirror/librosa+data/repo \\
        --harp /work/.mirror/floe-audio+Harp/repo

Every input is a fetched snapshot (a git directory, read with ``git show``;
nothing is committed). Sources and what is taken from each:

* github:itec-hust/transition-aware ``OMAPS/001..025.mp3``: a real upright /
  digital piano through a webcam microphone (positives; 026-050 are reserved
  and never read);
* github:acappemin/Video-to-Audio-and-Piano ``tests/piano_2h_cropped2_cuts/*.mp4``
  (two PianoYT-2h clips: positives) and ``tests/VGGSound/video/*.mp4``
  (ripping paper, a race car: negatives);
* github:librosa/data ``audio/``: Pistachio Ice Cream Ragtime by The Piano
  Lady (positive); Let's Go Fishin' (Karissa Hobbs: guitar, voice), Vibe Ace
  (Kevin MacLeod: vibraphone band), Hungarian Dance no. 5 (string orchestra),
  Sugar Plum Fairy (Kevin MacLeod: celesta and orchestra), a solo trumpet,
  Choice (drums and bass), a humpback whale, a robin, a howling dog and three
  LibriSpeech readers (negatives);
* github:mir-dataset-loaders/mirdata ``tests/resources/mir_datasets``: the
  test excerpts of real recordings: MAESTRO and the JTD piano stem (positives);
  GuitarSet (acoustic guitar, microphone), EGFxSet (clean electric guitar),
  IDMT-SMT audio effects (guitar), the JTD bass and drums stems, TinySOL
  (contrabass), Filosax backing (bass and drums), GTZAN country, RWC
  classical / jazz / genre, Beatles, ORCHSET, Medley-solos-DB (flute), IRMAS
  (clarinet), ballroom (waltz), Vocadito (voice), Four-way tabla, Mridangam
  and Indian art music excerpts (negatives);
* github:floe-audio/Harp ``library/Samples/Harp``: single notes of a real Celtic
  harp (Versilian Studios Etherealwinds Harp 2 CE, CC BY 4.0), sequenced here
  into seeded 10 s arpeggios and melodies (negatives: plucked strings).

Clips are windows of up to 10 s (at least 2 s) of each recording; the notes
are basic-pitch's transcription (as in a build). Files are split into a
development part (tune the threshold) and a held-out part (reported once) by
a hash of the file name. Prints per class the clips, median and max score;
ROC AUC; the lowest claim threshold above every development negative and its
share of piano clips kept, by the score alone and with the build's rule that
"solo piano" needs at least ``CLAIM_PIANO_PITCHES`` distinct pitches (then
what that threshold does on the held-out part); and writes ``OUT/scores.json``, ``OUT/roc.png`` and
the clips with their notes (``OUT/clips/*.npz``, for ``--rescore``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

from copdata.media.decode import read_audio
from copdata.notes import Note
from copdata.qa.audio import piano_evidence
from copdata.qa.stage import CLAIM_PIANO_PITCHES, CLAIM_PIANO_RECORDED, CLAIM_PIANO_TIMBRE
from copdata.qa.timbre import PianoTimbre
from copdata.transcription import get_transcriber

SR = 44100
CLIP_S = 10.0
MIN_S = 2.0

LIBROSA = {  # file stem fragment -> (class, is piano)
    "pistachio-ice-cream-ragtime": ("piano (ragtime)", True),
    "Lets_Go_Fishin": ("guitar + voice", False),
    "Vibe_Ace": ("vibraphone band", False),
    "Hungarian_Dance": ("string orchestra", False),
    "Sugar_Plum_Fairy": ("celesta + orchestra", False),
    "solo-trumpet": ("trumpet", False),
    "Choice_-_Drum-bass": ("drums + bass", False),
    "humpback": ("whale", False),
    "robin": ("bird", False),
    "pibble": ("dog", False),
    "198-209-0000": ("speech", False),
    "3436-172162-0000": ("speech", False),
    "5703-47212-0000": ("speech", False),
}
MIRDATA = {  # path fragment -> (class, is piano)
    "maestro/": ("piano (MAESTRO)", True),
    "_piano.wav": ("piano (jazz stem)", True),
    "guitarset/audio_mono-mic": ("acoustic guitar", False),
    "egfxset/Clean": ("electric guitar", False),
    "idmt_smt_audio_effects/Gitarre": ("electric guitar", False),
    "_bass.wav": ("double bass (jazz stem)", False),
    "_drums.wav": ("drums", False),
    "tinysol/audio/Strings/Contrabass": ("contrabass", False),
    "filosax/Backing/01/Bass_Drums": ("bass + drums", False),
    "gtzan_genre": ("country band", False),
    "rwc_classical": ("classical ensemble", False),
    "rwc_jazz": ("jazz band", False),
    "rwc_genre": ("popular music", False),
    "beatles/audio": ("pop band", False),
    "orchset/audio/mono": ("orchestra", False),
    "medley_solos_db": ("flute", False),
    "irmas/IRMAS-TrainingData/cla": ("clarinet", False),
    "ballroom": ("ballroom band", False),
    "vocadito": ("voice", False),
    "four_way_tabla": ("tabla", False),
    "mridangam": ("mridangam", False),
    "compmusic_carnatic_rhythm/CMR_full": ("carnatic ensemble", False),
    "hainsworth": ("mixed music", False),
}


def git_files(repo: str, prefix: str = "") -> list[str]:
    out = subprocess.run(["git", "--git-dir", repo, "ls-tree", "-r", "--name-only", "HEAD", "--", prefix]
                         if prefix else ["git", "--git-dir", repo, "ls-tree", "-r", "--name-only", "HEAD"],
                         check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line]


def git_bytes(repo: str, path: str) -> bytes:
    return subprocess.run(["git", "--git-dir", repo, "show", f"HEAD:{path}"], check=True,
                          capture_output=True).stdout


def decode(repo: str, path: str, tmp: Path) -> np.ndarray | None:
    data = git_bytes(repo, path)
    if len(data) < 1000:  # an LFS pointer or a stub
        return None
    local = tmp / (f"{zlib.crc32(path.encode()):08x}" + Path(path).suffix)
    local.write_bytes(data)
    try:
        audio, _ = read_audio(local, SR)
    except Exception as exc:  # noqa: BLE001 - a benchmark row, not a crash
        print(f"skipped {path}: {exc}", file=sys.stderr)
        return None
    return audio.astype(np.float32)


def windows(audio: np.ndarray, limit: int) -> list[np.ndarray]:
    n = int(CLIP_S * SR)
    out = [audio[k:k + n] for k in range(0, len(audio), n)][:limit]
    return [w for w in out if len(w) >= MIN_S * SR and np.abs(w).max() > 1e-4]


def harp_clips(repo: str, count: int, tmp: Path) -> list[np.ndarray]:
    """Seeded 10 s arpeggios and melodies of real harp notes."""
    files = [f for f in git_files(repo, "library/Samples/Harp") if f.endswith(".flac")]
    cache: dict[str, np.ndarray] = {}
    clips = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        out = np.zeros(int(CLIP_S * SR), np.float32)
        t = 0.0
        step = rng.uniform(0.15, 0.45)
        while t < CLIP_S - 0.2:
            path = files[int(rng.integers(len(files)))]
            if path not in cache:
                cache[path] = decode(repo, path, tmp)
            note = cache[path]
            if note is not None:
                i = int(t * SR)
                seg = note[: len(out) - i]
                out[i:i + len(seg)] += 0.5 * seg
            t += step * rng.choice([1.0, 1.0, 2.0, 0.5])
        clips.append(out / max(1.0, float(np.abs(out).max()) / 0.9))
    return clips


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).mean()
    ties = (pos[:, None] == neg[None, :]).mean()
    return float(greater + 0.5 * ties)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--omaps")
    p.add_argument("--pianoyt")
    p.add_argument("--mirdata")
    p.add_argument("--librosa-data")
    p.add_argument("--harp")
    p.add_argument("--harp-clips", type=int, default=12)
    p.add_argument("--omaps-windows", type=int, default=2, help="10 s windows per OMAPS file")
    p.add_argument("--rescore", action="store_true",
                   help="score the clips cached in OUT/clips by an earlier run again (no transcription)")
    args = p.parse_args(argv)
    out = Path(args.out)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    if args.rescore:
        rows = json.loads((out / "scores.json").read_text())
        for i, row in enumerate(rows):
            cached = np.load(out / "clips" / f"{i:04d}.npz")
            notes = [Note(float(a), float(b), int(p), int(v)) for a, b, p, v in cached["notes"]]
            ev = piano_evidence(cached["audio"], SR, notes)
            row.update({key: round(float(v), 4) for key, v in ev.items()})
            row["pitches"] = len({n.pitch for n in notes})
        score_timbre(rows, out)
        (out / "scores.json").write_text(json.dumps(rows, indent=1))
        report(rows, out)
        return 0
    transcriber = get_transcriber()
    rows = []

    def add(name: str, cls: str, piano: bool, clips: list[np.ndarray]) -> None:
        part = "held-out" if zlib.crc32(name.encode()) % 3 == 0 else "dev"
        for k, clip in enumerate(clips):
            notes = transcriber.transcribe(clip, SR)
            ev = piano_evidence(clip, SR, notes)
            np.savez_compressed(out / "clips" / f"{len(rows):04d}.npz", audio=clip.astype(np.float32),
                                notes=np.array([(n.start, n.end, n.pitch, n.velocity) for n in notes],
                                               dtype=np.float64).reshape(-1, 4))
            rows.append({"file": name, "window": k, "class": cls, "piano": piano, "part": part,
                         "seconds": round(len(clip) / SR, 2), "notes": len(notes),
                         "pitches": len({n.pitch for n in notes}),
                         **{key: round(float(v), 4) for key, v in ev.items()}})
            print(f"{part:>8} {cls:>26} {ev['piano_score']:.3f}  {name}#{k}", flush=True)

    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        if args.omaps:
            for i in range(1, 26):  # 026-050 are reserved for independent evaluation
                path = f"OMAPS/{i:03d}.mp3"
                audio = decode(args.omaps, path, tmp)
                if audio is not None:
                    add(path, "piano (OMAPS)", True, windows(audio, args.omaps_windows))
        if args.pianoyt:
            for path in git_files(args.pianoyt, "tests"):
                if path.endswith(".mp4") and ("piano_2h" in path or "VGGSound" in path):
                    audio = decode(args.pianoyt, path, tmp)
                    if audio is not None:
                        piano = "piano_2h" in path
                        add(path, "piano (PianoYT-2h)" if piano else "VGGSound", piano, windows(audio, 1))
        if args.librosa_data:
            for path in git_files(args.librosa_data, "audio"):
                if not path.endswith(".hq.ogg"):
                    continue
                for key, (cls, piano) in LIBROSA.items():
                    if key in path:
                        audio = decode(args.librosa_data, path, tmp)
                        if audio is not None:
                            add(path, cls, piano, windows(audio, 3))
        if args.mirdata:
            for path in git_files(args.mirdata, "tests/resources/mir_datasets"):
                if not path.lower().endswith((".wav", ".flac", ".mp3")):
                    continue
                for key, (cls, piano) in MIRDATA.items():
                    if key in path:
                        audio = decode(args.mirdata, path, tmp)
                        if audio is not None:
                            add(path, cls, piano, windows(audio, 2))
                        break
        if args.harp:
            for k, clip in enumerate(harp_clips(args.harp, args.harp_clips, tmp)):
                add(f"harp-sequence-{k}", "harp (real notes)", False, [clip])

    score_timbre(rows, out)
    (out / "scores.json").write_text(json.dumps(rows, indent=1))
    report(rows, out)
    return 0


def score_timbre(rows: list[dict], out: Path) -> None:
    """Add musicnn's tags (``piano_timbre``, ``timbre_piano``, ``timbre_harp``;
    :mod:`copdata.qa.timbre`) to every row, from its cached clip audio."""
    model = PianoTimbre()
    for i, row in enumerate(rows):
        audio = np.load(out / "clips" / f"{i:04d}.npz")["audio"]
        row.update(model.measure(audio, SR))


RULES = {  # name -> (row -> score for the ROC; the claim threshold applies to it)
    "piano_score alone (QA version 2)": lambda r, ps_gate: r["piano_score"],
    f"piano_score, >= {CLAIM_PIANO_PITCHES} pitches (QA version 3)":
        lambda r, ps_gate: r["piano_score"] if r.get("pitches", 0) >= CLAIM_PIANO_PITCHES else 0.0,
    "piano_timbre alone": lambda r, ps_gate: r["piano_timbre"],
    f"piano_timbre, piano_score >= gate, >= {CLAIM_PIANO_PITCHES} pitches (QA version 4)":
        lambda r, ps_gate: (r["piano_timbre"] if r["piano_score"] >= ps_gate
                            and r.get("pitches", 0) >= CLAIM_PIANO_PITCHES else -1.0),
}
BUILD_RULE = f"piano_timbre, piano_score >= gate, >= {CLAIM_PIANO_PITCHES} pitches (QA version 4)"


def _claim_report(rows: list[dict], rule: str, ps_gate: float = CLAIM_PIANO_RECORDED,
                  fixed: float | None = None) -> dict:
    """ROC AUC of ``rule`` on each part; the claim threshold chosen on the
    development part (the lowest 0.01 step above every other clip, or ``fixed``)
    and what it does on the held-out part."""
    score = RULES[rule]
    out = {"rule": rule, "piano_score_gate": ps_gate}
    for part in ("dev", "held-out"):
        sel = [r for r in rows if r["part"] == part]
        labels = np.array([int(r["piano"]) for r in sel])
        scores = np.array([score(r, ps_gate) for r in sel])
        if not len(sel) or labels.all() or not labels.any():
            continue
        if part == "dev":
            neg_max = float(scores[labels == 0].max())
            at = fixed if fixed is not None else float(np.ceil((neg_max + 1e-9) * 100) / 100)
            out.update(threshold=at, dev_highest_other=neg_max,
                       dev_highest_other_class=sel[int(np.flatnonzero(labels == 0)[
                           np.argmax(scores[labels == 0])])]["class"])
        at = out["threshold"]
        claimed = [f"{r['class']} {v:.3f}" for r, v in zip(sel, scores) if not r["piano"] and v >= at]
        out[part] = {"auc": roc_auc(labels, scores), "piano_kept": float(np.mean(scores[labels == 1] >= at)),
                     "others_claimed": claimed, "others": int((labels == 0).sum()),
                     "pianos": int(labels.sum())}
    d, h = out.get("dev"), out.get("held-out")
    if d:
        print(f"{rule}" + (f" [piano_score gate {ps_gate:g}]" if "gate" in rule else "")
              + f": dev ROC AUC {d['auc']:.3f}; threshold {out['threshold']:.2f} (highest other dev clip "
              f"{out['dev_highest_other']:.3f}, {out['dev_highest_other_class']}): keeps "
              f"{d['piano_kept']:.0%} of the dev piano clips")
    if h:
        print(f"  held-out: ROC AUC {h['auc']:.3f}; piano kept {h['piano_kept']:.0%}, other clips claimed "
              f"{len(h['others_claimed'])} of {h['others']}"
              + (f": {', '.join(h['others_claimed'])}" if h["others_claimed"] else ""))
    return out


def _class_table(rows: list[dict], key: str) -> None:
    for part in ("dev", "held-out"):
        sel = [r for r in rows if r["part"] == part]
        if not sel:
            continue
        labels = np.array([int(r["piano"]) for r in sel])
        scores = np.array([r[key] for r in sel])
        print(f"== {key}, {part}: {int(labels.sum())} piano clips, {int((1 - labels).sum())} other "
              f"clips, ROC AUC {roc_auc(labels, scores):.3f}")
        print(f"{'class':>28} {'clips':>5} {'median':>7} {'max':>6}")
        for cls in sorted({r["class"] for r in sel}):
            s = np.array([r[key] for r in sel if r["class"] == cls])
            print(f"{cls:>28} {len(s):>5} {np.median(s):>7.3f} {s.max():>6.3f}")


def report(rows: list[dict], out: Path) -> None:
    print()
    _class_table(rows, "piano_score")
    print()
    _class_table(rows, "piano_timbre")
    print()
    results = [_claim_report(rows, rule) for rule in list(RULES)[:3]]
    for gate in (0.0, 0.3, 0.5, CLAIM_PIANO_RECORDED):
        results.append(_claim_report(rows, BUILD_RULE, gate))
    build = _claim_report(rows, BUILD_RULE, CLAIM_PIANO_RECORDED, fixed=CLAIM_PIANO_TIMBRE)
    print(f"  (the build's constants: piano_score >= {CLAIM_PIANO_RECORDED:g}, "
          f"piano_timbre >= {CLAIM_PIANO_TIMBRE:g})")
    (out / "rules.json").write_text(json.dumps(results + [build], indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 4.5), sharey=True)
        for ax, rule in zip(axes, (list(RULES)[1], BUILD_RULE)):
            for part, style in (("dev", "-"), ("held-out", "--")):
                sel = [r for r in rows if r["part"] == part]
                labels = np.array([int(r["piano"]) for r in sel])
                scores = np.array([RULES[rule](r, CLAIM_PIANO_RECORDED) for r in sel])
                if not len(sel) or labels.all() or not labels.any():
                    continue
                thr = np.unique(np.concatenate([scores, [np.inf]]))[::-1]
                tpr = [float(np.mean(scores[labels == 1] >= t)) for t in thr]
                fpr = [float(np.mean(scores[labels == 0] >= t)) for t in thr]
                ax.plot(fpr, tpr, style, label=f"{part} (AUC {roc_auc(labels, scores):.3f})")
            ax.set_xlabel("other clips claimed (FPR)")
            ax.set_title(rule.replace(" (QA", "\n(QA").replace("gate", f"{CLAIM_PIANO_RECORDED:g}"),
                         fontsize=8)
            ax.legend(loc="lower right")
        axes[0].set_ylabel("piano clips claimed (TPR)")
        fig.suptitle("Piano filter on real recordings (benchmarks/bench_piano_real.py)", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "roc.png", dpi=110)
        print(f"wrote {out / 'roc.png'}")
    except ImportError:
        pass


if __name__ == "__main__":
    sys.exit(main())
