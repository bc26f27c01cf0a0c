"""Metric registry.

Names accepted by ``--metrics``: ``si_sdr``, ``midi``, ``av_align``,
``fad_<embedder>`` (``mel``, ``basicpitch``, ``vggish``, ``vggish_relu``, ``panns``,
``panns_windowed``, ``clap``), ``is_panns``, ``kl_panns``, ``clap_score``, ``clip_score``. The default set needs no download.
"""

from __future__ import annotations

from ..errors import MetricError
from .base import AV_BENCHMARK_EMBEDDERS, Metric, ScoreItem, fit_length
from .fad_inf import frechet_distance_inf
from .frechet import frechet_distance, frechet_from_stats

DEFAULT_METRICS = ("si_sdr", "midi", "av_align", "fad_mel", "fad_basicpitch")
ALL_METRICS = DEFAULT_METRICS + ("fad_vggish", "fad_vggish_relu", "fad_panns", "fad_panns_windowed",
                                  "fad_clap", "is_panns", "kl_panns", "clap_score", "clip_score")

# Metrics credited to av-benchmark: their audio is prepared as av-benchmark prepares it
# (DC removed, cut at the clip length, never padded; see copbench.metrics.base).
AV_BENCHMARK_METRICS = tuple(f"fad_{e}" for e in AV_BENCHMARK_EMBEDDERS) + (
    "is_panns", "kl_panns", "clap_score")


def build_metric(name: str, per_clip_fad: bool = False, clap_text: str = "caption",
                 transcriber: dict | None = None) -> Metric:
    if name == "si_sdr":
        from .si_sdr import SiSdr
        return SiSdr()
    if name == "midi":
        from .midi import MidiMetric
        return MidiMetric(**(transcriber or {}))
    if name == "av_align":
        from .av_align import AvAlign
        return AvAlign()
    if name.startswith("fad_"):
        from .fad import FadMetric
        return FadMetric(name[4:], per_clip=per_clip_fad)
    if name == "is_panns":
        from .panns_scores import InceptionScorePanns
        return InceptionScorePanns()
    if name == "kl_panns":
        from .panns_scores import KlPanns
        return KlPanns()
    if name == "clap_score":
        from .clap_score import ClapScore
        return ClapScore(text=clap_text)
    if name == "clip_score":
        from .clip_score import ClipScore
        return ClipScore()
    raise MetricError(f"unknown metric; choose from {', '.join(ALL_METRICS)}", item=name)


def build_metrics(names, per_clip_fad: bool = False, clap_text: str = "caption",
                  transcriber: dict | None = None) -> list[Metric]:
    """Metrics by name; ``transcriber`` (``name``, ``device``, ``note_post``) is the
    MIDI metric's transcriber (default basic-pitch)."""
    return [build_metric(n, per_clip_fad, clap_text, transcriber) for n in names]


__all__ = ["Metric", "ScoreItem", "fit_length", "frechet_distance", "frechet_distance_inf",
           "frechet_from_stats",
           "build_metric", "build_metrics", "DEFAULT_METRICS", "ALL_METRICS", "AV_BENCHMARK_METRICS"]
