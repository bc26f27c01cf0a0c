"""copdata.qa.tfckpt and copdata.qa.timbre against TensorFlow and musicnn's own code.

Oracles: ``tests/fixtures/`` was written by ``tools/musicnn_reference.py`` with
TensorFlow 2.15 and musicnn 0.1.0 (nothing of copdata imported): a tiny
checkpoint with the values TensorFlow reads back from it, musicnn's logits on
seeded patches and ``musicnn.extractor.extractor``'s taggram of a seeded tone
sequence. The claim rule is checked on cases worked by hand.
"""

from __future__ import annotations

import json
import struct
import shutil
from pathlib import Path

import numpy as np
import pytest

from copdata.qa import stage, timbre
from copdata.qa.tfckpt import CheckpointError, index_entries, read_checkpoint

FIXTURES = Path(__file__).parent / "fixtures"
TINY = FIXTURES / "tfckpt_tiny"


def tone_sequence(seconds: float = 7.0, sr: int = 16000) -> np.ndarray:
    """The input of the extractor fixture: ``tools/musicnn_reference.py``'s
    ``tone_sequence``, restated (seeded decaying harmonic tones, float32)."""
    rng = np.random.default_rng(20261207)
    t = np.arange(int(seconds * sr)) / sr
    out = np.zeros_like(t)
    for start in np.arange(0.0, seconds - 0.5, 0.25):
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)
        env = np.where(t >= start, np.exp(-(t - start) * 3.0), 0.0)
        for k in range(1, 6):
            out += env * np.sin(2 * np.pi * f0 * k * (t - start)) / k
    return (0.3 * out / np.abs(out).max()).astype(np.float32)


def _installed_weights() -> Path:
    try:
        return timbre.weights_dir()
    except timbre.TimbreModelError as exc:  # `make install` installs it; a bare checkout may not
        pytest.skip(str(exc))


# -- the checkpoint reader ----------------------------------------------------------------------

def test_reader_returns_what_tensorflow_reads_back():
    expected = json.loads((FIXTURES / "tfckpt_tiny.json").read_text())
    got = read_checkpoint(TINY)
    assert set(got) == set(expected) and len(got) == 300
    dtypes = set()
    for name, want in expected.items():
        value = got[name]
        dtypes.add(str(value.dtype))
        assert str(value.dtype) == want["dtype"], name
        assert list(value.shape) == want["shape"], name
        assert np.array_equal(value.ravel(), np.array(want["values"], dtype=value.dtype)), name
    assert dtypes == {"float32", "float64", "float16", "int32", "int64", "bool"}


def test_reader_spans_several_index_blocks():
    # 300 names sharing long prefixes do not fit one 4 KiB block: the index has several,
    # and the entries within a block are prefix-compressed (a wrong "shared" length
    # would garble every name after the block's first)
    size = (FIXTURES / "tfckpt_tiny.index").stat().st_size
    assert size > 2 * 4096
    names = sorted(index_entries(TINY))
    assert names == sorted(json.loads((FIXTURES / "tfckpt_tiny.json").read_text()))


def _copy(tmp_path: Path) -> Path:
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(f"{TINY}{suffix}", tmp_path / f"ck{suffix}")
    return tmp_path / "ck"


def test_reader_refuses_a_file_that_is_not_a_checkpoint(tmp_path):
    prefix = _copy(tmp_path)
    index = Path(f"{prefix}.index")
    raw = bytearray(index.read_bytes())
    raw[-1] ^= 0xFF  # the table magic
    index.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="magic"):
        read_checkpoint(prefix)
    index.write_bytes(b"short")
    with pytest.raises(CheckpointError, match="shorter"):
        read_checkpoint(prefix)


