"""copbench's embedders and Fréchet distance against the reference packages
(CLAP: test_parity_clap.py; FAD-inf: test_parity_fad_inf.py; mutation checks of
each front-end parameter: test_parity_teeth.py).

Each test builds the reference model class with random weights, saves them
in the reference's own file layout, loads that file through copbench's real
loading path (``set_override`` + ``build_embedder(...).load()``), and
compares the embeddings of the same audio. Bounds: max abs difference <= 1e-4
(VGGish, PANNs Cnn14-16k, Wav2CLIP), Fréchet distance equal to the
reference function to 1e-6 relative. Each test prints its measured figure.
"""

import numpy as np
import pytest
import torch

from copbench.cache import file_sha256
from copbench.embedders import build_embedder
from copbench.embedders.weights import set_override

SR = 16000
TOL = 1e-4


def _audio(seconds=3.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    tones = sum(0.2 * np.sin(2 * np.pi * f * (1 + 0.13 * seed) * t) for f in (220.0, 523.25, 1318.5))
    return (tones * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t)) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


def _report(name, diff, scale):
    print(f"\nPARITY {name}: max abs diff {diff:.3g} (output max abs {scale:.3g})")


def _randomise_batchnorm(module, seed):
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(1 + torch.rand(m.running_var.shape, generator=g))
            m.weight.data.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=g))
            m.bias.data.copy_(0.1 * torch.randn(m.bias.shape, generator=g))


def test_vggish_matches_torchvggish(tmp_path):
    from torchvggish import vggish_input
    from torchvggish.torchvggish import VGG, make_layers
    torch.manual_seed(0)
    reference = VGG(make_layers(), postprocess=False).eval()
    raw = tmp_path / "raw.pth"
    torch.save(reference.state_dict(), raw)  # torchvggish's release layout: a plain state dict
    path = tmp_path / f"vggish-{file_sha256(raw)[:8]}.pth"
    raw.rename(path)
    set_override("vggish", path)
    set_override("vggish_relu", path)
    audio = _audio()
    examples = vggish_input.waveform_to_examples(audio.astype(np.float64), SR)
    with torch.inference_mode():
        with_relu = reference(examples).double().numpy()
        # av-benchmark / audioldm_eval: torchvggish without the final ReLU
        reference.embeddings = torch.nn.Sequential(*list(reference.embeddings.children())[:-1])
        without = reference(examples).double().numpy()
    ours = build_embedder("vggish").load().embed(audio, SR)
    ours_relu = build_embedder("vggish_relu").load().embed(audio, SR)
    assert ours.shape == without.shape == (3, 128)
    diff = max(np.abs(ours - without).max(), np.abs(ours_relu - with_relu).max())
    _report("vggish (no final ReLU) / vggish_relu vs torchvggish 0.2", diff, np.abs(without).max())
    # relative to the output's scale (~0.02): an absolute 1e-4 let a wrong log offset pass
    assert diff <= 1e-5 * np.abs(without).max()


def _panns_reference(seed, logit_gain=1.0):
    from panns_inference.models import Cnn14
    torch.manual_seed(seed)
    reference = Cnn14(sample_rate=16000, window_size=512, hop_size=160, mel_bins=64, fmin=50,
                      fmax=8000, classes_num=527)
    with torch.no_grad():
        _randomise_batchnorm(reference, seed)
        # a random Cnn14's embedding barely moves with its input (relative spread ~1e-4):
        # a large classifier gain makes the posteriors differ between clips
        reference.fc_audioset.weight.normal_(0, 0.5 * logit_gain,
                                             generator=torch.Generator().manual_seed(seed))
    return reference.eval()


def _save_published_panns(reference, path):
    sampler = {"indexes_per_class": [np.arange(7, dtype=np.int64) for _ in range(3)],
               "queue": [np.int64(5), np.int64(1)], "pointers_of_classes": [np.int64(0)] * 3}
    torch.save({"iteration": 280000, "model": reference.state_dict(), "sampler": sampler}, path)


