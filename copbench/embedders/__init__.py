"""Audio embedders for FAD and the CLAP/CLIP scores, behind one base class.

``mel`` and ``basicpitch`` need no download; ``vggish``, ``panns`` (Cnn14,
16 kHz), ``clap`` (LAION CLAP through transformers) and ``wav2clip`` load
pretrained weights from local files (see :mod:`copbench.embedders.weights`).
"""

from __future__ import annotations

from ..errors import MetricError
from .base import Embedder

WEIGHTLESS = ("mel", "basicpitch")
PRETRAINED = ("vggish", "panns", "clap", "wav2clip")


def build_embedder(name: str, **kwargs) -> Embedder:
    """An (unloaded) embedder by name; call ``.load()`` before ``.embed()``."""
    if name == "mel":
        from .mel import MelEmbedder
        return MelEmbedder(**kwargs)
    if name == "basicpitch":
        from .basicpitch import BasicPitchEmbedder
        return BasicPitchEmbedder(**kwargs)
    if name == "vggish":
        from .vggish import VggishEmbedder
        return VggishEmbedder(**kwargs)
    if name == "panns":
        from .panns import PannsEmbedder
        return PannsEmbedder(**kwargs)
    if name == "clap":
        from .clap import ClapEmbedder
        return ClapEmbedder(**kwargs)
    if name == "wav2clip":
        from .wav2clip import Wav2ClipEmbedder
        return Wav2ClipEmbedder(**kwargs)
    raise MetricError(f"unknown embedder; choose one of {WEIGHTLESS + PRETRAINED}", item=name)


__all__ = ["Embedder", "build_embedder", "WEIGHTLESS", "PRETRAINED"]