def test_reader_refuses_compressed_blocks(tmp_path):
    prefix = _copy(tmp_path)
    index = Path(f"{prefix}.index")
    raw = bytearray(index.read_bytes())
    # the first data block starts at 0; its trailer's type byte follows its size,
    # which the index block's first handle gives: find it by reading the footer
    footer = raw[-48:]
    from copdata.qa.tfckpt import _block, _varint
    pos = 0
    for _ in range(2):
        _, pos = _varint(bytes(footer), pos)
    index_offset, pos = _varint(bytes(footer), pos)
    index_size, _ = _varint(bytes(footer), pos)
    handle = _block(bytes(raw), index_offset, index_size)[0][1]
    offset, p = _varint(handle, 0)
    size, _ = _varint(handle, p)
    raw[offset + size] = 1  # snappy
    index.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="compressed"):
        read_checkpoint(prefix)


def test_reader_checks_sizes_names_and_files(tmp_path):
    prefix = _copy(tmp_path)
    with pytest.raises(CheckpointError, match="not in the checkpoint"):
        read_checkpoint(prefix, ["no/such/variable"])
    data = Path(f"{prefix}.data-00000-of-00001")
    data.write_bytes(data.read_bytes()[:100])  # truncated: tensors past byte 100 are gone
    with pytest.raises(CheckpointError, match="do not hold"):
        read_checkpoint(prefix)
    data.unlink()
    with pytest.raises(CheckpointError, match="cannot read"):
        read_checkpoint(prefix)
    with pytest.raises(CheckpointError, match="cannot read"):
        read_checkpoint(tmp_path / "absent")


# -- the network and its input ---------------------------------------------------------------------

def test_network_equals_musicnn_tensorflow_on_the_same_patches():
    import torch

    folder = _installed_weights()
    reference = json.loads((FIXTURES / "musicnn_reference.json").read_text())
    model = timbre.PianoTimbre(folder)
    patches = np.random.default_rng(reference["patch_seed"]).uniform(0.0, 4.0, (3, 187, 96))
    with torch.inference_mode():
        logits = model.network(torch.from_numpy(patches.astype(np.float32))).numpy()
    want = np.array(reference["patch_logits"])
    # float32 convolutions summed in another order: ~1e-6 of the logits' scale
    assert np.abs(logits - want).max() <= 1e-5 * np.abs(want).max()


def test_tags_equal_musicnn_extractor_on_a_tone_sequence():
    folder = _installed_weights()
    reference = json.loads((FIXTURES / "musicnn_reference.json").read_text())
    assert list(timbre.MTT_LABELS) == reference["labels"]
    audio = tone_sequence()
    model = timbre.PianoTimbre(folder)
    taggram = np.array(reference["tones_taggram"])  # (patches, tags), musicnn's own pipeline
    tags = model.tags(audio, 16000)
    got = np.array([tags[label] for label in timbre.MTT_LABELS])
    assert np.abs(got - taggram.mean(axis=0)).max() <= 2e-5
    measured = model.measure(audio, 16000)
    features, _ = model.embed(audio, 16000)
    assert measured["piano_timbre"] == round(model.probe(features), 4)
    assert measured["timbre_piano"] == round(tags["piano"], 4)
    assert measured["timbre_harp"] == round(tags["harp"], 4)


def test_features_equal_musicnn_penultimate_on_a_tone_sequence():
    import torch

    folder = _installed_weights()
    reference = json.loads((FIXTURES / "musicnn_reference.json").read_text())
    model = timbre.PianoTimbre(folder)
    patches = timbre.mel_patches(tone_sequence(), 16000)
    with torch.inference_mode():
        hidden, _ = model.network.features(torch.from_numpy(patches))
    # the extractor's features["penultimate"]: its first row is the first patch's (later
    # rows repeat it: an upstream bug, see tools/musicnn_reference.py)
    first = np.array(reference["tones_penultimate"])[0]
    assert hidden.shape == (2, timbre.PENULTIMATE)
    assert np.abs(hidden.numpy()[0] - first).max() <= 1e-5 * np.abs(first).max()
    # every patch's own, from musicnn's graph on the seeded patches
    seeded = np.random.default_rng(reference["patch_seed"]).uniform(0.0, 4.0, (3, 187, 96))
    with torch.inference_mode():
        hidden, _ = model.network.features(torch.from_numpy(seeded.astype(np.float32)))
    want = np.array(reference["patch_penultimate"])
    assert np.abs(hidden.numpy() - want).max() <= 1e-5 * np.abs(want).max()
    features, _ = model.embed(tone_sequence(), 16000)  # the mean of the patches'
    with torch.inference_mode():
        per_patch, _ = model.network.features(torch.from_numpy(patches))
    assert np.allclose(features, per_patch.numpy().mean(axis=0), rtol=0, atol=1e-6)


