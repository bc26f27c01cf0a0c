"""Text encoders: a caption -> token features ``(B, L, text_dim)`` and a mask.

Built-in: words (lower-cased, split on non-alphanumerics) hashed with CRC32 into
``text_vocab - 2`` buckets (0 = padding, 1 = start), embedded and passed through
a small transformer encoder trained from scratch. Pretrained: a T5 encoder or a
CLIP text model (transformers) loaded from a local folder, frozen; its hidden
states are computed once per caption and the model learns a projection.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import ConfigError
from .presets import NetConfig

PAD, BOS = 0, 1
_WORD = re.compile(r"[a-z0-9#]+")


def tokenize(caption: str, vocab: int, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashed word ids ``int64 (max_tokens,)`` and mask ``bool (max_tokens,)``."""
    words = _WORD.findall((caption or "").lower())[: max_tokens - 1]
    ids = np.zeros(max_tokens, dtype=np.int64)
    ids[0] = BOS
    for i, w in enumerate(words):
        ids[i + 1] = 2 + zlib.crc32(w.encode("utf-8")) % (vocab - 2)
    mask = np.zeros(max_tokens, dtype=bool)
    mask[: len(words) + 1] = True
    return ids, mask


class BuiltinTextEncoder(nn.Module):
    """Token ids ``(B, L)`` -> ``(B, L, text_dim)``."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.text_vocab, cfg.text_dim, padding_idx=PAD)
        self.pos = nn.Parameter(torch.randn(cfg.text_max_tokens, cfg.text_dim) * 0.02)
        layer = nn.TransformerEncoderLayer(cfg.text_dim, max(1, cfg.text_dim // 32),
                                           2 * cfg.text_dim, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, cfg.text_depth, enable_nested_tensor=False)
        self.out_dim = cfg.text_dim

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids) + self.pos[: ids.shape[1]]
        return self.encoder(x, src_key_padding_mask=~mask)


class TextFeatureProjection(nn.Module):
    """Cached pretrained hidden states ``(B, L, D)`` -> ``(B, L, text_dim)``."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.proj = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, out_dim))
        self.out_dim = out_dim

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.proj(features.float())


def _weights_dir(spec: str) -> Path:
    from .weights import pretrained_dir

    return pretrained_dir(spec, "net.text_encoder", "builtin")


_PRETRAINED: dict[str, tuple] = {}


def _load(spec: str):
    from transformers import AutoTokenizer, CLIPTextModel, T5EncoderModel

    if spec not in _PRETRAINED:
        path = _weights_dir(spec)
        kind = spec.split(":", 1)[0]
        klass = {"t5": T5EncoderModel, "clip": CLIPTextModel}.get(kind)
        if klass is None:
            raise ConfigError("unknown text encoder; use builtin, t5:<dir> or clip:<dir>", item=spec)
        _PRETRAINED[spec] = (AutoTokenizer.from_pretrained(path, local_files_only=True),
                             klass.from_pretrained(path, local_files_only=True).eval())
    return _PRETRAINED[spec]


def pretrained_feature_dim(spec: str) -> int:
    return int(_load(spec)[1].config.hidden_size if hasattr(_load(spec)[1].config, "hidden_size")
               else _load(spec)[1].config.d_model)


@torch.no_grad()
def pretrained_text_features(caption: str, spec: str, max_tokens: int) -> tuple[np.ndarray, np.ndarray]:
    """Hidden states ``float32 (max_tokens, D)`` and mask ``bool (max_tokens,)``."""
    tokenizer, model = _load(spec)
    enc = tokenizer([caption or ""], padding="max_length", truncation=True,
                    max_length=max_tokens, return_tensors="pt")
    hidden = model(input_ids=enc.input_ids, attention_mask=enc.attention_mask).last_hidden_state
    return hidden[0].float().numpy(), enc.attention_mask[0].bool().numpy()


def encode_caption(caption: str, cfg: NetConfig) -> tuple[np.ndarray, np.ndarray]:
    """What the data pipeline stores for a caption under ``cfg.text_encoder``."""
    if cfg.text_encoder == "builtin":
        return tokenize(caption, cfg.text_vocab, cfg.text_max_tokens)
    return pretrained_text_features(caption, cfg.text_encoder, cfg.text_max_tokens)


def build_text_encoder(cfg: NetConfig) -> nn.Module:
    if cfg.text_encoder == "builtin":
        return BuiltinTextEncoder(cfg)
    return TextFeatureProjection(pretrained_feature_dim(cfg.text_encoder), cfg.text_dim)
