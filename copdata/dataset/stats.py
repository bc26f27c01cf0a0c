"""``copdata stats``: hours, clips per split, note density, pitches, failures.

Computed from the clip rows as a DataFrame (:meth:`copdata.Dataset.to_pandas`:
per-view stats written at build time), the MIDI views (pitches) and
``report.json``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..notes import note_name
from .store import open_dataset


def _pitches(ds) -> list[int]:
    """Every note's pitch (from the MIDI views)."""
    pitches: list[int] = []
    for clip in ds.clips():
        pitches.extend(n.pitch for n in clip.notes())
    return pitches


def _qa_stats(df, report: list[dict]) -> dict:
    """Quantiles of the clips' QA signals (the ``qa.*`` columns of
    :meth:`Dataset.to_pandas`), claims made, clips rejected by QA."""
    out: dict = {"clips_with_qa": int(df["qa.piano_score"].notna().sum()) if "qa.piano_score" in df else 0,
                 "clips_rejected": sum(1 for r in report if r.get("status") == "rejected")}
    if not out["clips_with_qa"]:
        return out
    for name in ("piano_score", "keyboard_score", "av_offset_s", "silence_ratio", "loudness_lufs"):
        column = f"qa.{name}"
        vals = df[column].dropna().astype(float) if column in df else []
        if len(vals):
            q = np.percentile(vals, [5, 50, 95])
            out[name] = {"p5": round(float(q[0]), 3), "median": round(float(q[1]), 3),
                         "p95": round(float(q[2]), 3)}
    for claim, column in (("claims_solo_piano", "qa.claims.solo_piano"), ("claims_keyboard", "qa.claims.keyboard")):
        out[claim] = int((df[column] == True).sum()) if column in df else 0  # noqa: E712 (NaN-safe)
    return out


def dataset_stats(root: str | Path) -> dict:
    """The figures ``copdata stats`` prints, from :meth:`Dataset.to_pandas`
    (clip rows), the MIDI views (pitches) and ``report.json`` (failures)."""
    ds = open_dataset(root)
    df = ds.to_pandas()
    per_split = df.groupby("split").size().to_dict() if len(df) else {}
    nps = df["stats.notes_per_second"].astype(float) if len(df) else None
    pitches = _pitches(ds)
    hist = np.bincount(np.asarray(pitches, dtype=np.int64) - 21, minlength=88)[:88] if pitches else np.zeros(88, int)
    items = [r for r in ds.report if r.get("status") != "rejected"]  # rejected: QA'd clips
    failures = Counter(r.get("error_class", "?") for r in items if r.get("status") == "failed")
    q = np.percentile(pitches, [5, 50, 95]).astype(int).tolist() if pitches else []
    return {
        "dataset": str(ds.root),
        "source": ds.settings.get("source", {}).get("name"),
        "midi_origin": ds.settings.get("midi_origin"),
        "clips": len(ds),
        "hours": round(len(ds) * ds.clip_seconds / 3600, 4),
        "clips_per_split": {k: int(v) for k, v in sorted(per_split.items())},
        "hours_per_split": {k: round(v * ds.clip_seconds / 3600, 4) for k, v in sorted(per_split.items())},
        "notes": len(pitches),
        "notes_per_second": {"mean": round(float(nps.mean()), 3) if nps is not None else 0.0,
                             "min": round(float(nps.min()), 3) if nps is not None else 0.0,
                             "max": round(float(nps.max()), 3) if nps is not None else 0.0},
        "pitch": ({"lowest": note_name(min(pitches)), "highest": note_name(max(pitches)),
                   "p5_median_p95": [note_name(p) for p in q],
                   "octave_histogram": {f"octave {o}": int(hist[max(0, o * 12 - 9):o * 12 + 3].sum())
                                        for o in range(0, 9)}} if pitches else {}),
        "qa": _qa_stats(df, ds.report),
        "items": len(items),
        "items_failed": sum(failures.values()),
        "failures_by_class": dict(sorted(failures.items())),
    }