def test_probe_is_a_logistic_function_of_the_features():
    # worked by hand: w = (2, -1, 0...), b = 0.5, x = (1, 3, 9...): z = 2 - 3 + 0.5 = -0.5
    weights = np.zeros(timbre.PENULTIMATE)
    weights[:2] = (2.0, -1.0)
    probe = timbre.PianoProbe(weights, 0.5, 0.7)
    x = np.full(timbre.PENULTIMATE, 9.0)
    x[:2] = (1.0, 3.0)
    assert probe(x) == pytest.approx(1 / (1 + np.exp(0.5)), rel=1e-12)
    assert probe(-x) == pytest.approx(1 / (1 + np.exp(-(-2 + 3 + 0.5))), rel=1e-12)
    big = np.zeros(timbre.PENULTIMATE)
    big[0] = 1e4  # no overflow either way
    assert probe(big) == 1.0 and probe(-big) == 0.0
    again = timbre.PianoProbe.from_dict(json.loads(json.dumps(probe.to_dict())))
    assert np.array_equal(again.weights, weights) and again.threshold == 0.7


@pytest.mark.parametrize("bad", [
    {"weights": [0.0] * 199, "bias": 0.0, "threshold": 0.5},
    {"weights": [0.0] * 199 + [float("nan")], "bias": 0.0, "threshold": 0.5},
    {"weights": [0.0] * 200, "bias": 0.0, "threshold": 1.5},
    {"weights": [0.0] * 200, "bias": float("inf"), "threshold": 0.5},
])
def test_a_malformed_probe_is_refused(tmp_path, bad):
    path = tmp_path / "probe.json"
    path.write_text(json.dumps(bad))
    with pytest.raises(timbre.TimbreModelError):
        timbre.load_probe(path)
    path.write_text("{not json")
    with pytest.raises(timbre.TimbreModelError, match="cannot read"):
        timbre.load_probe(path)


def test_the_shipped_probe_and_the_claim_threshold_agree():
    probe = timbre.load_probe()
    assert stage.CLAIM_PIANO_TIMBRE == probe.threshold
    assert probe.fit["l2"] > 0 and probe.fit["loso_dev_roc_auc"] >= 0.99
    assert probe.weights.shape == (timbre.PENULTIMATE,)


def test_patches_follow_musicnn_batching():
    # 7 s at 16 kHz, hop 256: 438 frames -> two whole 187-frame patches, the tail dropped
    audio = tone_sequence()
    patches = timbre.mel_patches(audio, 16000)
    assert patches.shape == (2, 187, 96) and patches.dtype == np.float32
    # a loud tone: the float16 mel times 10000 would overflow float16 (numpy 2's rule);
    # musicnn ran under numpy 1, which computes that line in float32
    t = np.arange(16000 * 4) / 16000
    loud = timbre.mel_patches(np.sin(2 * np.pi * 440 * t).astype(np.float32), 16000)
    assert np.isfinite(loud).all() and loud.max() > np.log10(65504.0 + 1)


def test_a_clip_shorter_than_a_patch_is_repeated():
    rng = np.random.default_rng(3)
    audio = rng.normal(scale=0.1, size=16000).astype(np.float32)  # 1 s: 63 frames
    patches = timbre.mel_patches(audio, 16000)
    assert patches.shape == (1, 187, 96)
    assert np.array_equal(patches[0, 63:126], patches[0, :63])
    assert np.array_equal(patches[0, 126:187], patches[0, :61])
    with pytest.raises(ValueError):
        timbre.mel_patches(np.zeros(0, np.float32), 16000)


