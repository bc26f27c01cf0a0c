"""Mutation checks of the parity comparisons: each front-end parameter of copbench's
VGGish and PANNs embedders (fmin, fmax, log offset, hop, window) is perturbed in turn
and the comparison with the reference package must then fail, i.e. the relative
difference must exceed the parity bound ``REL_TOL`` (1e-5) at least tenfold. (The CLAP front
end's teeth are in test_parity_clap.py.) The bound is relative to the output's scale:
the old absolute 1e-4 on VGGish outputs of ~0.02 let a wrong log offset pass."""

import numpy as np
import pytest
import torch

from copbench.cache import file_sha256
from copbench.embedders import build_embedder
from copbench.embedders.weights import set_override
from test_parity import SR, _audio, _panns_reference, _save_published_panns

REL_TOL = 1e-5
_CACHE = {}


def _rel(ours, want):
    return float(np.abs(ours - want).max() / np.abs(want).max())


def _vggish(tmp_path):
    if "vggish" not in _CACHE:
        from torchvggish import vggish_input
        from torchvggish.torchvggish import VGG, make_layers
        torch.manual_seed(0)
        reference = VGG(make_layers(), postprocess=False).eval()
        reference.embeddings = torch.nn.Sequential(*list(reference.embeddings.children())[:-1])
        audio = _audio(3.0)
        with torch.inference_mode():
            want = reference(vggish_input.waveform_to_examples(audio.astype(np.float64), SR))
        full = VGG(make_layers(), postprocess=False)
        full.load_state_dict(reference.state_dict(), strict=False)
        raw = tmp_path / "raw.pth"
        torch.save(full.state_dict(), raw)
        path = tmp_path / f"vggish-{file_sha256(raw)[:8]}.pth"
        raw.rename(path)
        _CACHE["vggish"] = (path, audio, want.double().numpy())
    return _CACHE["vggish"]


VGGISH = {"none": {}, "fmin": {"FMIN": 100.0}, "fmax": {"FMAX": 7000.0},
          "log_offset": {"LOG_OFFSET": 0.001}, "hop": {"HOP": 170}, "window": {"WIN": 440}}


@pytest.mark.parametrize("parameter", list(VGGISH))
def test_vggish_parity_has_teeth(tmp_path_factory, monkeypatch, parameter):
    import copbench.embedders.vggish as vggish
    path, audio, want = _vggish(tmp_path_factory.mktemp("vggish"))
    for name, value in VGGISH[parameter].items():
        monkeypatch.setattr(vggish, name, value)
    set_override("vggish", path)
    ours = build_embedder("vggish").load().embed(audio, SR)
    rel = _rel(ours, want) if ours.shape == want.shape else float("inf")
    print(f"\nPARITY TEETH vggish {parameter}: max rel diff {rel:.3g}")
    if parameter == "none":
        assert rel <= REL_TOL  # the parity itself, at the relative bound
    else:
        assert rel > 10 * REL_TOL


def _panns(tmp_path):
    """Reference Cnn14 in float64 and its embeddings of a clip and of a calibration clip:
    a random Cnn14's embedding barely moves with its input (relative spread ~1e-4), so
    the comparison is on the *deviation* from the calibration clip's embedding."""
    if "panns" not in _CACHE:
        reference = _panns_reference(1)
        path = tmp_path / "Cnn14_16k_mAP=0.438.pth"
        _save_published_panns(reference, path)
        audio, calibration = _audio(4.0, seed=1), _audio(4.0, seed=5)
        reference.double()
        with torch.inference_mode():
            want = [reference(torch.from_numpy(a[None]).double())["embedding"].numpy()
                    for a in (audio, calibration)]
        _CACHE["panns"] = (path, audio, calibration, want[0] - want[1])
    return _CACHE["panns"]


@pytest.mark.parametrize("parameter", ["none", "fmin", "fmax", "log_offset", "hop", "window"])
def test_panns_parity_has_teeth(tmp_path_factory, monkeypatch, parameter):
    import copbench.embedders.panns as panns
    path, audio, calibration, want = _panns(tmp_path_factory.mktemp("panns"))
    if parameter == "fmin":
        monkeypatch.setattr(panns, "FMIN", 0.0)
    if parameter == "fmax":
        monkeypatch.setattr(panns, "FMAX", 7000.0)
    if parameter == "hop":
        monkeypatch.setattr(panns, "HOP", 170)
    set_override("panns", path)
    emb = build_embedder("panns").load()
    emb.model.double()
    if parameter == "window":
        emb.model.window.copy_(torch.hamming_window(panns.N_FFT, periodic=True, dtype=torch.float64))
    if parameter == "log_offset":  # 10 log10(mel + 1e-6) instead of 10 log10(max(mel, 1e-10))
        plain = type(emb.model).logmel
        monkeypatch.setattr(type(emb.model), "logmel",
                            lambda self, a: 10.0 * torch.log10(10 ** (plain(self, a) / 10) + 1e-6))
    ours = emb.embed_with_logits(audio, SR)[0] - emb.embed_with_logits(calibration, SR)[0]
    rel = _rel(ours, want) if ours.shape == want.shape else float("inf")
    print(f"\nPARITY TEETH panns {parameter}: max rel diff of the deviation {rel:.3g}")
    if parameter == "none":
        assert rel <= REL_TOL
    else:
        assert rel > 10 * REL_TOL