def format_stats(stats: dict) -> str:
    lines = [f"dataset   {stats['dataset']}  (source {stats['source']}, MIDI by {stats['midi_origin']})",
             f"clips     {stats['clips']}  = {stats['hours']:.3f} h",
             "per split " + ", ".join(f"{k}: {v} clips ({stats['hours_per_split'][k]:.3f} h)"
                                      for k, v in stats["clips_per_split"].items()),
             f"notes     {stats['notes']}; per second mean {stats['notes_per_second']['mean']}, "
             f"min {stats['notes_per_second']['min']}, max {stats['notes_per_second']['max']}"]
    if stats["pitch"]:
        p = stats["pitch"]
        lines.append(f"pitch     {p['lowest']}..{p['highest']}, 5%/50%/95%: {' / '.join(p['p5_median_p95'])}")
        total = max(sum(p["octave_histogram"].values()), 1)
        for name, count in p["octave_histogram"].items():
            lines.append(f"  {name:9s} {'#' * int(round(40 * count / total)):40s} {count}")
    qa = stats.get("qa") or {}
    if qa.get("clips_with_qa"):
        lines.append(f"qa        {qa['clips_with_qa']} clips with signals, {qa['clips_rejected']} rejected; "
                     f"steps claim solo piano in {qa['claims_solo_piano']}, a keyboard view in "
                     f"{qa['claims_keyboard']} (details: copdata qa DIR)")
        for name in ("piano_score", "keyboard_score", "av_offset_s", "silence_ratio", "loudness_lufs"):
            if name in qa:
                q = qa[name]
                lines.append(f"  {name:15s} 5% {q['p5']:8.3f}  median {q['median']:8.3f}  95% {q['p95']:8.3f}")
    lines.append(f"items     {stats['items']}, failed {stats['items_failed']}")
    for cls, n in stats["failures_by_class"].items():
        lines.append(f"  {cls}: {n}")
    return "\n".join(lines)


def plot_stats(root: str | Path, out: str | Path) -> Path:
    """One PNG: pitch histogram over the 88 keys, notes per second per clip,
    hours per split and failed items by error class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds = open_dataset(root)
    pitches = _pitches(ds)
    nps = ds.to_pandas()["stats.notes_per_second"].astype(float).tolist() if len(ds) else []
    stats = dataset_stats(root)
    fig, axes = plt.subplots(2, 2, figsize=(13, 7), constrained_layout=True)
    ax = axes[0, 0]
    counts = np.bincount(np.asarray(pitches, dtype=np.int64) - 21, minlength=88)[:88] if pitches else np.zeros(88)
    ax.bar(np.arange(21, 109), counts, width=1.0, color="#4c72b0")
    ticks = list(range(24, 109, 12))
    ax.set_xticks(ticks)
    ax.set_xticklabels([note_name(p) for p in ticks])
    ax.set_title(f"pitch histogram ({len(pitches)} notes)")
    ax = axes[0, 1]
    ax.hist(nps, bins=min(30, max(5, len(nps) // 2)), color="#55a868")
    ax.set_xlabel("notes per second")
    ax.set_ylabel("clips")
    ax.set_title(f"note density per clip ({len(nps)} clips)")
    ax = axes[1, 0]
    splits = stats["hours_per_split"]
    ax.bar(list(splits), list(splits.values()), color="#8172b2")
    for i, (name, hours) in enumerate(splits.items()):
        ax.text(i, hours, f"{stats['clips_per_split'][name]} clips", ha="center", va="bottom")
    ax.set_ylabel("hours")
    ax.set_title(f"{stats['hours']:.3f} h in {stats['clips']} clips")
    ax = axes[1, 1]
    failures = stats["failures_by_class"]
    if failures:
        ax.barh(list(failures), list(failures.values()), color="#c44e52")
        ax.set_xlabel("items")
    else:
        ax.text(0.5, 0.5, "no failed items", ha="center", va="center", fontsize=14)
        ax.set_xticks([])
        ax.set_yticks([])
    ax.set_title(f"failed items: {stats['items_failed']} of {stats['items']}")
    fig.suptitle(f"{ds.root.name}: source {stats['source']}, MIDI by {stats['midi_origin']}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