def test_stereo_and_other_rates_are_mixed_and_resampled():
    audio = tone_sequence()
    stereo = np.stack([audio, audio])
    assert np.array_equal(timbre.mel_patches(stereo, 16000), timbre.mel_patches(audio, 16000))
    import librosa
    up = librosa.resample(audio, orig_sr=16000, target_sr=44100, res_type="soxr_hq")
    a, b = timbre.mel_patches(up, 44100), timbre.mel_patches(audio, 16000)
    assert a.shape == b.shape and np.abs(a - b).mean() < 0.02  # resampled twice: close, not equal


# -- loading: checksums, errors ------------------------------------------------------------------

def test_weights_are_checked_before_use(tmp_path, monkeypatch):
    folder = _installed_weights()
    copy = tmp_path / "MTT_musicnn"
    shutil.copytree(folder, copy)
    data = copy / ".data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[1234] ^= 1
    data.write_bytes(bytes(raw))
    with pytest.raises(timbre.TimbreModelError, match="sha256"):
        timbre.PianoTimbre(copy)
    (copy / ".index").unlink()
    with pytest.raises(timbre.TimbreModelError, match="missing"):
        timbre.PianoTimbre(copy)
    monkeypatch.setenv(timbre.ENV_DIR, str(tmp_path / "nowhere"))
    assert timbre.weights_dir() == tmp_path / "nowhere"
    with pytest.raises(timbre.TimbreModelError, match="missing"):
        timbre.PianoTimbre()


def test_load_refuses_a_checkpoint_of_another_shape():
    network = timbre.build_network()
    tensors = read_checkpoint(f"{_installed_weights()}/")
    with pytest.raises(timbre.TimbreModelError, match="lacks"):
        timbre.load_tf_weights(network, {k: v for k, v in tensors.items() if k != "dense_1/bias"})
    wrong = dict(tensors, **{"dense_1/bias": np.zeros(49, np.float32)})
    with pytest.raises(timbre.TimbreModelError, match="does not fit"):
        timbre.load_tf_weights(timbre.build_network(), wrong)


# -- the claim rule ----------------------------------------------------------------------------

ROW = {"piano_score": 0.9, "keyboard_score": 0.0, "piano_pitches": 12}


@pytest.mark.parametrize("timbre_value, claim_timbre, expected", [
    (0.30, 0.30, True),   # at the threshold
    (0.2999, 0.30, False),
    (None, 0.30, False),  # not measured: no claim
    ("missing", 0.30, False),
    (-0.5, None, True),   # a rendered source: timbre not required
])
def test_solo_piano_needs_the_timbre_on_recorded_sources(timbre_value, claim_timbre, expected):
    row = dict(ROW) if timbre_value == "missing" else dict(ROW, piano_timbre=timbre_value)
    assert stage.claims(row, 0.8, 0.5, claim_timbre)["solo_piano"] is expected
    # the other conditions still hold on their own
    assert stage.claims(dict(row, piano_score=0.79), 0.8, 0.5, claim_timbre)["solo_piano"] is False
    assert stage.claims(dict(row, piano_pitches=5), 0.8, 0.5, claim_timbre)["solo_piano"] is False


def test_without_the_model_the_timbre_is_not_measured(monkeypatch, tmp_path):
    monkeypatch.setenv(timbre.ENV_DIR, str(tmp_path / "nowhere"))
    monkeypatch.setattr(stage, "_TIMBRE", {})
    audio = tone_sequence()
    assert stage.measure_timbre(audio, 16000) == {"piano_timbre": None}
    status = stage.timbre_status()
    assert status["name"] == timbre.MODEL and "nowhere" in status["error"]


def test_the_card_says_what_each_claim_needs():
    assert "no claim" in stage.claims_card_lines(None)[0]
    rendered = {"claim_keyboard": 0.5, "claim_keyboard_keys": 49, "claim_piano": 0.5,
                "claim_piano_pitches": 6, "claim_piano_timbre": None}
    lines = stage.claims_card_lines(rendered)
    assert "keyboard_score >= 0.5" in lines[0] and "49 keys" in lines[0]
    assert "ground truth" in lines[1] and "timbre" not in lines[1]
    recorded = dict(rendered, claim_piano=0.4, claim_piano_timbre=0.81,
                    timbre_model={"name": "MTT_musicnn", "source": "/x"})
    line = stage.claims_card_lines(recorded)[1]
    assert "piano_score >= 0.4" in line and "piano_timbre >= 0.81" in line
    assert stage.PIANO_CLAIM_MEASURED in line
    missing = dict(recorded, timbre_model={"name": "MTT_musicnn", "error": "not installed"})
    line = stage.claims_card_lines(missing)[1]
    assert "no clip claims solo piano" in line and "not installed" in line
    assert stage.PIANO_CLAIM_MEASURED not in line


