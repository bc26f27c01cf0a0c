"""Results as pandas DataFrames, for notebooks and for the leaderboard renderers.

``load_results(RESULTS_DIR)``: one row per model and metric, columns

- ``model``, ``metric``, ``group`` (``listening``, ``quality``, ``alignment``,
  ``midi``, ``other``; see :func:`metric_group`), ``higher_is_better``;
- ``mean``, ``ci_low``, ``ci_high``, ``n``;
- ``flags``: a tuple of flag names the metric entry carries (``flags`` as a
  list, or the true keys of a dict), empty when none;
- ``conventions``: a dict ``{convention: count}`` of values that are
  conventions rather than measurements (any dict-valued entry key whose name
  contains ``convention``), and ``n_conventions``, their total;
- ``extra``: every other key of the metric entry (e.g. ``n_raters`` of a MOS);
- per model: ``n_paired``, ``n_failed`` (clips whose output failed),
  ``n_missing`` (clips without an output), ``n_extra``, ``complete`` (no failed
  or missing clip), ``provenance`` (one line), ``path`` (the results file).

``load_per_clip(RESULTS_DIR)``: one row per model, clip and metric with
``value`` (set-level metrics such as FAD have no per-clip rows unless they
were run with ``--per-clip-fad``).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .errors import BenchError
from .results import provenance_line, read_results

GROUPS = ("listening", "quality", "alignment", "midi", "other")
CORE_KEYS = {"mean", "ci95", "n", "higher_is_better", "flags", "per_clip"}
RESULT_COLUMNS = ["model", "metric", "group", "higher_is_better", "mean", "ci_low", "ci_high",
                  "n", "flags", "conventions", "n_conventions", "extra", "n_paired", "n_failed",
                  "n_missing", "n_extra", "complete", "provenance", "path", "track"]
UNSPECIFIED_TRACK = "unspecified"
# The paper's table (arXiv 2503.22200): FAD, CLIP, AV-Align, SI-SDR, MIDI P/R/F1, MOS, and FAD-inf.
PAPER_COLUMNS = ("si_sdr", "clip_score", "av_align", "midi_note_precision", "midi_note_recall",
                 "midi_note_f1")


def is_paper_column(metric: str) -> bool:
    """A column of the paper's table (the leaderboard's default): ``fad_<e>``,
    ``fad_<e>_inf``, CLIP score, AV-Align, SI-SDR, MIDI note P/R/F1 and ``mos_*``."""
    if metric.startswith("fad_"):
        return not metric.endswith("_clip_fd")
    return metric in PAPER_COLUMNS or metric.startswith("mos_")


def is_distance(metric: str) -> bool:
    """Columns that are distances or divergences (never shown below 0)."""
    return metric.startswith(("fad_", "fd_", "kl_"))


def metric_group(metric: str) -> str:
    """Which table a metric belongs to: human ratings, audio quality, audio-video
    alignment, MIDI transcription scores, or other."""
    if metric.startswith("mos_"):
        return "listening"
    if metric.startswith("midi_"):
        return "midi"
    if metric.startswith(("av_align", "clip_score", "imagebind", "ib_", "desync", "sync")):
        return "alignment"
    if metric.startswith(("fad_", "fd_", "si_sdr", "clap", "is_", "kl_", "mel_", "snr")):
        return "quality"
    return "other"


def _flags(value) -> tuple[str, ...]:
    if not value:
        return ()
    if isinstance(value, dict):
        return tuple(sorted(str(k) for k, v in value.items() if v))
    if isinstance(value, (list, tuple, set)):
        return tuple(sorted(str(v) for v in value))
    return (str(value),)


def _conventions(entry: dict) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in entry.items():
        if "convention" in key and isinstance(value, dict):
            for name, count in value.items():
                if isinstance(count, (int, float)) and not isinstance(count, bool):
                    out[str(name)] = out.get(str(name), 0) + int(count)
    return out


def failures(results: dict) -> tuple[int, int]:
    """(failed, missing) clips of a results file (``n_failed``/``n_missing``, or
    for older files the ``errors`` and ``pairing.missing`` lists)."""
    pairing = results.get("pairing") or {}
    return (int(results.get("n_failed", len(results.get("errors") or {}))),
            int(results.get("n_missing", len(pairing.get("missing") or []))))


def read_results_dir(results_dir: str | Path) -> list[dict]:
    """Every results file of a folder (sorted by model); :class:`BenchError` if none."""
    files = sorted(Path(results_dir).glob("*.json"))
    if not files:
        raise BenchError("no results files (*.json) found; run `copbench run` first",
                         item=str(results_dir))
    rows = []
    for path in files:
        results = read_results(path)
        results.setdefault("path", str(path))
        rows.append(results)
    return sorted(rows, key=lambda r: r["model"])


def results_frame(results: list[dict]) -> pd.DataFrame:
    """The ``load_results`` frame of already-read results dicts."""
    rows = []
    for res in results:
        pairing = res.get("pairing", {}) or {}
        failed, missing = failures(res)
        model_cols = {"n_paired": int(pairing.get("paired", 0) or 0), "n_failed": failed,
                      "n_missing": missing, "n_extra": len(pairing.get("extra", []) or []),
                      "complete": res.get("complete", True) is not False and (failed, missing) == (0, 0),
                      "provenance": provenance_line(res), "path": res.get("path"),
                      "track": str(res.get("track") or UNSPECIFIED_TRACK)}
        for metric, entry in sorted(res["metrics"].items()):
            ci = entry.get("ci95") or [None, None]
            conventions = _conventions(entry)
            extra = {k: v for k, v in entry.items()
                     if k not in CORE_KEYS and not ("convention" in k and isinstance(v, dict))}
            rows.append({"model": res["model"], "metric": metric, "group": metric_group(metric),
                         "higher_is_better": bool(entry.get("higher_is_better", True)),
                         "mean": entry.get("mean"), "ci_low": ci[0], "ci_high": ci[1],
                         "n": entry.get("n"), "flags": _flags(entry.get("flags")),
                         "conventions": conventions, "n_conventions": sum(conventions.values()),
                         "extra": extra, **model_cols})
    frame = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    for col in ("mean", "ci_low", "ci_high"):
        frame[col] = frame[col].astype("float64")
    return frame


def load_results(results_dir: str | Path) -> pd.DataFrame:
    """One row per model and metric of every results file in ``results_dir``."""
    return results_frame(read_results_dir(results_dir))


def per_clip_frame(results: list[dict]) -> pd.DataFrame:
    rows = [{"model": res["model"], "clip": clip, "metric": metric, "group": metric_group(metric),
             "value": float(value)}
            for res in results for clip, values in sorted(res.get("per_clip", {}).items())
            for metric, value in sorted(values.items()) if isinstance(value, (int, float))]
    return pd.DataFrame(rows, columns=["model", "clip", "metric", "group", "value"])


def load_per_clip(results_dir: str | Path) -> pd.DataFrame:
    """One row per model, clip and metric (per-clip values of every results file)."""
    return per_clip_frame(read_results_dir(results_dir))


def rankable(row) -> bool:
    """May this entry be marked best? Not when flagged (rank-deficient, too few
    clips, ...), when any value was set by a convention (empty-set rules) rather
    than measured, or when a distance came out below zero."""
    if row.flags or row.n_conventions:
        return False
    return not (is_distance(row.metric) and row.mean < 0)


def best_models(frame: pd.DataFrame) -> dict[str, set[str]]:
    """Metric -> complete models holding the best mean by the metric's direction
    (ties all), among :func:`rankable` entries; a model with failed or missing
    clips is never best. Tracks are never ranked against each other: pass one
    track's rows (:func:`tracks`); a frame holding several raises."""
    if frame["track"].nunique() > 1:
        raise ValueError("best_models ranks within one track; split the frame by track first")
    out = {}
    complete = frame[frame["complete"].astype(bool)].dropna(subset=["mean"])
    complete = complete.loc[pd.Series([rankable(r) for r in complete.itertuples(index=False)],
                                      index=complete.index, dtype=bool)]
    for metric, rows in complete.groupby("metric", sort=True):
        higher = bool(rows["higher_is_better"].iloc[0])
        target = rows["mean"].max() if higher else rows["mean"].min()
        out[metric] = set(rows.loc[rows["mean"] == target, "model"])
    return out


def tracks(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """``(track, rows)`` per track in the frame (v2a, tv2a, then others by name)."""
    order = {"v2a": 0, "tv2a": 1}
    names = sorted(frame["track"].unique(), key=lambda t: (order.get(t, 2), t))
    return [(t, frame[frame["track"] == t]) for t in names]
