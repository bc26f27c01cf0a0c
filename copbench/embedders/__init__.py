"""Audio embedders for FAD and the CLAP/CLIP scores, behind one base class.

``mel`` and ``basicpitch`` need no download; ``vggish`` (and the
``vggish_relu`` variant), ``panns`` (Cnn14 16 kHz, whole clip; and the
``panns_windowed`` variant), ``clap`` (LAION-CLAP in transformers' ``ClapModel``)
and ``wav2clip`` load pretrained weights from local files (see
:mod:`copbench.embedders.weights`; ``copbench weights fetch`` downloads them).
"""

from __future__ import annotations

from ..errors import MetricError
from .base import Embedder

WEIGHTLESS = ("mel", "basicpitch")
PRETRAINED = ("vggish", "vggish_relu", "panns", "panns_windowed", "clap", "wav2clip")


def build_embedder(name: str, **kwargs) -> Embedder:
    """An (unloaded) embedder by name; call ``.load()`` before ``.embed()``."""
    if name == "mel":
        from .mel import MelEmbedder
        return MelEmbedder(**kwargs)
    if name == "basicpitch":
        from .basicpitch import BasicPitchEmbedder
        return BasicPitchEmbedder(**kwargs)
    if name in ("vggish", "vggish_relu"):
        from .vggish import VggishEmbedder, VggishReluEmbedder
        return (VggishEmbedder if name == "vggish" else VggishReluEmbedder)(**kwargs)
    if name in ("panns", "panns_windowed"):
        from .panns import PannsEmbedder, PannsWindowedEmbedder
        return (PannsEmbedder if name == "panns" else PannsWindowedEmbedder)(**kwargs)
    if name == "clap":
        from .clap import ClapEmbedder
        return ClapEmbedder(**kwargs)
    if name == "wav2clip":
        from .wav2clip import Wav2ClipEmbedder
        return Wav2ClipEmbedder(**kwargs)
    raise MetricError(f"unknown embedder; choose one of {WEIGHTLESS + PRETRAINED}", item=name)


__all__ = ["Embedder", "build_embedder", "WEIGHTLESS", "PRETRAINED"]