# -- the reader on hostile bytes (cases worked by hand from the protobuf / LevelDB formats) ----

def test_varints_are_bounded():
    from copdata.qa.tfckpt import _varint

    assert _varint(b"\x96\x01", 0) == (150, 2)  # the protobuf documentation's example
    assert _varint(b"\xff" * 9 + b"\x01", 0) == (2 ** 64 - 1, 10)  # the largest: shift 63 last
    with pytest.raises(CheckpointError, match="truncated"):
        _varint(b"\x80", 0)
    with pytest.raises(CheckpointError, match="truncated"):
        _varint(b"\x01", 1)  # nothing left at the position
    with pytest.raises(CheckpointError, match="64 bits"):
        _varint(b"\xff" * 10 + b"\x01", 0)


def test_protobuf_fields_of_every_wire_type():
    from copdata.qa.tfckpt import _fields

    msg = (b"\x08\x96\x01"                      # field 1, varint 150
           + b"\x12\x03abc"                      # field 2, bytes
           + b"\x35" + struct.pack("<I", 7)      # field 6, fixed32
           + b"\x39" + struct.pack("<Q", 2 ** 40 + 3))  # field 7, fixed64
    assert _fields(msg) == [(1, 150), (2, b"abc"), (6, 7), (7, 2 ** 40 + 3)]
    with pytest.raises(CheckpointError, match="wire type 3"):
        _fields(b"\x0b")  # field 1, start group: not in a bundle entry


def test_bundle_entry_fields():
    from copdata.qa.tfckpt import _entry

    dim = lambda n: b"\x12" + bytes([len(b"\x08" + bytes([n]))]) + b"\x08" + bytes([n])
    shape = dim(2) + dim(3)
    value = (b"\x08\x01" + b"\x12" + bytes([len(shape)]) + shape
             + b"\x18\x02" + b"\x20\x0a" + b"\x28\x18" + b"\x35\x00\x00\x00\x00")
    assert _entry(value) == {"dtype": 1, "shape": [2, 3], "shard_id": 2, "offset": 10,
                             "size": 24, "slices": False}
    assert _entry(value + b"\x3a\x00")["slices"] is True  # field 7: a slice spec
    assert _entry(b"")["shape"] == [] and _entry(b"")["size"] == 0
    assert _entry(b"\x12\x02\x12\x00")["shape"] == [0]  # a dim without a size is 0
    with pytest.raises(CheckpointError, match="unknown rank"):
        _entry(b"\x12\x02\x18\x01")


def test_errors_name_the_file(tmp_path):
    prefix = _copy(tmp_path)
    with pytest.raises(CheckpointError) as missing:
        read_checkpoint(tmp_path / "absent")
    assert missing.value.item == str(tmp_path / "absent.index")
    index = Path(f"{prefix}.index")
    good = index.read_bytes()
    index.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))
    with pytest.raises(CheckpointError) as magic:
        read_checkpoint(prefix)
    assert magic.value.item == str(index)
    index.write_bytes(good[-47:])
    with pytest.raises(CheckpointError, match="shorter") as short:
        read_checkpoint(prefix)
    assert short.value.item == str(index)
    index.write_bytes(good[-48:])  # a bare footer: its handles point outside the file
    with pytest.raises(CheckpointError, match="outside") as outside:
        read_checkpoint(prefix)
    assert outside.value.item == str(index)
    index.write_bytes(good)
    with pytest.raises(CheckpointError) as absent:
        read_checkpoint(prefix, ["nope"])
    assert absent.value.item == str(prefix) and "nope" in str(absent.value)
    data = Path(f"{prefix}.data-00000-of-00001")
    data.write_bytes(b"")
    with pytest.raises(CheckpointError, match="do not hold") as empty:
        read_checkpoint(prefix)
    assert empty.value.item == str(prefix)
    data.unlink()
    with pytest.raises(CheckpointError) as gone:
        read_checkpoint(prefix)
    assert gone.value.item == str(data)


