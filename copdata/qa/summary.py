"""``copdata qa DIR``: the quality signals of a built dataset, clip by clip.

Reads the kept clips' ``qa`` objects through :meth:`copdata.Dataset.to_pandas`,
``report.json`` (clips rejected by the ``--qa-*`` thresholds) and the
thresholds in ``dataset.json``'s ``qa`` block. :func:`qa_summary` returns the
table and the counts; :func:`format_qa` prints them; :func:`plot_qa` draws the
signals' histograms with the thresholds.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..dataset.store import open_dataset
from .stage import MIN_OFFSET_CONFIDENCE, claim_thresholds

SIGNALS = ("piano_score", "piano_timbre", "keyboard_score", "av_offset_s", "av_offset_confidence",
           "av_offset_applied_s", "silence_ratio", "loudness_lufs")


def _quantiles(values: list) -> dict:
    vals = [v for v in values if isinstance(v, (int, float))]
    if not vals:
        return {}
    q = np.percentile(vals, [5, 50, 95])
    return {"mean": round(float(np.mean(vals)), 4), "p5": round(float(q[0]), 4),
            "median": round(float(q[1]), 4), "p95": round(float(q[2]), 4)}


def _kept_clips(ds) -> list[dict]:
    """The kept clips' signals, from :meth:`copdata.Dataset.to_pandas`
    (columns ``qa.<signal>``; a clip without a qa object has none)."""
    df = ds.to_pandas()

    def value(record: dict, key: str):
        v = record.get(f"qa.{key}")
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v

    out = []
    for record in df.to_dict("records"):
        claims = None
        if value(record, "claims.keyboard") is not None:
            claims = {name: bool(value(record, f"claims.{name}")) for name in ("keyboard", "solo_piano")}
        out.append({"id": record["id"], "split": record.get("split"), "status": "kept",
                    **{k: value(record, k) for k in SIGNALS}, "claims": claims, "reasons": []})
    return out


def qa_summary(root: str | Path) -> dict:
    """Per-clip signals (kept and rejected), per-signal quantiles, and how many
    clips fall below each threshold (claim thresholds for kept clips)."""
    ds = open_dataset(root)
    settings = ds.settings.get("qa") or {}
    build = ds.settings.get("build") or {}
    claim_piano, claim_keyboard = claim_thresholds(build.get("qa_min_piano"),
                                                   build.get("qa_min_keyboard"),
                                                   ds.settings.get("midi_origin") == "transcription")
    claim_piano = settings.get("claim_piano", claim_piano)  # what the build used
    claim_keyboard = settings.get("claim_keyboard", claim_keyboard)
    clips = _kept_clips(ds)
    for r in ds.report:
        if r.get("status") == "rejected":
            qa = r.get("qa") or {}
            clips.append({"id": r["clip_id"], "split": None, "status": "rejected",
                          **{k: qa.get(k) for k in SIGNALS}, "claims": qa.get("claims"),
                          "reasons": r.get("message", "").split("; ")})
    clips.sort(key=lambda c: c["id"])

    def count(pred) -> int:
        return sum(1 for c in clips if pred(c))

    max_offset = settings.get("max_offset_s")

    def residual(c) -> float:  # offset left after --qa-correct-offset
        return abs((c["av_offset_s"] or 0.0) - (c["av_offset_applied_s"] or 0.0))

    below = {
        "piano_score < %g" % claim_piano: count(lambda c: (c["piano_score"] or 0) < claim_piano),
        "keyboard_score < %g" % claim_keyboard: count(lambda c: (c["keyboard_score"] or 0) < claim_keyboard),
        "|av_offset_s| > 1 frame (confident)": count(
            lambda c: (c["av_offset_confidence"] or 0) >= MIN_OFFSET_CONFIDENCE
            and abs(c["av_offset_s"] or 0) > 1.0 / ds.fps),
        "  of them not corrected": count(
            lambda c: (c["av_offset_confidence"] or 0) >= MIN_OFFSET_CONFIDENCE
            and residual(c) > 1.0 / ds.fps),
    }
    claim_timbre = settings.get("claim_piano_timbre")
    if claim_timbre is not None:  # recorded sources: not measured (None) counts as below
        below["piano_timbre < %g (or not measured)" % claim_timbre] = count(
            lambda c: not isinstance(c["piano_timbre"], (int, float)) or c["piano_timbre"] < claim_timbre)
    if max_offset is not None:
        below[f"|offset after correction| > {max_offset:g}"] = count(
            lambda c: (c["av_offset_confidence"] or 0) >= MIN_OFFSET_CONFIDENCE
            and residual(c) > max_offset)
    return {
        "dataset": str(ds.root),
        "thresholds": {"min_piano": settings.get("min_piano"), "min_keyboard": settings.get("min_keyboard"),
                       "max_offset_s": max_offset, "correct_offset": settings.get("correct_offset"),
                       "claim_piano": claim_piano, "claim_keyboard": claim_keyboard,
                       "claim_piano_timbre": claim_timbre},
        "clips": len(clips),
        "kept": count(lambda c: c["status"] == "kept"),
        "rejected": count(lambda c: c["status"] == "rejected"),
        "without_qa": count(lambda c: c["keyboard_score"] is None),
        "below": below,
        "signals": {k: _quantiles([c[k] for c in clips]) for k in SIGNALS},
        "table": clips,
    }


def _cell(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_qa(summary: dict, table: bool = True) -> str:
    t = summary["thresholds"]
    lines = [f"dataset  {summary['dataset']}",
             f"clips    {summary['clips']}: {summary['kept']} kept, {summary['rejected']} rejected"
             + (f", {summary['without_qa']} without QA signals" if summary["without_qa"] else ""),
             f"build thresholds: min_piano={t['min_piano']} min_keyboard={t['min_keyboard']} "
             f"max_offset_s={t['max_offset_s']} correct_offset={t['correct_offset']}; "
             f"steps claim solo piano at >= {t['claim_piano']:g}"
             + (f" with piano_timbre >= {t['claim_piano_timbre']:g}"
                if t.get("claim_piano_timbre") is not None else "")
             + f", a keyboard at >= {t['claim_keyboard']:g}"]
    if table:
        lines.append("")
        lines.append(f"{'clip':34s} {'status':8s} {'piano':>6s} {'timbre':>6s} {'keys':>6s} {'offset':>7s} "
                     f"{'conf':>5s} {'silent':>6s} {'LUFS':>6s}  reason")
        for c in summary["table"]:
            lines.append(f"{c['id'][:34]:34s} {c['status']:8s} {_cell(c['piano_score'], '6.3f')} "
                         f"{_cell(c['piano_timbre'], '6.3f')} {_cell(c['keyboard_score'], '6.3f')} {_cell(c['av_offset_s'], '+7.3f')} "
                         f"{_cell(c['av_offset_confidence'], '5.2f')} {_cell(c['silence_ratio'], '6.2f')} "
                         f"{_cell(c['loudness_lufs'], '6.1f')}  {'; '.join(c['reasons'])}")
        lines.append("")
    lines.append("clips below each threshold:")
    for name, n in summary["below"].items():
        lines.append(f"  {name:40s} {n}")
    lines.append("signals (mean, 5% / median / 95%):")
    for name, q in summary["signals"].items():
        if q:
            lines.append(f"  {name:22s} {q['mean']:8.3f}  {q['p5']:8.3f} / {q['median']:8.3f} / {q['p95']:8.3f}")
    return "\n".join(lines)


def plot_qa(summary: dict, out: str | Path) -> Path:
    """One PNG: histograms of piano_score, keyboard_score, av_offset_s and
    loudness over the clips (kept and rejected stacked), thresholds marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = summary["thresholds"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 7), constrained_layout=True)
    panels = [("piano_score", t["claim_piano"], (0, 1)), ("keyboard_score", t["claim_keyboard"], (0, 1)),
              ("av_offset_s", t["max_offset_s"], None), ("loudness_lufs", None, None)]
    for ax, (name, line, limits) in zip(axes.ravel(), panels):
        groups = [[c[name] for c in summary["table"] if c["status"] == s and c[name] is not None]
                  for s in ("kept", "rejected")]
        if any(groups):
            ax.hist(groups, bins=20, range=limits, stacked=True, color=["#4c72b0", "#c44e52"],
                    label=["kept", "rejected"])
            ax.legend()
        if line is not None:
            ax.axvline(line, color="k", ls="--")
            if name == "av_offset_s":
                ax.axvline(-line, color="k", ls="--")
        ax.set_title(name)
        ax.set_ylabel("clips")
    fig.suptitle(f"QA of {Path(summary['dataset']).name}: {summary['kept']} kept, "
                 f"{summary['rejected']} rejected")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