def test_panns_cnn14_16k_matches_panns_inference(tmp_path):
    reference = _panns_reference(1)
    path = tmp_path / "Cnn14_16k_mAP=0.438.pth"
    _save_published_panns(reference, path)
    set_override("panns", path)
    audio = _audio(4.0, seed=1)
    with torch.inference_mode():
        out = reference(torch.from_numpy(audio[None]))
        ref_embedding = out["embedding"].double().numpy()
        ref_logits = reference.fc_audioset(out["embedding"]).double().numpy()
    emb = build_embedder("panns").load()
    ours, logits = emb.embed_with_logits(audio, SR)
    assert ours.shape == (1, 2048)
    diff = np.abs(ours - ref_embedding).max()
    _report("panns Cnn14-16k whole clip vs panns_inference 0.1.1", diff, np.abs(ref_embedding).max())
    # relative to the output's scale: the absolute 1e-4 let fmin 0 pass (9.2e-5 of 0.755)
    assert diff <= 1e-5 * np.abs(ref_embedding).max()
    clipwise = out["clipwise_output"].double().numpy()
    diff_logits = np.abs(logits - ref_logits).max()
    _report("panns logits (is_panns / kl_panns input)", diff_logits, np.abs(ref_logits).max())
    assert diff_logits <= TOL and np.abs(1 / (1 + np.exp(-logits)) - clipwise).max() <= TOL


def test_is_and_kl_panns_from_reference_logits(tmp_path):
    from copbench.metrics.panns_scores import inception_score, kl_softmax
    reference = _panns_reference(2, logit_gain=1000.0)
    with torch.no_grad():  # centre the logits on a calibration clip so they do not saturate
        calibration = reference(torch.from_numpy(_audio(2.0, seed=99)[None]))["embedding"][0]
        reference.fc_audioset.bias.copy_(-reference.fc_audioset.weight @ calibration)
    path = tmp_path / "Cnn14_16k_mAP=0.438.pth"
    _save_published_panns(reference, path)
    set_override("panns", path)
    emb = build_embedder("panns").load()
    clips = [_audio(2.0, seed=s) * (0.3 + 0.1 * s) for s in range(12)]
    refs = [np.roll(c, 4000) for c in clips]
    with torch.inference_mode():
        def ref_logits(batch):
            e = reference(torch.from_numpy(np.stack(batch)))["embedding"]
            return reference.fc_audioset(e).double()
        r_out, r_ref = ref_logits(clips), ref_logits(refs)
    ours_out = np.concatenate([emb.embed_with_logits(c, SR)[1] for c in clips])
    ours_ref = np.concatenate([emb.embed_with_logits(c, SR)[1] for c in refs])
    # av-benchmark's compute_kl (av_bench/metrics/kl.py, hkchengrex/av-benchmark @050a5cd:
    # kl_div(log_softmax(gen), log_softmax(gt), reduction="sum", log_target=True) / N; the
    # package is not on PyPI, so its formula is restated here) and torch-fidelity ISC
    F = torch.nn.functional
    kl_ref = float(F.kl_div(F.log_softmax(r_out, 1), F.log_softmax(r_ref, 1), reduction="sum",
                            log_target=True) / len(clips))
    kl_audioldm = float(F.kl_div((r_out.softmax(1) + 1e-6).log(), r_ref.softmax(1),
                                 reduction="sum") / len(clips))
    kl_ours = float(kl_softmax(ours_out, ours_ref).mean())
    # IS on 100 clips: 10 splits of 10 clips each (torch-fidelity's isc_features_to_metric)
    is_clips = clips + [_audio(0.5, seed=s) * (0.3 + 0.004 * s) for s in range(12, 100)]
    with torch.inference_mode():
        r_is = torch.cat([ref_logits(clips), ref_logits(is_clips[12:])])
    ours_is = np.concatenate([ours_out] + [emb.embed_with_logits(c, SR)[1] for c in is_clips[12:]])
    # the gain that gives KL teeth saturates the softmax (p = 0 exactly -> nan in both);
    # IS is compared on the same logits / 100 on both sides
    r_is, ours_is = r_is / 100, ours_is / 100
    perm = np.random.RandomState(2020).permutation(len(is_clips))
    p = r_is[perm].softmax(1)
    scores = []
    for i in range(10):
        chunk = p[i * 100 // 10:(i + 1) * 100 // 10]
        assert len(chunk) == 10
        scores.append(float((chunk * (chunk.log() - chunk.mean(0, keepdim=True).log())).sum(1).mean().exp()))
    is_ours = inception_score(ours_is)[0]
    print(f"\nPARITY kl_panns {kl_ours:.6g} vs av-benchmark {kl_ref:.6g} (audioldm_eval's "
          f"formula: {kl_audioldm:.6g}); is_panns {is_ours:.6g} vs "
          f"{np.mean(scores):.6g} (KL 12 clips, IS 100 clips in 10 splits, random Cnn14)")
    assert is_ours > 1.01 and kl_ref > 1e-3  # the check has teeth
    # the gain amplifies float32 STFT round-off (1e-7 in the embedding) ~1e4-fold
    assert kl_ours == pytest.approx(kl_ref, rel=1e-2)
    assert is_ours == pytest.approx(np.mean(scores), rel=1e-4)


def test_wav2clip_matches_lyrebird_wav2clip(tmp_path):
    from conftest import reference_import
    encoder_module = reference_import("wav2clip.model.encoder")
    MLPLayers, ResNetExtractor = encoder_module.MLPLayers, encoder_module.ResNetExtractor
    torch.manual_seed(3)
    encoder = ResNetExtractor(scenario="supervise").encoder
    transform = MLPLayers(units=[512, 512, 512], dropout=0.1)
    with torch.no_grad():
        _randomise_batchnorm(encoder, 3)
    state = {f"audio_encoder.{k}": v for k, v in encoder.state_dict().items()}
    state.update({f"audio_transform.{k}": v for k, v in transform.state_dict().items()})
    path = tmp_path / "Wav2CLIP.pt"  # the release wav2clip.get_model loads: a flat state dict
    torch.save(state, path)
    reference = ResNetExtractor(checkpoint=state, scenario="frozen", transform=True).eval()
    set_override("wav2clip", path)
    audio = _audio(5.0, seed=4)
    with torch.inference_mode():
        want = reference(torch.from_numpy(audio[None])).double().numpy()
    ours = build_embedder("wav2clip").load().embed(audio, SR)
    diff = np.abs(ours - want).max()
    _report("wav2clip vs lyrebird wav2clip 0.1.0 (torchaudio shim)", diff, np.abs(want).max())
    assert ours.shape == (1, 512) and diff <= TOL


def test_frechet_distance_matches_frechet_audio_distance():
    from conftest import reference_import
    FrechetAudioDistance = reference_import("frechet_audio_distance").FrechetAudioDistance
    from copbench.metrics import frechet_distance
    rng = np.random.default_rng(5)
    worst = 0.0
    for n, d, shift in ((2000, 128, 0.5), (600, 64, 0.0), (3000, 32, 2.0)):
        a = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 0.3
        b = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) * 0.3 + shift
        stats = [FrechetAudioDistance.calculate_embd_statistics(None, x) for x in (a, b)]
        want = FrechetAudioDistance.calculate_frechet_distance(None, *stats[0], *stats[1])
        got = frechet_distance(a, b)
        rel = abs(got - want) / abs(want)
        worst = max(worst, rel)
        assert got == pytest.approx(want, rel=1e-6)
    print(f"\nPARITY frechet_distance vs frechet_audio_distance 0.3.4: max rel diff {worst:.3g}")


