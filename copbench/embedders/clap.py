"""``clap``: LAION CLAP (``transformers.ClapModel``) audio and text embeddings.

Weights: a folder holding the Hugging Face repo files of
``laion/clap-htsat-unfused`` (``config.json``, ``model.safetensors``, the
tokenizer and ``preprocessor_config.json``), found through ``--weights
clap=DIR``, ``$COPBENCH_WEIGHTS/laion--clap-htsat-unfused`` or the Hugging Face
cache (``local_files_only``). The model is built from its ``ClapConfig`` and
the checksum-verified weights file is loaded into it strictly.

Audio: resampled to 48 kHz and cut into non-overlapping 10 s windows (the
last, partial window kept when at least 5 s long; padded by the feature
extractor's ``repeatpad``). Every window is at most the extractor's maximum
length, so no random crop ever happens. One 512-d (projection) embedding per
window, L2-normalised. Text: the tokenizer with padding, truncated to the text
encoder's window (512 tokens for LAION CLAP), one embedding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import WeightsMissingError
from .base import Embedder, windows
from .weights import WeightsSpec, locate, verify

REPO = "laion/clap-htsat-unfused"
SAMPLE_RATE = 48000
WINDOW_SECONDS = 10.0
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _features(out):
    """transformers >= 5 returns a model output whose ``pooler_output`` holds the
    projected features; older versions return the tensor."""
    return out.pooler_output if hasattr(out, "pooler_output") else out


def load_hf_model(spec_name: str, repo: str, model_cls, config_cls):
    """Build ``model_cls`` from the folder's config and load its verified weights."""
    from .torch_io import read_state_dict
    folder, first_error = None, None
    for filename in WEIGHT_FILES:
        try:
            folder = locate(WeightsSpec(name=spec_name, filename=filename, source=f"hf:{repo}",
                                        hf_repo=repo))
            break
        except WeightsMissingError as exc:
            first_error = first_error or exc
    if folder is None:
        raise first_error
    folder = Path(folder)
    weights = next(folder / f for f in WEIGHT_FILES if (folder / f).is_file())
    info = verify(weights, WeightsSpec(name=spec_name, filename=weights.name,
                                       source=f"https://huggingface.co/{repo}", hf_repo=repo))
    config = config_cls.from_pretrained(str(folder), local_files_only=True)
    model = model_cls(config)
    state = read_state_dict(weights)
    model.load_state_dict(state, strict=False)
    expected = set(model.state_dict())
    absent = sorted(k for k in expected if k not in state and not k.endswith("position_ids"))
    if absent:
        raise WeightsMissingError(f"the weights file lacks {len(absent)} tensors (e.g. {absent[:3]}); "
                                  f"it does not belong to {repo}", item=str(weights))
    info["config"] = str(folder / "config.json")
    return model.eval(), folder, info


class ClapEmbedder(Embedder):
    NAME = "clap"
    VERSION = "1.0"
    SAMPLE_RATE = SAMPLE_RATE

    def __init__(self):
        self.model = None

    def settings(self) -> dict:
        return {"repo": REPO, "window_seconds": WINDOW_SECONDS, "padding": "repeatpad",
                "normalised": True}

    def load(self) -> "ClapEmbedder":
        if self.model is None:
            from transformers import ClapConfig, ClapFeatureExtractor, ClapModel
            self.model, folder, self.weights_info = load_hf_model("clap", REPO, ClapModel, ClapConfig)
            if (folder / "preprocessor_config.json").is_file():
                self.extractor = ClapFeatureExtractor.from_pretrained(str(folder), local_files_only=True)
            else:
                self.extractor = ClapFeatureExtractor()
            self.folder = folder
            self._tokenizer = None
        return self

    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
        return self._tokenizer

    def _embed(self, audio: np.ndarray) -> np.ndarray:
        import torch
        size = int(WINDOW_SECONDS * SAMPLE_RATE)
        chunks = windows(audio, size)
        n = audio.shape[0]
        lengths = [min(size, max(n - i * size, 1)) for i in range(chunks.shape[0])]
        pieces = [chunks[i, :lengths[i]] for i in range(chunks.shape[0])]
        # "fusion" only for fused models; a window never exceeds the maximum length,
        # so neither truncation mode crops at random.
        fused = bool(getattr(self.model.config.audio_config, "enable_fusion", False))
        feats = self.extractor(pieces, sampling_rate=SAMPLE_RATE, padding="repeatpad",
                               truncation="fusion" if fused else "rand_trunc",
                               return_tensors="pt")
        with torch.inference_mode():
            out = _features(self.model.get_audio_features(**feats))
        return torch.nn.functional.normalize(out, dim=-1).double().numpy()

    def embed_text(self, texts: list[str]) -> np.ndarray:
        import torch
        # RoBERTa positions start after the padding index: the window is max positions - 2.
        limit = int(self.model.config.text_config.max_position_embeddings) - 2
        tokens = self.tokenizer()(texts, padding=True, truncation=True, max_length=limit,
                                  return_tensors="pt")
        with torch.inference_mode():
            out = _features(self.model.get_text_features(**tokens))
        return torch.nn.functional.normalize(out, dim=-1).double().numpy()