def test_an_unsupported_dtype_or_a_sliced_tensor_is_refused(tmp_path):
    prefix = _copy(tmp_path)
    index = Path(f"{prefix}.index")
    raw = index.read_bytes()
    at = raw.index(b"\x08\x01\x12")  # an entry's dtype (float32) followed by its shape
    index.write_bytes(raw[:at] + b"\x08\x07" + raw[at + 2:])  # DT_STRING, same length
    with pytest.raises(CheckpointError, match="dtype enum 7") as bad:
        read_checkpoint(prefix)
    assert bad.value.item == str(prefix)
    assert all(e["dtype"] in (1, 2, 3, 7, 9, 10, 19) for e in index_entries(prefix).values())


def test_block_bounds_are_checked():
    from copdata.qa.tfckpt import _block

    buf = bytes(20)
    with pytest.raises(CheckpointError, match="outside"):
        _block(buf, -1, 8)
    with pytest.raises(CheckpointError, match="outside"):
        _block(buf, 0, 16)  # 16 + 5 trailer bytes > 20
    with pytest.raises(CheckpointError, match="outside"):
        _block(buf, 0, 3)  # shorter than the restart count
    assert _block(bytes(9), 0, 4) == []  # exactly the restart count: an empty block
    with pytest.raises(CheckpointError, match="restart count"):
        _block(struct.pack("<I", 2) + bytes(5), 0, 4)  # 2 restarts need 8 more bytes
    # one entry: shared 0, unshared 1, value 1, key "k", value "v"; one restart at 0
    block = b"\x00\x01\x01kv" + struct.pack("<I", 0) + struct.pack("<I", 1)
    assert _block(block + bytes(5), 0, len(block)) == [(b"k", b"v")]
    # a second entry sharing 1 byte of the key: "k" + "2"
    block2 = (b"\x00\x01\x01kv" + b"\x01\x01\x01\x32w" + struct.pack("<I", 0)
              + struct.pack("<I", 1))
    assert _block(block2 + bytes(5), 0, len(block2)) == [(b"k", b"v"), (b"k2", b"w")]
    bad = b"\x02\x01\x01kv" + struct.pack("<I", 0) + struct.pack("<I", 1)  # shares 2 of 0
    with pytest.raises(CheckpointError, match="bad entry"):
        _block(bad + bytes(5), 0, len(bad))
    long = b"\x00\x01\x09kv" + struct.pack("<I", 0) + struct.pack("<I", 1)  # value past end
    with pytest.raises(CheckpointError, match="bad entry"):
        _block(long + bytes(5), 0, len(long))


# -- the probe, the loader and the patches on cases worked by hand (mutation survivors) ---------

def test_probe_round_trip_keeps_every_field_and_the_threshold_bounds():
    # a round trip through JSON is the identity, the bounds of [0, 1] included
    weights = np.linspace(-1.0, 1.0, timbre.PENULTIMATE)
    for threshold in (0.0, 1.0):
        probe = timbre.PianoProbe(weights, -0.25, threshold, {"l2": 0.5, "by": "hand"})
        again = timbre.PianoProbe.from_dict(json.loads(json.dumps(probe.to_dict())))
        assert np.array_equal(again.weights, weights) and again.weights.dtype == np.float64
        assert again.bias == -0.25 and again.threshold == threshold
        assert again.fit == {"l2": 0.5, "by": "hand"}
    assert timbre.PianoProbe.from_dict({"weights": [0.0] * 200, "bias": 0, "threshold": 0.5}).fit == {}
    with pytest.raises(timbre.TimbreModelError, match="200 finite weights"):  # JSON nulls
        timbre.PianoProbe.from_dict({"weights": [None] * 200, "bias": 0.0, "threshold": 0.5})