def test_laion_clap_music_speech_full_size_layout_loads(tmp_path):
    """The music_speech checkpoint's full HTSAT-base size (tests/laion_layout.py, written
    from laion-clap's source) loads strictly through copbench; the numerical comparison
    with laion-clap's own modules is in test_parity_clap.py (HTSAT-tiny and HTSAT-base,
    random weights)."""
    from laion_layout import laion_clap_state
    from copbench.embedders.clap import MUSIC_SPEECH_CONFIG
    text = MUSIC_SPEECH_CONFIG["text_config"]
    ckpt = laion_clap_state({k: text[k] for k in ("vocab_size", "hidden_size", "num_hidden_layers",
                                                  "num_attention_heads", "intermediate_size",
                                                  "max_position_embeddings", "type_vocab_size",
                                                  "pad_token_id")},
                            embed_dim=128, depths=[2, 2, 12, 2], heads=[4, 8, 16, 32], window=8,
                            joint=512)
    path = tmp_path / "music_speech_audioset_epoch_15_esc_89.98.pt"
    torch.save(ckpt, path)
    qkv = ckpt["state_dict"]["module.audio_branch.layers.2.blocks.11.attn.qkv.weight"].clone()
    n_tensors = len(ckpt["state_dict"])
    del ckpt
    set_override("clap", path)
    emb = build_embedder("clap").load()  # strict: every ClapModel tensor comes from the file
    block = emb.model.audio_model.audio_encoder.layers[2].blocks[11].attention.self
    assert torch.equal(block.key.weight, qkv[512:1024])
    print(f"\nPARITY clap: laion-clap layout with {n_tensors} tensors loaded strictly into ClapModel")
