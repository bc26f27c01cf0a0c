"""laion-clap's checkpoint layout, written out from its source (laion-clap itself
cannot be imported beside the CPU torch build): key names and shapes of
``laion_clap/clap_module/htsat.py`` (HTSAT audio branch) and
``clap_module/model.py`` (RoBERTa text branch, projection and transform heads),
wrapped as its released checkpoints are (``{"epoch", "state_dict": {"module.*"}}``).
Used by the unit tests (tiny sizes) and the parity suite (full size)."""

import json

import numpy as np
import torch


def _swin_relative_index(window):
    coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij")).reshape(2, -1)
    rel = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (window - 1)
    return torch.from_numpy(rel[..., 0] * (2 * window - 1) + rel[..., 1])


def laion_clap_state(text_cfg, embed_dim, depths, heads, window, joint, classes=527,
                     mel_bins=64, n_fft=1024, spec_size=256):
    """A random state dict with laion-clap's key names and shapes (HTSAT audio branch
    as in laion_clap/clap_module/htsat.py, RoBERTa text branch, projection and
    transform heads as in clap_module/model.py), wrapped as its checkpoints are."""
    from transformers import RobertaConfig, RobertaModel
    g = torch.Generator().manual_seed(0)

    def rnd(*shape):
        return torch.randn(*shape, generator=g) * 0.05

    sd = {f"text_branch.{k}": (v if v.dtype != torch.float32 else rnd(*v.shape))
          for k, v in RobertaModel(RobertaConfig(**text_cfg)).state_dict().items()}
    a = "audio_branch."
    sd[a + "spectrogram_extractor.stft.conv_real.weight"] = rnd(n_fft // 2 + 1, 1, n_fft)
    sd[a + "spectrogram_extractor.stft.conv_imag.weight"] = rnd(n_fft // 2 + 1, 1, n_fft)
    sd[a + "logmel_extractor.melW"] = rnd(n_fft // 2 + 1, mel_bins)
    sd[a + "bn0.weight"], sd[a + "bn0.bias"] = 1 + rnd(mel_bins), rnd(mel_bins)
    sd[a + "bn0.running_mean"], sd[a + "bn0.running_var"] = rnd(mel_bins), 1 + rnd(mel_bins).abs()
    sd[a + "bn0.num_batches_tracked"] = torch.tensor(7)
    sd[a + "patch_embed.proj.weight"], sd[a + "patch_embed.proj.bias"] = rnd(embed_dim, 1, 4, 4), rnd(embed_dim)
    sd[a + "patch_embed.norm.weight"], sd[a + "patch_embed.norm.bias"] = 1 + rnd(embed_dim), rnd(embed_dim)
    resolution = spec_size // 4
    for i, depth in enumerate(depths):
        d = embed_dim * 2 ** i
        for j in range(depth):
            b = f"{a}layers.{i}.blocks.{j}."
            sd[b + "norm1.weight"], sd[b + "norm1.bias"] = 1 + rnd(d), rnd(d)
            sd[b + "attn.relative_position_bias_table"] = rnd((2 * window - 1) ** 2, heads[i])
            sd[b + "attn.relative_position_index"] = _swin_relative_index(window)
            sd[b + "attn.qkv.weight"], sd[b + "attn.qkv.bias"] = rnd(3 * d, d), rnd(3 * d)
            sd[b + "attn.proj.weight"], sd[b + "attn.proj.bias"] = rnd(d, d), rnd(d)
            sd[b + "norm2.weight"], sd[b + "norm2.bias"] = 1 + rnd(d), rnd(d)
            sd[b + "mlp.fc1.weight"], sd[b + "mlp.fc1.bias"] = rnd(4 * d, d), rnd(4 * d)
            sd[b + "mlp.fc2.weight"], sd[b + "mlp.fc2.bias"] = rnd(d, 4 * d), rnd(d)
            if j % 2 == 1 and resolution // 2 ** i > window:  # shifted windows keep a mask
                n_windows = (resolution // 2 ** i // window) ** 2
                sd[b + "attn_mask"] = torch.zeros(n_windows, window ** 2, window ** 2)
        if i < len(depths) - 1:
            sd[f"{a}layers.{i}.downsample.reduction.weight"] = rnd(2 * d, 4 * d)
            sd[f"{a}layers.{i}.downsample.norm.weight"] = 1 + rnd(4 * d)
            sd[f"{a}layers.{i}.downsample.norm.bias"] = rnd(4 * d)
    features = embed_dim * 2 ** (len(depths) - 1)
    sd[a + "norm.weight"], sd[a + "norm.bias"] = 1 + rnd(features), rnd(features)
    sf = spec_size // 2 ** (len(depths) - 1) // 4 // (spec_size // mel_bins)
    sd[a + "tscam_conv.weight"], sd[a + "tscam_conv.bias"] = rnd(classes, features, sf, 3), rnd(classes)
    sd[a + "head.weight"], sd[a + "head.bias"] = rnd(classes, classes), rnd(classes)
    width = text_cfg["hidden_size"]
    for side, cin in (("text", width), ("audio", features)):
        sd[f"{side}_projection.0.weight"], sd[f"{side}_projection.0.bias"] = rnd(joint, cin), rnd(joint)
        sd[f"{side}_projection.2.weight"], sd[f"{side}_projection.2.bias"] = rnd(joint, joint), rnd(joint)
        for k in (0, 3):
            sd[f"{side}_transform.sequential.{k}.weight"] = rnd(joint, joint)
            sd[f"{side}_transform.sequential.{k}.bias"] = rnd(joint)
    sd["logit_scale_a"], sd["logit_scale_t"] = torch.tensor(2.6), torch.tensor(2.7)
    return {"epoch": 15, "state_dict": {f"module.{k}": v for k, v in sd.items()}}


def byte_level_tokenizer(folder):
    """A RoBERTa byte-level BPE tokenizer with no merges (one token per byte): the real
    roberta-base vocabulary cannot be fetched here; both sides use this one."""
    from transformers import RobertaTokenizer
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    extra = iter(range(256, 512))
    byte_chars = [chr(b) if b in keep else chr(next(extra)) for b in range(256)]
    vocab = {t: i for i, t in enumerate(["<s>", "<pad>", "</s>", "<unk>"])}
    for ch in byte_chars:
        vocab.setdefault(ch, len(vocab))
    vocab["<mask>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return RobertaTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt")), len(vocab)
