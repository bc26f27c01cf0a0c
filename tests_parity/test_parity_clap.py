"""copbench's ``clap`` embedder against laion-clap 1.1.7's own modules (HTSAT audio
branch with its in-model torchlibrosa STFT / mel front end, RoBERTa text branch,
projections; ``CLAP_Module.get_audio_embedding_from_data`` / ``get_text_embedding``)
on the same random-weight checkpoint, saved in laion-clap's release layout
(``{"epoch", "state_dict": {"module.*"}}``) and loaded through copbench's real path.

Oracle: laion-clap's code. Bound: relative difference ``max|a - b| / max|b|`` of the
L2-normalised embeddings <= 1e-5, both sides run in float64 (in float32 the random
transformer amplifies round-off of the two STFT implementations to ~1e-4).
"""

import sys

import numpy as np
import pytest
import torch

from copbench.cache import file_sha256
from copbench.embedders import build_embedder
from copbench.embedders.weights import set_override
from laion_layout import byte_level_tokenizer  # tests/ is on sys.path (conftest)

SR = 48000
REL_TOL = 1e-5


def music(seconds, seed=0, sr=SR):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    notes = sum(0.15 * np.sin(2 * np.pi * f * (1 + 0.05 * seed) * t) * np.exp(-((t * 2) % 1.0) * 3)
                for f in (110.0, 261.6, 659.3, 1760.0, 5274.0))
    return (notes + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def laion_module(amodel, vocab_size, text_layers=2):
    """laion-clap's ``CLAP_Module`` (non-fused) with random weights: its
    ``create_model`` builds the HTSAT branch from laion's own ``model_configs``; the
    RoBERTa branch it would download (``RobertaModel.from_pretrained('roberta-base')``)
    is built at roberta-base's width from a config instead."""
    from conftest import reference_import
    import transformers
    laion = reference_import("laion_clap")
    # laion_clap puts its folder on sys.path: its hook imports ``clap_module`` top-level
    create_model = sys.modules["clap_module"].create_model
    original = transformers.RobertaModel.from_pretrained
    config = transformers.RobertaConfig(vocab_size=vocab_size, hidden_size=768,
                                        num_hidden_layers=text_layers, num_attention_heads=12,
                                        intermediate_size=3072, max_position_embeddings=514,
                                        type_vocab_size=1, pad_token_id=1)
    transformers.RobertaModel.from_pretrained = classmethod(lambda cls, *a, **k: cls(config))
    try:
        torch.manual_seed(7)
        model, model_cfg = create_model(amodel, "roberta", precision="fp32", device="cpu",
                                        enable_fusion=False)
    finally:
        transformers.RobertaModel.from_pretrained = original
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():  # non-trivial batch-norm statistics (bn0 and the text branch)
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.5)
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))
    hook = object.__new__(laion.CLAP_Module)
    torch.nn.Module.__init__(hook)
    hook.enable_fusion, hook.model, hook.model_cfg = False, model.eval(), model_cfg
    return hook


def save_release(hook, path):
    state = {f"module.{k}": v for k, v in hook.model.state_dict().items()}
    torch.save({"epoch": 1, "state_dict": state}, path)
    named = path.with_name(f"{path.stem}-{file_sha256(path)[:8]}{path.suffix}")
    path.rename(named)
    return named


def _compare(name, ours, want):
    rel = float(np.abs(ours - want).max() / np.abs(want).max())
    cosine = float((ours * want).sum(1).min())
    print(f"\nPARITY {name}: max rel diff {rel:.3g}, min cosine {cosine:.10f}")
    return rel


# HTSAT-tiny: the 630k-audioset-*.pt files of av-benchmark-era papers; HTSAT-base: the
# music_speech checkpoint copbench defaults to (as av-benchmark's ExtractionModels).
RELEASE_NAMES = {"HTSAT-tiny": "630k-audioset-best.pt",
                 "HTSAT-base": "music_speech_audioset_epoch_15_esc_89.98.pt"}
_SETUPS = {}


def setup_for(amodel, tmp_path_factory):
    """(laion-clap module, its release-layout file, tokenizer folder), built once per size."""
    if amodel not in _SETUPS:
        folder = tmp_path_factory.mktemp(amodel)
        tokenizer, vocab_size = byte_level_tokenizer(folder / "tokenizer")
        hook = laion_module(amodel, vocab_size)
        hook.tokenize = tokenizer
        path = save_release(hook, folder / RELEASE_NAMES[amodel])
        _SETUPS[amodel] = hook, path, folder / "tokenizer"
    return _SETUPS[amodel]


@pytest.fixture(scope="module", params=["HTSAT-tiny", "HTSAT-base"])
def clap_setup(request, tmp_path_factory):
    return (request.param, *setup_for(request.param, tmp_path_factory))


@pytest.fixture(scope="module")
def base_setup(tmp_path_factory):
    return ("HTSAT-base", *setup_for("HTSAT-base", tmp_path_factory))


