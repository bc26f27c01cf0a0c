"""``clap``: LAION-CLAP audio and text embeddings in transformers' ``ClapModel``.

Default weights: LAION-CLAP's music + speech checkpoint
``music_speech_audioset_epoch_15_esc_89.98.pt`` (HTSAT-base audio encoder,
RoBERTa text encoder, 512-d joint space), the one av-benchmark's
``LAION-CLAP-Score`` uses, in laion-clap's own layout (``{"state_dict":
{"module.text_branch.*", "module.audio_branch.*", ...}}``). laion-clap itself
does not import beside the CPU torch build, so the file is read safely and
its keys are mapped onto transformers' ``ClapModel`` (:func:`laion_to_hf`,
the mapping of transformers' own conversion script): ``text_branch`` ->
``text_model``, ``audio_branch`` -> ``audio_model.audio_encoder``, Swin block
names (``attn`` -> ``attention.self``, ``attn.proj`` ->
``attention.output.dense``, ``norm1/2`` -> ``layernorm_before/after``,
``mlp.fc1/fc2`` -> ``intermediate.dense``/``output.dense``, ``bn0`` ->
``batch_norm``), fused ``qkv`` split into query/key/value, the projection
``Sequential`` indices 0/2 -> ``linear1``/``linear2``; the training-only
parts (``audio_transform``, ``text_transform``, the HTSAT classifier
``tscam_conv``/``head``, in-model STFT/mel buffers, attention masks) are
dropped; every tensor of the model must be filled. The RoBERTa tokenizer
comes from ``FacebookAI/roberta-base`` (``vocab.json``, ``merges.txt``).

Also loadable: a transformers-format repo folder (``config.json``,
``model.safetensors`` or ``pytorch_model.bin``, tokenizer,
``preprocessor_config.json``), e.g. ``laion/larger_clap_music_and_speech``
(the same model converted) through ``--weights clap=DIR``,
``$COPBENCH_WEIGHTS/laion--larger_clap_music_and_speech`` or the Hugging Face
cache; it is used when the ``.pt`` file is absent.

Checkpoints: the HTSAT audio branch's size is read from the file (HTSAT-base,
``patch_embed`` width 128, depths 2/2/12/2, as the music_speech file; HTSAT-tiny,
width 96, depths 2/2/6/2, as ``630k-audioset-best.pt`` / ``630k-best.pt``). Fused
checkpoints (``*-fusion-*``, ``enable_fusion=True``: keys ``fusion_model`` /
``mel_conv2d``) are refused with :class:`~copbench.errors.UnsupportedWeightsError`.

Front end = LAION-CLAP's HTSAT configs (``model_configs/HTSAT-*.json``):
48 kHz, 1024-point Hann STFT, hop 480, 64 Slaney mel bands from ``fmin`` 50 Hz
to ``fmax`` 14 kHz, ``10 log10(max(mel, 1e-10))``. When the file holds its
own mel matrix (``audio_branch.logmel_extractor.melW``) that matrix is used,
so the front end is the checkpoint's. (Before version 3.0 the mel bands
started at 0 Hz: cosine 0.87 against laion-clap's own HTSAT on the same
weights.)

Audio: resampled to 48 kHz and cut into non-overlapping 10 s windows (the
last, partial window kept when at least 5 s long; padded by the feature
extractor's ``repeatpad``, as laion-clap pads). No window exceeds the
maximum length, so no random crop ever happens. One 512-d projection per
window, L2-normalised. Text: as laion-clap's ``CLAP_Module.tokenizer``,
padded and truncated to 77 tokens (``padding="max_length"``), one
L2-normalised embedding.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ..errors import UnsupportedWeightsError, WeightsMissingError
from .base import Embedder, windows
from .weights import WeightsSpec, locate, verify

SPEC = WeightsSpec(name="clap", filename="music_speech_audioset_epoch_15_esc_89.98.pt",
                   source="https://huggingface.co/lukewys/laion_clap/resolve/main/"
                          "music_speech_audioset_epoch_15_esc_89.98.pt",
                   hf_file_repo="lukewys/laion_clap")
TOKENIZER_SPEC = WeightsSpec(name="clap_tokenizer", filename="vocab.json",
                             source="https://huggingface.co/FacebookAI/roberta-base",
                             hf_repo="FacebookAI/roberta-base",
                             allow_patterns=("vocab.json", "merges.txt", "tokenizer_config.json",
                                             "config.json"))
HF_REPO = "laion/larger_clap_music_and_speech"
HF_SPEC = WeightsSpec(name="clap", filename="model.safetensors",
                      source=f"https://huggingface.co/{HF_REPO}", hf_repo=HF_REPO)
SAMPLE_RATE = 48000
WINDOW_SECONDS = 10.0
FMIN, FMAX = 50.0, 14000.0  # laion_clap/clap_module/model_configs/HTSAT-{tiny,base}.json
TEXT_LENGTH = 77  # laion_clap hook.py CLAP_Module.tokenizer: padding="max_length", max_length=77
MEL_KEY = "audio_branch.logmel_extractor.melW"
FUSION_MARKERS = ("fusion_model", "mel_conv2d")
SUPPORTED = ("music_speech_audioset_epoch_15_esc_89.98.pt (HTSAT-base)",
             "630k-audioset-best.pt / 630k-best.pt (HTSAT-tiny)",
             "a transformers ClapModel folder (laion/larger_clap_music_and_speech)")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

# HTSAT-base + RoBERTa-base, as laion-clap's HTSAT-base / roberta configuration.
MUSIC_SPEECH_CONFIG = {
    "text_config": {"vocab_size": 50265, "hidden_size": 768, "num_hidden_layers": 12,
                    "num_attention_heads": 12, "intermediate_size": 3072,
                    "max_position_embeddings": 514, "type_vocab_size": 1, "pad_token_id": 1,
                    "bos_token_id": 0, "eos_token_id": 2, "projection_dim": 512},
    "audio_config": {"depths": [2, 2, 12, 2], "num_attention_heads": [4, 8, 16, 32],
                     "patch_embeds_hidden_size": 128, "hidden_size": 1024, "window_size": 8,
                     "spec_size": 256, "patch_stride": [4, 4], "num_mel_bins": 64,
                     "num_classes": 527, "enable_fusion": False, "projection_dim": 512},
    "projection_dim": 512,
}

_RENAMES = (("text_branch", "text_model"), ("audio_branch", "audio_model.audio_encoder"),
            ("attn", "attention.self"), ("self.proj", "output.dense"),
            ("attention.self_mask", "attn_mask"), ("mlp.fc1", "intermediate.dense"),
            ("mlp.fc2", "output.dense"), ("norm1", "layernorm_before"),
            ("norm2", "layernorm_after"), ("bn0", "batch_norm"))
_DROPPED = ("audio_transform.", "text_transform.", "audio_model.audio_encoder.tscam_conv.",
            "audio_model.audio_encoder.head.", "audio_model.audio_encoder.spectrogram_extractor.",
            "audio_model.audio_encoder.logmel_extractor.")


def laion_to_hf(state: dict) -> dict:
    """laion-clap state-dict keys (``module.`` prefix optional) -> ``ClapModel`` keys."""
    out = {}
    for key, value in state.items():
        key = key[len("module."):] if key.startswith("module.") else key
        for old, new in _RENAMES:
            if old in key:
                key = key.replace(old, new)
        projection = re.match(r"^(text|audio)_projection\.(\d+)\.(.*)$", key)
        if projection:
            key = f"{projection[1]}_projection.linear{1 if projection[2] == '0' else 2}.{projection[3]}"
        if key.startswith(_DROPPED) or key.endswith(".attn_mask"):
            continue
        if ".qkv." in key:
            q, k, v = value.chunk(3, dim=0)
            for name, part in (("query", q), ("key", k), ("value", v)):
                out[key.replace("qkv", name)] = part
        else:
            out[key] = value
    return out


def audio_config_from_state(state: dict) -> dict:
    """HTSAT size of a laion-clap state dict (``module.`` prefix optional): the
    ``audio_config`` of :data:`MUSIC_SPEECH_CONFIG` with the file's patch width and
    depths. Fused checkpoints are refused."""
    keys = [k[len("module."):] if k.startswith("module.") else k for k in state]
    fused = sorted({m for k in keys for m in FUSION_MARKERS if m in k})
    if fused:
        raise UnsupportedWeightsError(
            f"a fused LAION-CLAP checkpoint (enable_fusion=True; keys {fused}) is not supported: "
            f"copbench scores each 10 s window without fusion; supported: {'; '.join(SUPPORTED)}",
            item="clap")
    proj = state.get("audio_branch.patch_embed.proj.weight",
                     state.get("module.audio_branch.patch_embed.proj.weight"))
    if proj is None:
        raise UnsupportedWeightsError(
            f"not an HTSAT LAION-CLAP checkpoint (no audio_branch.patch_embed); supported: "
            f"{'; '.join(SUPPORTED)}", item="clap")
    depths = []
    block = re.compile(r"^audio_branch\.layers\.(\d+)\.blocks\.(\d+)\.")
    for key in keys:
        found = block.match(key)
        if found:
            layer, index = int(found[1]), int(found[2])
            depths += [0] * (layer + 1 - len(depths))
            depths[layer] = max(depths[layer], index + 1)
    width = int(proj.shape[0])
    config = dict(MUSIC_SPEECH_CONFIG["audio_config"])
    config.update(patch_embeds_hidden_size=width, hidden_size=width * 2 ** (len(depths) - 1),
                  depths=depths)
    return config


def text_config_from_state(state: dict) -> dict:
    """RoBERTa size of a laion-clap state dict: :data:`MUSIC_SPEECH_CONFIG`'s
    ``text_config`` with the file's layer count, vocabulary and positions."""
    config = dict(MUSIC_SPEECH_CONFIG["text_config"])
    layer = re.compile(r"^(?:module\.)?text_branch\.encoder\.layer\.(\d+)\.")
    layers = {int(m[1]) for m in map(layer.match, state) if m}
    if layers:
        config["num_hidden_layers"] = max(layers) + 1
    for key, field in (("word_embeddings", "vocab_size"),
                       ("position_embeddings", "max_position_embeddings")):
        weight = state.get(f"text_branch.embeddings.{key}.weight",
                           state.get(f"module.text_branch.embeddings.{key}.weight"))
        if weight is not None:
            config[field] = int(weight.shape[0])
    return config


