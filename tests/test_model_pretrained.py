"""Pretrained components from local folders (random weights of the real
architectures, saved with transformers): CLIP sees the whole keyboard strip,
EnCodec/DAC latents round-trip, missing weights are a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from copmodel.audio import build_audio, round_trip
from copmodel.errors import WeightsNotFoundError
from copmodel.presets import AudioConfig, get_preset, load_config
from copmodel.video import clip_image_features, square_tiles


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    out = tmp_path_factory.mktemp("clip")
    torch.manual_seed(0)
    cfg = CLIPConfig(projection_dim=16,
                     vision_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1, projection_dim=16,
                                        num_attention_heads=2, image_size=32, patch_size=8),
                     text_config=dict(hidden_size=32, intermediate_size=37, num_hidden_layers=1,
                                      num_attention_heads=2, vocab_size=99))
    CLIPModel(cfg).save_pretrained(out)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(out)
    return out


def test_square_tiles_cover_the_whole_strip():
    strip = np.arange(20 * 90 * 3, dtype=np.int64).reshape(20, 90, 3)
    tiles = square_tiles(strip)
    assert len(tiles) == 5 and all(t.shape == (20, 20, 3) for t in tiles)
    joined = np.concatenate(tiles, axis=1)
    assert np.array_equal(joined[:, :90], strip) and not joined[:, 90:].any()
    assert len(square_tiles(strip.transpose(1, 0, 2))) == 5


def test_clip_features_change_with_content_at_the_left_edge(clip_dir):
    rng = np.random.default_rng(0)
    strip = rng.integers(0, 255, (2, 40, 368, 3), dtype=np.uint8)  # a 1840x200-like aspect
    edited = strip.copy()
    edited[:, :, :30] = 255 - edited[:, :, :30]  # the leftmost 8 % only
    spec = f"clip:{clip_dir}"
    a, b = clip_image_features(strip, spec), clip_image_features(edited, spec)
    assert a.shape == (2, 16)
    assert not np.allclose(a, b, rtol=1e-4, atol=1e-6)
    right = strip.copy()
    right[:, :, -30:] = 255 - right[:, :, -30:]
    assert not np.allclose(a, clip_image_features(right, spec), rtol=1e-4, atol=1e-6)


def test_missing_weights_name_the_places_and_the_builtin_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("COPBENCH_WEIGHTS", str(tmp_path / "weights"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    cfg = get_preset("base")
    from copmodel.model import CoPModel

    with pytest.raises(WeightsNotFoundError) as err:
        CoPModel(cfg)
    msg = str(err.value)
    assert "openai/clip-vit-base-patch32" in msg and "--set net.video_encoder=cnn" in msg
    assert str(tmp_path / "weights") in msg
    builtin = load_config("base", ["net.video_encoder=cnn", "net.text_encoder=builtin",
                                   "net.dim=32", "net.depth=1", "net.heads=2"])
    CoPModel(builtin)  # the built-in encoders, asked for explicitly, need no weights


def _codec_dir(tmp_path, kind):
    torch.manual_seed(0)
    if kind == "encodec":
        from transformers import EncodecConfig, EncodecModel

        cfg = EncodecConfig(num_filters=4, upsampling_ratios=[4, 4], hidden_size=8,
                            codebook_size=16, num_lstm_layers=1, sampling_rate=16000,
                            target_bandwidths=[1.5])
        EncodecModel(cfg).save_pretrained(tmp_path / kind)
        return AudioConfig(representation=f"encodec:{tmp_path / kind}", sample_rate=16000, hop=16)
    from transformers import DacConfig, DacModel

    cfg = DacConfig(encoder_hidden_size=4, downsampling_ratios=[2, 4], decoder_hidden_size=16,
                    hidden_size=8, codebook_size=16, n_codebooks=2, codebook_dim=4,
                    sampling_rate=16000)
    DacModel(cfg).save_pretrained(tmp_path / kind)
    return AudioConfig(representation=f"dac:{tmp_path / kind}", sample_rate=16000, hop=8)


@pytest.mark.parametrize("kind", ["encodec", "dac"])
def test_codec_latents_from_a_local_folder(tmp_path, kind):
    rep = build_audio(_codec_dir(tmp_path, kind))
    audio = np.sin(np.linspace(0, 400, 4000)).astype(np.float32) * 0.3
    feats = rep.encode(torch.from_numpy(audio)[None], 4000 // rep.hop)
    assert feats.shape == (1, rep.channels, 4000 // rep.hop)
    out = round_trip(audio, 16000, rep)
    assert out.shape == audio.shape and np.isfinite(out).all()


def test_missing_codec_is_a_clear_error(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="audio.representation=stft"):
        build_audio(AudioConfig(representation=f"encodec:{tmp_path / 'nothing'}"))