def test_probe_sums_in_float64_whatever_the_caller_passes():
    # float32 weights and features of magnitude ~1e3: their products (~1e6) are exact in
    # float64, so math.fsum of them is z to the last bit; a float32 dot product of 200 of
    # them is off by ~0.1, a float64 one by ~1e-9
    import math

    rng = np.random.default_rng(11)
    weights = (rng.uniform(-1.0, 1.0, timbre.PENULTIMATE) * 1000).astype(np.float32)
    features = (rng.uniform(-1.0, 1.0, timbre.PENULTIMATE) * 1000).astype(np.float32)
    exact = math.fsum(float(w) * float(x) for w, x in zip(weights, features))
    bias = -float(round(exact))  # z = exact + bias in [-0.5, 0.5]: the logistic's steep part
    z = exact + bias
    got = timbre.PianoProbe(weights, bias, 0.5)(features)
    assert abs(got - 1.0 / (1.0 + math.exp(-z))) < 1e-6


def test_probe_of_a_very_negative_z_is_its_exponential_without_overflow():
    # sigmoid(z) = e^z / (1 + e^z), and 1 + e^-720 == 1 in float64: sigmoid(-720) is
    # e^-720 (a subnormal, not 0); 1 / (1 + e^720) would overflow to 1 / inf = 0
    import math
    import warnings

    weights = np.zeros(timbre.PENULTIMATE)
    weights[0] = 1.0
    x = np.zeros(timbre.PENULTIMATE)
    x[0] = -720.0
    probe = timbre.PianoProbe(weights, 0.0, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in np.exp warns
        got = probe(x)
        assert probe(-x) == 1.0
    assert got > 0.0 and got == pytest.approx(math.exp(-720.0), rel=1e-9)


def test_measure_rounds_the_probe_to_four_decimals():
    # a probe with zero weights and bias 0.3: piano_timbre = sigmoid(0.3) = 0.574442516...,
    # whatever the audio; the tags' probabilities are rounded to 4 decimals as well
    folder = _installed_weights()
    probe = timbre.PianoProbe(np.zeros(timbre.PENULTIMATE), 0.3, 0.5)
    model = timbre.PianoTimbre(folder, probe=probe)
    assert model.probe is probe
    audio = tone_sequence()
    measured = model.measure(audio, 16000)
    assert measured["piano_timbre"] == 0.5744
    tags = model.tags(audio, 16000)
    for key, tag in (("timbre_piano", "piano"), ("timbre_harp", "harp")):
        assert abs(measured[key] - tags[tag]) <= 0.5e-4 + 1e-12
        assert measured[key] == float(f"{measured[key]:.4f}")


def test_patches_are_whole_187_frame_windows():
    # librosa's centred frames: n samples give 1 + n // 256 frames; 372 * 256 samples are
    # 373 frames (one patch, 186 frames left over), 373 * 256 are 374 (exactly two)
    t = np.arange(373 * 256) / 16000
    audio = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    assert timbre.mel_patches(audio[:372 * 256], 16000).shape == (1, 187, 96)
    assert timbre.mel_patches(audio[:372 * 256 - 1], 16000).shape == (1, 187, 96)
    assert timbre.mel_patches(audio, 16000).shape == (2, 187, 96)


def test_float64_audio_is_read_as_float32():
    # musicnn reads audio with librosa.load, float32: a float64 copy of the same samples
    # gives the same patches, bit for bit
    audio = tone_sequence()
    assert np.array_equal(timbre.mel_patches(audio.astype(np.float64), 16000),
                          timbre.mel_patches(audio, 16000))
    with pytest.raises(ValueError, match=r"\(2, 3, 4\)"):
        timbre.mel_patches(np.zeros((2, 3, 4), np.float32), 16000)


def test_load_errors_name_the_model_and_the_parameter():
    import torch

    tensors = read_checkpoint(f"{_installed_weights()}/")
    with pytest.raises(timbre.TimbreModelError, match="lacks dense_1/bias") as lacks:
        timbre.load_tf_weights(timbre.build_network(),
                               {k: v for k, v in tensors.items() if k != "dense_1/bias"})
    assert lacks.value.item == timbre.MODEL
    wrong = dict(tensors, **{"dense_1/bias": np.zeros(49, np.float32)})
    with pytest.raises(timbre.TimbreModelError, match=r"out.bias.*\(49,\).*\(50,\)") as shape:
        timbre.load_tf_weights(timbre.build_network(), wrong)
    assert shape.value.item == timbre.MODEL
    # a network without musicnn's parameters: nothing for them to fit
    with pytest.raises(timbre.TimbreModelError, match="does not fit nothing") as other:
        timbre.load_tf_weights(torch.nn.Linear(2, 2), tensors)
    assert other.value.item == timbre.MODEL
    # strict: a parameter the checkpoint does not fill is an error, not left random
    network = timbre.build_network()
    network.extra = torch.nn.Linear(2, 2)
    with pytest.raises(RuntimeError, match="extra.weight"):
        timbre.load_tf_weights(network, tensors)


def test_loading_records_the_checked_files_and_runs_on_one_thread():
    import hashlib

    import torch

    folder = _installed_weights()
    model = timbre.PianoTimbre(folder)
    digests = {f"sha256{suffix}": hashlib.sha256((folder / suffix).read_bytes()).hexdigest()
               for suffix in (".index", ".data-00000-of-00001")}
    assert model.weights == {"source": str(folder), **digests}
    # one intra-op thread while the network runs, the caller's count restored after
    assert model.threads == 1
    seen = []
    model.network.out.register_forward_hook(lambda *_: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        model.tags(tone_sequence(3.5), 16000)
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_file_errors_name_the_file(tmp_path):
    folder = _installed_weights()
    copy = tmp_path / "MTT_musicnn"
    shutil.copytree(folder, copy)
    data = copy / ".data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:-1])
    with pytest.raises(timbre.TimbreModelError, match="sha256") as bad:
        timbre.check_weights(copy)
    assert bad.value.item == str(data)
    (copy / ".index").unlink()
    with pytest.raises(timbre.TimbreModelError, match="missing") as missing:
        timbre.check_weights(copy)
    assert missing.value.item == str(copy / ".index")
    with pytest.raises(timbre.TimbreModelError, match="cannot read") as probe:
        timbre.load_probe(tmp_path / "absent.json")
    assert probe.value.item == str(tmp_path / "absent.json")


def test_weights_dir_finds_the_installed_package_or_says_what_to_install(monkeypatch, tmp_path):
    import importlib.metadata
    import sys
    import types

    monkeypatch.delenv(timbre.ENV_DIR, raising=False)
    assert timbre.weights_dir(tmp_path) == tmp_path  # an explicit folder comes first
    monkeypatch.setenv(timbre.ENV_DIR, str(tmp_path / "env"))
    assert timbre.weights_dir(tmp_path) == tmp_path
    monkeypatch.setenv(timbre.ENV_DIR, "")  # set but empty: as if unset
    try:  # the package's files, as pip recorded them
        dist = importlib.metadata.distribution("musicnn")
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        assert timbre.weights_dir() == Path(dist.locate_file("musicnn/MTT_musicnn"))
    # not importable (a None entry in sys.modules makes find_spec answer None), or
    # importable without a spec (find_spec raises ValueError): the install hint
    broken = types.ModuleType("musicnn")
    broken.__spec__ = None
    for module in (None, broken):
        monkeypatch.setitem(sys.modules, "musicnn", module)
        with pytest.raises(timbre.TimbreModelError, match="not installed") as missing:
            timbre.weights_dir()
        assert missing.value.item == "musicnn" and timbre.INSTALL_HINT in str(missing.value)


@pytest.mark.parametrize("bad, says", [
    ({"weights": [0.0] * 199, "bias": 0.0, "threshold": 0.5}, r"200 finite weights.*\(199,\)"),
    ({"weights": [0.0] * 200, "bias": 0.0, "threshold": -0.01}, "bad probe bias 0.0 or threshold -0.01"),
])
def test_probe_errors_name_the_probe(bad, says):
    with pytest.raises(timbre.TimbreModelError, match=says) as error:
        timbre.PianoProbe.from_dict(bad)
    assert error.value.item == "piano_probe"