def _features(out):
    """transformers >= 5 returns a model output whose ``pooler_output`` holds the
    projected features; older versions return the tensor."""
    return out.pooler_output if hasattr(out, "pooler_output") else out


def load_hf_model(spec_name: str, repo: str, model_cls, config_cls, folder: Path | None = None):
    """Build ``model_cls`` from a repo folder's config and load its verified weights;
    ``folder`` defaults to the located repo (override, weights folder or HF cache)."""
    from .torch_io import read_state_dict
    first_error = None
    if folder is None:
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
    weights = next((folder / f for f in WEIGHT_FILES if (folder / f).is_file()), None)
    if weights is None:
        raise WeightsMissingError(f"the folder holds none of {WEIGHT_FILES}", item=str(folder))
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
    VERSION = "3.0"  # 3.0: fmin 50 / fmax 14000 (laion-clap's HTSAT configs), text at 77 tokens
    SAMPLE_RATE = SAMPLE_RATE
    SPEC = SPEC

    def __init__(self):
        self.folder = None  # the tokenizer / preprocessor folder
        self._tokenizer = None
        self.extractor = None
        self.audio_config = dict(MUSIC_SPEECH_CONFIG["audio_config"])
        self.text_config = dict(MUSIC_SPEECH_CONFIG["text_config"])
        self.file_mel = None  # the checkpoint's own mel matrix (n_fft/2+1, mel bins), if any

    def settings(self) -> dict:
        size = "HTSAT-tiny" if self.audio_config["patch_embeds_hidden_size"] == 96 else "HTSAT-base"
        return {"weights": f"LAION-CLAP ({size})", "window_seconds": WINDOW_SECONDS,
                "padding": "repeatpad", "normalised": True, "fmin": FMIN, "fmax": FMAX,
                "n_fft": 1024, "hop": 480, "mel_bins": 64,
                "mel_matrix": "checkpoint" if self.file_mel is not None else "computed",
                "text_tokens": TEXT_LENGTH}

    def build_model(self):
        from transformers import ClapConfig, ClapModel
        return ClapModel(ClapConfig(**{**MUSIC_SPEECH_CONFIG, "audio_config": self.audio_config,
                                       "text_config": self.text_config}))

    def convert_state(self, state: dict) -> dict:
        self.audio_config = audio_config_from_state(state)
        self.text_config = text_config_from_state(state)
        mel = state.get(MEL_KEY, state.get("module." + MEL_KEY))
        self.file_mel = None if mel is None else mel.double().numpy()
        mapped = laion_to_hf(state)
        text = self.text_config
        import torch
        # deterministic buffers transformers keeps and laion-clap's file may lack
        mapped.setdefault("text_model.embeddings.position_ids",
                          torch.arange(text["max_position_embeddings"])[None])
        mapped.setdefault("text_model.embeddings.token_type_ids",
                          torch.zeros(1, text["max_position_embeddings"], dtype=torch.long))
        return mapped

    def load_folder(self, folder: Path):
        from transformers import ClapConfig, ClapModel
        model, self.folder, info = load_hf_model("clap", HF_REPO, ClapModel, ClapConfig, folder)
        return model, info

    def fallback_folder(self) -> Path | None:
        try:
            return locate(HF_SPEC)
        except WeightsMissingError:
            return None

    def _extractor(self):
        if self.extractor is None:
            from transformers import ClapFeatureExtractor
            if self.folder is not None and (self.folder / "preprocessor_config.json").is_file():
                # the HTSAT front end whatever the folder's config says
                config, _ = ClapFeatureExtractor.get_feature_extractor_dict(
                    str(self.folder), local_files_only=True)
                self.extractor = ClapFeatureExtractor(**{**config, "frequency_min": FMIN,
                                                         "frequency_max": FMAX})
            else:
                self.extractor = ClapFeatureExtractor(frequency_min=FMIN, frequency_max=FMAX)
            if self.file_mel is not None:
                if self.file_mel.shape != self.extractor.mel_filters_slaney.shape:
                    raise UnsupportedWeightsError(
                        f"the checkpoint's mel matrix has shape {self.file_mel.shape}, expected "
                        f"{self.extractor.mel_filters_slaney.shape} (1024-point STFT, 64 bands)",
                        item="clap")
                self.extractor.mel_filters_slaney = self.file_mel
        return self.extractor

    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer, RobertaTokenizer
            if self.folder is not None:
                self._tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
            else:
                folder = locate(TOKENIZER_SPEC)
                self._tokenizer = RobertaTokenizer(str(folder / "vocab.json"),
                                                   str(folder / "merges.txt"))
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
        feats = self._extractor()(pieces, sampling_rate=SAMPLE_RATE, padding="repeatpad",
                                  truncation="fusion" if fused else "rand_trunc",
                                  return_tensors="pt")
        dtype = next(self.model.parameters()).dtype  # float64 in the parity suite
        feats = {k: v.to(dtype) if v.is_floating_point() else v for k, v in feats.items()}
        with torch.inference_mode():
            out = _features(self.model.get_audio_features(**feats))
        return torch.nn.functional.normalize(out, dim=-1).double().numpy()

    def embed_text(self, texts: list[str]) -> np.ndarray:
        import torch
        # as laion-clap's CLAP_Module.tokenizer (a text encoder with fewer positions, as
        # the unit tests' tiny one, stops at its own window: RoBERTa's positions - 2)
        positions = int(self.model.config.text_config.max_position_embeddings) - 2
        tokens = self.tokenizer()(texts, padding="max_length", truncation=True,
                                  max_length=min(TEXT_LENGTH, positions), return_tensors="pt")
        with torch.inference_mode():
            out = _features(self.model.get_text_features(**tokens))
        return torch.nn.functional.normalize(out, dim=-1).double().numpy()
