"""``copbench run``: score one model on one dataset split.

Pipeline: model -> output audio per clip id -> strict pairing -> mono at the
dataset rate the way the references were made (a folder's files: decoded,
downmixed and resampled in one step by libswresample, as ``copdata`` built
the reference audio; a checkpoint's output is already mono at that rate; a
rate still different is resampled with librosa ``soxr_hq``) -> length rule
(trim or zero-pad the end to the reference length) -> every metric -> results
JSON with a 95% bootstrap CI on every mean and full provenance.

Failures of the model: a clip whose output is broken (NaN/inf samples, an
empty or unreadable file) is *failed*; a clip of the split without an output is
*missing*. Neither is ever scored or substituted. By default a run with any
failed or missing clip raises :class:`~copbench.errors.IncompleteOutputsError`
(the CLI exits 1) and writes no results. With ``allow_failures=True``
(``--allow-failures``) the other clips are scored and the results say
``"complete": false`` with ``n_failed``/``n_missing``; the leaderboard shows the
counts in the row and never marks an incomplete model best.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import librosa
import numpy as np
from tqdm import tqdm

from copdata import open_dataset
from copdata.errors import CopDataError

from . import __version__
from .metrics import DEFAULT_METRICS, ScoreItem, build_metrics, fit_length
from .errors import IncompleteOutputsError, MetricError
from .metrics import ALL_METRICS
from .models import TRACKS, resolve_model
from .frame import UNSPECIFIED_TRACK
from .pairing import pair_ids
from .results import (SCHEMA_VERSION, check_results_name, now_iso, package_versions,
                      results_path, write_results)
from .stats import summarize

log = logging.getLogger(__name__)
RESAMPLER = ("folders: libswresample (copdata.media.decode.read_audio) to the dataset rate and mono, "
             "as the references; embedders: librosa soxr_hq on both sides")
LENGTH_RULE = "trim or zero-pad the end of the output to the reference length"


def _prepare_audio(audio: np.ndarray, sr: int, clip, counts: dict) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if not np.all(np.isfinite(audio)):
        raise CopDataError("output audio holds NaN or inf samples", item=clip.id)
    if int(sr) != int(clip.sample_rate):
        audio = librosa.resample(audio, orig_sr=int(sr), target_sr=int(clip.sample_rate),
                                 res_type="soxr_hq").astype(np.float32)
        counts["resampled"] += 1
    if audio.shape[0] != clip.num_samples:
        counts["length_fixed"] += 1
    return fit_length(audio, clip.num_samples)


def run_benchmark(model: str, data: str | Path, split: str = "test", metrics=DEFAULT_METRICS,
                  out: str | Path | None = None, seed: int = 0, per_clip_fad: bool = False,
                  progress: bool = True, command: list[str] | None = None,
                  allow_failures: bool = False, name: str | None = None,
                  track: str | None = None, device: str = "cpu",
                  clap_text: str = "caption", transcriber: dict | None = None) -> dict:
    """Score ``model`` on ``data``/``split`` with ``metrics``; writes
    ``out/<model name>.json`` when ``out`` is given and returns the results.

    ``name`` overrides the results name (default: the baseline's name, the
    output folder's name, or the checkpoint's run and stage). A failed or
    missing clip raises :class:`IncompleteOutputsError` unless
    ``allow_failures`` (see the module docstring). ``track`` (``v2a`` | ``tv2a``)
    is what the model was given: passed to a checkpoint's sampler (default
    ``tv2a``), declared by the user for a folder or baseline (default
    ``"unspecified"``); written as the results' top-level ``track``.
    ``device``: where a checkpoint generates. ``clap_text``: see
    :mod:`copbench.metrics.clap_score`.
    ``transcriber`` picks the MIDI metric's transcriber: ``{"name": ..., "device": ...,
    "note_post": [...]}`` (default: basic-pitch, no post-processing; recorded in the results).
    """
    metrics = list(dict.fromkeys(metrics))
    if not metrics:
        raise MetricError(f"no metric given; choose from {', '.join(ALL_METRICS)}",
                          item="--metrics")
    ds = open_dataset(data)
    clips = sorted(ds.clips(split), key=lambda c: c.id)
    if not clips:
        present = sorted({str(row.split) for row in ds.rows})
        raise CopDataError(f"the dataset has no clips in split {split!r}; splits present: "
                           f"{', '.join(present)}, or all", item=str(data))
    if track not in (None,) + TRACKS:
        raise MetricError(f"unknown track; choose one of {', '.join(TRACKS)}", item=str(track))
    source = resolve_model(model, seed, track=track, device=device)
    track = getattr(source, "track", None) or track or UNSPECIFIED_TRACK
    if name is not None:
        source.name = check_results_name(name)
    if out is not None:  # refuse a bad --out before the scoring, not after
        results_path({"model": source.name, "provenance": {"model": source.info()}}, out)
    source.prepare(clips)
    pairing = pair_ids([c.id for c in clips], source.available_ids())
    by_id = {c.id: c for c in clips}
    scorers = build_metrics(metrics, per_clip_fad=per_clip_fad, clap_text=clap_text,
                            transcriber=transcriber)
    for metric in scorers:
        metric.bind_split(clips)  # FAD: reference statistics from every clip of the split
    per_clip: dict[str, dict] = {}
    errors: dict[str, str] = {}
    counts = {"resampled": 0, "length_fixed": 0}
    for clip_id in tqdm(pairing.paired, desc=f"copbench {source.name}", unit="clip",
                        disable=not progress):
        clip = by_id[clip_id]
        try:
            audio, sr = source.audio(clip)
            item = ScoreItem(clip, _prepare_audio(audio, sr, clip, counts))
            values: dict[str, float] = {}
            for metric in scorers:
                values.update(metric.score(item))
        except CopDataError as exc:
            errors[clip_id] = f"{exc.error_class}: {exc}"
            log.error("clip %s failed: %s", clip_id, exc)
            continue
        per_clip[clip_id] = values
    if (errors or pairing.missing) and not allow_failures:
        raise IncompleteOutputsError(
            f"{len(errors)} of {len(clips)} clips have broken outputs "
            f"({', '.join(sorted(errors)[:3])}{' ...' if len(errors) > 3 else ''}) and "
            f"{len(pairing.missing)} have none "
            f"({', '.join(pairing.missing[:3])}{' ...' if len(pairing.missing) > 3 else ''}); "
            "fix or generate them, or pass --allow-failures to score the rest (the result is "
            "marked incomplete and never ranked best); no results were written",
            item=source.name)
    summary: dict[str, dict] = {}
    for metric in scorers:
        conventions = metric.convention_counts()
        for column, entry in metric.finalize(seed).items():
            for cid, v in entry.pop("per_clip", {}).items():
                per_clip.setdefault(cid, {})[entry.get("per_clip_column", column)] = v
            entry.pop("per_clip_column", None)
            summary[column] = {**entry, "higher_is_better": metric.columns.get(column, False)}
        for column, higher in metric.columns.items():
            if column in summary:
                continue
            values = [per_clip[c][column] for c in sorted(per_clip) if column in per_clip[c]]
            if values:
                summary[column] = {**summarize(values, seed, column), "higher_is_better": higher}
        for column in metric.columns:
            if column in summary and conventions:
                summary[column]["conventions"] = conventions
    metric_prov = {m.NAME: m.provenance() for m in scorers}
    weights = {}
    for prov in metric_prov.values():
        for emb in _embedders_in(prov):
            if emb.get("weights"):
                weights[emb["name"]] = emb["weights"]["sha256"]
    results = {
        "schema": SCHEMA_VERSION,
        "model": source.name,
        "track": track,
        "metrics": summary,
        "per_clip": per_clip,
        "pairing": pairing.to_json(),
        "errors": errors,
        "complete": not errors and not pairing.missing,
        "n_expected": len(clips),
        "n_failed": len(errors),
        "n_missing": len(pairing.missing),
        "provenance": {
            "dataset": {"root": str(Path(data).resolve()), "fingerprint": ds.fingerprint(),
                        "split": split, "num_clips": len(clips), "fps": ds.fps,
                        "sample_rate": ds.sample_rate, "clip_seconds": ds.clip_seconds,
                        "source": ds.settings.get("source")},
            "model": source.info(),
            "metrics": metric_prov,
            "embedder_weights": weights,
            "resampler": RESAMPLER,
            "length_rule": LENGTH_RULE,
            "audio_fixes": counts,
            "bootstrap": {"resamples": 1000, "level": 0.95, "method": "percentile"},
            "packages": package_versions(),
            "copbench_version": __version__,
            "seed": int(seed),
            "command": list(command) if command is not None else list(sys.argv),
        },
        "created": now_iso(),
    }
    if out is not None:
        results["path"] = str(write_results(results, out))
    return results


def _embedders_in(prov: dict):
    settings = prov.get("settings", {})
    for key in ("embedder", "audio_embedder", "image_embedder"):
        if isinstance(settings.get(key), dict):
            yield settings[key]