def _embedder(path, tokenizer_folder):
    set_override("clap", path)
    set_override("clap_tokenizer", tokenizer_folder)
    emb = build_embedder("clap").load()
    emb.model.double()
    return emb


def clap_pair(hook, emb, audio):
    """(copbench, laion-clap) embeddings of 48 kHz mono ``audio``, both in float64."""
    size = 10 * SR
    pieces = [torch.from_numpy(audio[i:i + size]).double() for i in range(0, len(audio), size)
              if len(audio[i:i + size]) >= size // 2]
    hook.model.double()
    try:
        with torch.no_grad():
            want = torch.stack([hook.get_audio_embedding_from_data([p], use_tensor=True)[0]
                                for p in pieces]).numpy()
    finally:
        hook.model.float()
    return emb.embed(audio, SR), want


def test_clap_audio_matches_laion_clap_htsat(clap_setup):
    amodel, hook, path, tok = clap_setup
    emb = _embedder(path, tok)
    assert emb.settings()["fmin"] == 50.0 and emb.settings()["weights"] == f"LAION-CLAP ({amodel})"
    audio = music(16.0, seed=1)  # one full 10 s window + a 6 s window laion repeat-pads
    ours, want = clap_pair(hook, emb, audio)
    assert ours.shape == want.shape == (2, 512)
    assert _compare(f"clap audio ({amodel}) vs laion-clap 1.1.7", ours, want) <= REL_TOL


def test_clap_text_matches_laion_clap_roberta(clap_setup):
    amodel, hook, path, tok = clap_setup
    emb = _embedder(path, tok)
    texts = ["a grand piano plays a slow chord progression",
             "solo piano: " + "left hand arpeggios under a right-hand melody, " * 4]  # > 77 tokens
    assert len(hook.tokenize(texts[1])["input_ids"]) > 77
    hook.model.double()
    try:
        with torch.no_grad():
            want = hook.get_text_embedding(texts, use_tensor=True).numpy()
    finally:
        hook.model.float()
    ours = emb.embed_text(texts)
    assert _compare(f"clap text ({amodel}, RoBERTa, 77 tokens) vs laion-clap 1.1.7", ours,
                    want) <= REL_TOL


def test_fused_laion_checkpoint_is_refused(tmp_path):
    from copbench.errors import UnsupportedWeightsError
    state = {"module.audio_branch.patch_embed.proj.weight": torch.zeros(96, 1, 4, 4),
             "module.audio_branch.fusion_model.local_att.0.weight": torch.zeros(4, 4)}
    path = tmp_path / "630k-audioset-fusion-best.pt"
    torch.save({"state_dict": state}, path)
    named = path.with_name(f"{path.stem}-{file_sha256(path)[:8]}.pt")
    path.rename(named)
    set_override("clap", named)
    with pytest.raises(UnsupportedWeightsError, match="fused.*supported: music_speech"):
        build_embedder("clap").load()


def _perturb(emb, monkeypatch, parameter):
    """Change one front-end parameter of copbench's loaded CLAP embedder."""
    from transformers.audio_utils import mel_filter_bank, spectrogram, window_function
    import transformers.models.clap.feature_extraction_clap as fe
    extractor = emb._extractor()

    def bank(fmin, fmax):
        return mel_filter_bank(num_frequency_bins=513, num_mel_filters=64, min_frequency=fmin,
                               max_frequency=fmax, sampling_rate=SR, norm="slaney",
                               mel_scale="slaney")
    if parameter == "fmin":  # copbench < 3.0: 0 Hz
        extractor.mel_filters_slaney = bank(0.0, 14000.0)
    elif parameter == "fmax":
        extractor.mel_filters_slaney = bank(50.0, 12000.0)
    elif parameter == "hop":
        extractor.hop_length = 470
    elif parameter == "window":
        monkeypatch.setattr(fe, "window_function",
                            lambda n, name, **k: window_function(n, "hamming", **k))
    elif parameter == "log_offset":
        monkeypatch.setattr(fe, "spectrogram", lambda *a, **k: spectrogram(*a, **{**k, "mel_floor": 1e-4}))


_WANT = {}


@pytest.mark.parametrize("parameter", ["fmin", "fmax", "hop", "window", "log_offset"])
def test_clap_parity_has_teeth(base_setup, monkeypatch, parameter):
    """Mutation check: each wrong front-end parameter makes the comparison above fail, on
    HTSAT-base (the default music_speech model; the front end is the same code for
    HTSAT-tiny: 0.24 / 0.33 / 1.1e-2 / 3.2e-2 / 1.2e-3 there, measured once)."""
    amodel, hook, path, tok = base_setup
    emb = _embedder(path, tok)
    audio = music(10.0, seed=2)
    if amodel not in _WANT:  # laion-clap's side once for all five
        _WANT[amodel] = clap_pair(hook, emb, audio)[1]
    want = _WANT[amodel]
    _perturb(emb, monkeypatch, parameter)
    ours = emb.embed(audio, SR)
    rel = _compare(f"TEETH clap ({amodel}) with a wrong {parameter}", ours, want)
    assert rel > 100 * REL_TOL
