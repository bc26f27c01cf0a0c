"""CLAP score, CLIP score and FAD-CLAP with tiny random models saved to disk and
loaded through the real loading paths (local folder and Hugging Face cache)."""

import json
import shutil

import numpy as np
import pytest
import torch

from copbench.cache import file_sha256
from copbench.embedders.weights import clear_overrides, set_override
from copbench.errors import ChecksumError, WeightsMissingError
from laion_layout import byte_level_tokenizer


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("COPBENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("COPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    clear_overrides()
    yield
    clear_overrides()


def make_tiny_clap(folder):
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel
    tok, vocab_size = byte_level_tokenizer(folder / "tok")
    config = ClapConfig(
        text_config=dict(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1,
                         num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                         projection_dim=16),
        audio_config=dict(depths=[1, 1, 1, 1], num_attention_heads=[1, 1, 2, 2],
                          patch_embeds_hidden_size=8, hidden_size=64, projection_dim=16,
                          window_size=8),
        projection_dim=16)
    torch.manual_seed(0)
    ClapModel(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    ClapFeatureExtractor().save_pretrained(folder)
    shutil.rmtree(folder / "tok")
    return folder


def make_tiny_clip(folder, projection_dim=512):
    from transformers import CLIPConfig, CLIPModel
    config = CLIPConfig(
        text_config=dict(vocab_size=99, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32, max_position_embeddings=16),
        vision_config=dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=32, image_size=32, patch_size=8),
        projection_dim=projection_dim)
    torch.manual_seed(1)
    CLIPModel(config).save_pretrained(folder)
    return folder


def _as_hf_cache(folder, repo, cache_root):
    """Lay ``folder`` out as the Hugging Face cache does (blobs named by sha256)."""
    base = cache_root / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / ("0" * 40)
    (base / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text("0" * 40)
    for f in folder.iterdir():
        blob = base / "blobs" / file_sha256(f)
        shutil.copy(f, blob)
        (snap / f.name).symlink_to(blob)
    return snap


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from copdata import open_dataset
    from copdata.build import build_dataset
    from copdata.sources.base import BuildSettings
    from copdata.sources.synth import SynthSource
    out = tmp_path_factory.mktemp("ds") / "tiny"
    build_dataset(SynthSource(num_items=1, item_seconds=3.0, seed=1, test_fraction=0.0,
                              frame_size=(224, 32)), out, BuildSettings(clip_seconds=2.0),
                  progress=False)
    clips = list(open_dataset(out).clips())
    assert clips, json.loads((out / "report.json").read_text())
    return clips[0]


def test_clap_score_from_hf_cache(tmp_path, clip):
    from copbench.metrics import build_metric
    from copbench.metrics.base import ScoreItem
    folder = make_tiny_clap(tmp_path / "clap")
    _as_hf_cache(folder, "laion/larger_clap_music_and_speech", tmp_path / "hf")
    metric = build_metric("clap_score")
    assert metric.embedder.weights_info["verified_against"] == "hf_blob"
    item = ScoreItem(clip, clip.audio())
    a = metric.score(item)["clap_score"]
    assert -100 <= a <= 100 and a == metric.score(item)["clap_score"]  # deterministic
    sound = next(st["text"] for st in clip.steps() if st["step"] == "sound")
    assert sound.startswith("The result is") and sound != clip.caption  # not the video text
    text = metric.text_embedding(sound)
    # av-benchmark's preparation by hand (AudioDataset.read_from_file): the mean removed,
    # resampled to 48 kHz, cut to int(48000 * 2.0) samples (soxr gives one sample more)
    import librosa
    dc_free = (clip.audio().astype(np.float64) - clip.audio().astype(np.float64).mean())
    at_48k = librosa.resample(dc_free.astype(np.float32), orig_sr=clip.sample_rate,
                              target_sr=48000, res_type="soxr_hq")
    assert at_48k.shape[0] > 96000
    audio = np.asarray(metric.embedder._embed(at_48k[:96000]), np.float64)
    assert audio.shape == (1, 16)
    expected = 100 * text @ (audio.mean(0) / np.linalg.norm(audio.mean(0)))
    # default --clap-text caption: the clip's caption, as av-benchmark scores
    caption = metric.text_embedding(clip.caption)
    pooled = audio.mean(0) / np.linalg.norm(audio.mean(0))
    assert a == pytest.approx(100 * caption @ pooled, rel=1e-5)  # float32 embeddings
    assert metric.settings()["text"] == "caption" and a != pytest.approx(expected)
    sound_metric = build_metric("clap_score", clap_text="sound-step")
    assert sound_metric.score(item)["clap_score"] == pytest.approx(expected, rel=1e-5)
    prompt = build_metric("clap_score", clap_text="solo piano")
    assert prompt.settings()["text_source"] == "a fixed prompt"
    want = 100 * metric.text_embedding("solo piano") @ pooled
    assert prompt.score(item)["clap_score"] == pytest.approx(want, rel=1e-5)
    # FAD with the CLAP embedder goes through the same loader
    fad = build_metric("fad_clap")
    assert fad.embedder.weights_info["sha256"] == metric.embedder.weights_info["sha256"]


def test_clap_corrupted_blob_fails_checksum(tmp_path):
    from copbench.embedders import build_embedder
    folder = make_tiny_clap(tmp_path / "clap")
    snap = _as_hf_cache(folder, "laion/larger_clap_music_and_speech", tmp_path / "hf")
    blob = (snap / "model.safetensors").resolve()
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(ChecksumError):
        build_embedder("clap").load()


def test_clip_score_with_local_weights(tmp_path, clip):
    from copbench.embedders.wav2clip import build_wav2clip
    from copbench.metrics import build_metric
    from copbench.metrics.base import ScoreItem
    from copbench.metrics.clip_score import sample_indices
    with pytest.raises(WeightsMissingError, match="Wav2CLIP.pt"):
        build_metric("clip_score")
    torch.manual_seed(2)
    w2c = tmp_path / "Wav2CLIP.pt"
    torch.save(build_wav2clip().state_dict(), w2c)
    set_override("wav2clip", w2c)
    with pytest.raises(WeightsMissingError, match="openai/clip-vit-base-patch32"):
        build_metric("clip_score")
    set_override("clip", make_tiny_clip(tmp_path / "clip"))
    metric = build_metric("clip_score")
    assert metric.audio_embedder.weights_info["verified_against"] is None  # recorded, unverified
    assert sample_indices(50, 25.0) == [12, 37]
    item = ScoreItem(clip, clip.audio())
    value = metric.score(item)["clip_score"]
    assert -100 <= value <= 100
    assert value == metric.score(item)["clip_score"]
    silent = metric.score(ScoreItem(clip, np.zeros_like(clip.audio())))["clip_score"]
    assert silent != value


def test_clip_tiles_cover_the_whole_keyboard_strip(tmp_path):
    from copbench.embedders.clip_image import ClipImageEmbedder
    set_override("clip", make_tiny_clip(tmp_path / "clip"))
    emb = ClipImageEmbedder().load()
    strip = np.zeros((200, 1840, 3), np.uint8)
    strip[:, -100:] = 255  # only the right end is white: a centre crop would miss it
    tiles = emb.tiles(strip)
    assert tiles.shape == (10, 3, 32, 32)  # 1840x200 -> 294x32 -> ceil(294 / 32) = 10 tiles
    assert tiles[-1].max() > tiles[0].max()  # the last tile reaches the right edge
    square = emb.tiles(np.zeros((64, 64, 3), np.uint8))
    assert square.shape == (1, 3, 32, 32)
    frames = emb.embed_frames([strip, strip[:, ::-1]])
    assert frames.shape == (2, 512) and np.allclose(np.linalg.norm(frames, axis=1), 1)


def test_clip_tiles_are_clips_own_preprocessing(tmp_path):
    """Oracle: transformers' CLIPImageProcessor (PIL bicubic resize of the shorter side,
    centre crop, rescale, normalise) on frames of real pixels (noise: resizing without
    antialiasing would alias it). A square frame is one tile equal to its pixels; a wide
    frame whose tiles are an odd number has its middle tile equal to CLIP's centre crop."""
    import cv2
    from transformers import CLIPImageProcessor
    from copbench.embedders.clip_image import ClipImageEmbedder
    set_override("clip", make_tiny_clip(tmp_path / "clip"))
    emb = ClipImageEmbedder().load()
    processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    rng = np.random.default_rng(0)
    square = rng.integers(0, 256, (97, 97, 3), dtype=np.uint8)
    wide = rng.integers(0, 256, (40, 96, 3), dtype=np.uint8)  # -> 76x32: tiles at 0, 22, 44
    for frame, tile in ((square, 0), (wide, 1)):
        want = processor(images=frame, return_tensors="np")["pixel_values"][0]
        got = emb.tiles(frame)[tile]
        assert got.shape == want.shape and np.abs(got - want).max() < 1e-5
    # teeth: the pre-2.0 OpenCV bicubic (no antialiasing) is not CLIP's preprocessing
    old = cv2.resize(square, (32, 32), interpolation=cv2.INTER_CUBIC).astype(np.float32) / 255
    old = ((old - np.asarray(emb.mean, np.float32)) / np.asarray(emb.std, np.float32)).transpose(2, 0, 1)
    assert np.abs(old - emb.tiles(square)[0]).max() > 0.1


def test_laion_clap_layout_maps_onto_transformers_clap(tmp_path):
    from transformers import ClapConfig, ClapModel
    from copbench.embedders.clap import ClapEmbedder
    from copbench.embedders.torch_io import read_state_dict
    from laion_layout import laion_clap_state
    text_cfg = dict(vocab_size=70, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=32, max_position_embeddings=64, type_vocab_size=1,
                    pad_token_id=1)
    ckpt = laion_clap_state(text_cfg, embed_dim=8, depths=[2, 2, 1, 1], heads=[1, 1, 2, 2],
                            window=8, joint=16)
    path = tmp_path / "music_speech_audioset_epoch_15_esc_89.98.pt"
    torch.save(ckpt, path)
    mapped = ClapEmbedder().convert_state(read_state_dict(path))
    config = ClapConfig(text_config={**text_cfg, "projection_dim": 16},
                        audio_config=dict(depths=[2, 2, 1, 1], num_attention_heads=[1, 1, 2, 2],
                                          patch_embeds_hidden_size=8, hidden_size=64,
                                          projection_dim=16, window_size=8),
                        projection_dim=16)
    model = ClapModel(config)
    # the real full-size buffers convert_state adds are for the default model: use ours
    for key in ("text_model.embeddings.position_ids", "text_model.embeddings.token_type_ids"):
        mapped[key] = model.state_dict()[key]
    model.load_state_dict(mapped, strict=True)  # every tensor filled, nothing left over
    src = ckpt["state_dict"]
    qkv = src["module.audio_branch.layers.1.blocks.1.attn.qkv.weight"]
    got = model.audio_model.audio_encoder.layers[1].blocks[1].attention.self
    assert torch.equal(got.query.weight, qkv[:16]) and torch.equal(got.value.weight, qkv[32:])
    assert torch.equal(model.audio_projection.linear2.weight, src["module.audio_projection.2.weight"])
    assert torch.equal(model.text_model.embeddings.word_embeddings.weight,
                       src["module.text_branch.embeddings.word_embeddings.weight"])
    assert torch.equal(model.audio_model.audio_encoder.batch_norm.running_var,
                       src["module.audio_branch.bn0.running_var"])
    model.eval()
    with torch.inference_mode():
        feats = model.get_audio_features(input_features=torch.randn(1, 1, 1001, 64))
    assert torch.isfinite(feats.pooler_output if hasattr(feats, "pooler_output") else feats).all()
