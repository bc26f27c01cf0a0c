"""End-to-end `copbench run` / leaderboard / compare on a tiny synth dataset."""

import csv
import io
import json

import numpy as np
import pytest
from mediafactory import build_synth_dataset

from copbench.cli import main
from copbench.compare import compare_files
from copbench.errors import ModelError, PairingError
from copbench.leaderboard import render_leaderboard
from copbench.results import dumps, strip_created, write_results
from copbench.run import run_benchmark

FAST = ["si_sdr", "fad_mel"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_synth_dataset(tmp_path_factory.mktemp("ds") / "tiny", 4, 4.0, 2.0)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COPBENCH_CACHE", str(tmp_path / "cache"))


def test_oracle_default_metrics(dataset, tmp_path):
    from copdata import open_dataset
    test_ids = sorted(open_dataset(dataset).ids("test"))
    res = run_benchmark("oracle", dataset, out=tmp_path / "res", progress=False, command=["t"])
    m = res["metrics"]
    assert sorted(res["per_clip"]) == test_ids
    assert m["si_sdr"]["mean"] == 100.0 and m["si_sdr"]["n"] == len(test_ids)
    assert m["midi_note_f1"]["mean"] > 0.5 and m["midi_frame_f1"]["mean"] > 0.5
    assert "midi_frame_f1_audeo" in m and 0 <= m["av_align"]["mean"] <= 1
    assert m["fad_mel"]["mean"] == pytest.approx(0, abs=1e-6)
    assert m["fad_basicpitch"]["mean"] == pytest.approx(0, abs=1e-6)
    for name, entry in m.items():
        if name.endswith("_inf"):  # fadtk's FAD-inf: no interval
            assert entry["ci95"] is None and len(entry["points"]) == 25
            continue
        lo, hi = entry["ci95"]
        assert lo <= entry["mean"] + 1e-9 and entry["mean"] <= hi + 1e-9
    prov = res["provenance"]
    assert prov["dataset"]["fingerprint"] == open_dataset(dataset).fingerprint()
    assert prov["metrics"]["midi"]["settings"]["transcriber"]["name"] == "basic-pitch"
    assert prov["seed"] == 0 and prov["command"] == ["t"] and prov["packages"]["numpy"]
    saved = json.loads((tmp_path / "res" / "oracle.json").read_text())
    assert saved["metrics"] == m
    assert saved["track"] == "unspecified"  # a baseline's track is whatever the user declares


def test_same_inputs_identical_json(dataset, tmp_path):
    a = run_benchmark("noise", dataset, metrics=FAST, seed=3, progress=False, command=["x"])
    b = run_benchmark("noise", dataset, metrics=FAST, seed=3, progress=False, command=["x"])
    assert dumps(strip_created(a)) == dumps(strip_created(b))
    c = run_benchmark("noise", dataset, metrics=FAST, seed=4, progress=False, command=["x"])
    assert c["per_clip"] != a["per_clip"]


def test_folder_pairing_resampling_and_length(dataset, tmp_path):
    from copdata import open_dataset
    from copdata.media.encode import write_audio
    import librosa
    ds = open_dataset(dataset)
    ids = sorted(ds.ids("test"))
    out = tmp_path / "gen"
    out.mkdir()
    # first clip: the reference at 22050 Hz and 0.1 s too short; second: exact copy
    ref0 = ds[ids[0]].audio()
    write_audio(out / f"{ids[0]}.wav", librosa.resample(ref0, orig_sr=44100, target_sr=22050)[:-2205], 22050)
    write_audio(out / f"{ids[1]}.flac", ds[ids[1]].audio(), 44100)
    write_audio(out / "not-a-clip.00000000.wav", np.zeros(100, np.float32), 44100)
    res = run_benchmark(str(out), dataset, metrics=["si_sdr"], progress=False,
                        allow_failures=True)
    assert res["pairing"]["paired"] == 2 and res["complete"] is False
    assert res["pairing"]["missing"] == ids[2:]
    assert res["pairing"]["extra"] == ["not-a-clip.00000000"]
    # the 22050 Hz file was resampled in the decoder (libswresample, as the references)
    assert res["provenance"]["audio_fixes"] == {"resampled": 0, "length_fixed": 1}
    assert res["per_clip"][ids[1]]["si_sdr"] > 40  # 16-bit FLAC round trip
    assert 5 < res["per_clip"][ids[0]]["si_sdr"] < 40  # resampled, last 0.1 s zero-padded
    assert res["model"] == "gen"


def test_no_common_ids_is_an_error(dataset, tmp_path):
    from copdata.media.encode import write_audio
    (tmp_path / "bad").mkdir()
    write_audio(tmp_path / "bad" / "other.wav", np.zeros(100, np.float32), 44100)
    with pytest.raises(PairingError):
        run_benchmark(str(tmp_path / "bad"), dataset, metrics=["si_sdr"], progress=False)
    with pytest.raises(ModelError):
        run_benchmark("no-such-model", dataset, metrics=["si_sdr"], progress=False)


def test_shuffle_is_a_derangement_and_baselines_order(dataset):
    from copbench.models import Baseline
    from copdata import open_dataset
    clips = list(open_dataset(dataset).clips("all"))
    base = Baseline("shuffle", seed=1)
    base.prepare(clips)
    partners = {c.id: base.partner(c.id) for c in clips}
    assert all(k != v for k, v in partners.items())
    assert sorted(partners.values()) == sorted(partners)
    scores = {m: run_benchmark(m, dataset, metrics=["si_sdr"], progress=False)["metrics"]["si_sdr"]["mean"]
              for m in ("oracle", "resynth", "shuffle", "silence")}
    assert scores["oracle"] == 100.0 and scores["silence"] == -100.0
    assert scores["resynth"] > 20  # copdata renders synth audio with the same synthesizer
    assert scores["shuffle"] < 0


def test_cli_leaderboard_and_compare(dataset, tmp_path, capsys):
    res_dir = tmp_path / "res"
    for model in ("oracle", "silence"):
        assert main(["run", "--model", model, "--data", str(dataset), "--metrics", "si_sdr,fad_mel",
                     "--out", str(res_dir), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "2 clips paired" not in printed and "si_sdr" in printed
    md = render_leaderboard(res_dir, "md")
    assert "| oracle |" in md and "**100 [100, 100]** *" in md and "Provenance:" in md
    only = render_leaderboard(res_dir, "md", ["si_sdr"]).splitlines()[0]
    assert only == "| model | n | si_sdr ↑ |"
    csv_text = render_leaderboard(res_dir, "csv")
    header = csv_text.splitlines()[0]
    oracle_row = next(r for r in csv.DictReader(io.StringIO(csv_text)) if r["model"] == "oracle")
    assert header.startswith("model,n,fad_mel") and "si_sdr" in oracle_row["best"].split(";")
    # 12 frames: fadtk's FAD-inf draws 500 down to 12 with replacement and extrapolates; a
    # flagged value (few_frames, rank_deficient) is never marked best, a negative one shows <0
    assert "fad_mel_inf:" in oracle_row["flags"] and "fad_mel_inf" not in oracle_row["best"]
    if float(oracle_row["fad_mel_inf"]) < 0:
        assert "<0" in next(line for line in md.splitlines() if line.startswith("| oracle |"))
    html_path = tmp_path / "lb.html"
    assert main(["leaderboard", str(res_dir), "--format", "html", "--out", str(html_path)]) == 0
    page = html_path.read_text()
    assert page.count("<svg") == 3 and "<script>" in page and 'class="best"' in page
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")  # self-contained
    cmp = compare_files(res_dir / "silence.json", res_dir / "oracle.json")
    assert cmp["same_dataset"] and cmp["metrics"]["si_sdr"]["diff"] == 200.0
    assert cmp["metrics"]["si_sdr"]["better"] == "B"
    assert main(["compare", str(res_dir / "silence.json"), str(res_dir / "oracle.json")]) == 0
    assert "si_sdr" in capsys.readouterr().out
    assert main(["run", "--model", "nothing", "--data", str(dataset), "--no-progress"]) == 2


def test_checkpoint_without_copmodel_is_a_clear_error(dataset, tmp_path, monkeypatch):
    import sys
    from copbench.errors import ModelUnavailableError
    monkeypatch.setitem(sys.modules, "copmodel.sample", None)  # as if copmodel were absent
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"x")
    with pytest.raises(ModelUnavailableError, match="copmodel.sample.load_sampler"):
        run_benchmark(str(ckpt), dataset, metrics=["si_sdr"], progress=False)


def test_per_clip_fad_and_reference_cache(dataset, tmp_path):
    from copbench.cache import cache_dir
    res = run_benchmark("noise", dataset, metrics=["fad_mel"], per_clip_fad=True, progress=False)
    per = {cid: v["fad_mel_clip_fd"] for cid, v in res["per_clip"].items()}
    assert not any("fad_mel" in v for v in res["per_clip"].values())  # not a FAD per clip
    assert len(per) == res["pairing"]["paired"] and all(v > 0 for v in per.values())
    entry = res["metrics"]["fad_mel"]
    assert entry["higher_is_better"] is False and entry["ci95"][0] <= entry["mean"] <= entry["ci95"][1]
    cached = list((cache_dir() / "fad_reference").glob("*.npz"))
    assert len(cached) == 1 and not list(dataset.rglob("*.npz"))  # never inside the dataset
    again = run_benchmark("silence", dataset, metrics=["fad_mel"], progress=False)
    assert len(list((cache_dir() / "fad_reference").glob("*.npz"))) == 1  # reused
    oracle = run_benchmark("oracle", dataset, metrics=["fad_mel"], progress=False)
    assert oracle["metrics"]["fad_mel"]["mean"] == pytest.approx(0, abs=1e-6)  # same stats
    assert again["metrics"]["fad_mel"]["mean"] > 0


def test_fad_reports_n_flags_inf_and_conventions_are_counted(dataset, tmp_path):
    from copbench.compare import compare_results
    res = run_benchmark("silence", dataset, metrics=["si_sdr", "fad_mel"], per_clip_fad=True,
                        progress=False)
    n = res["pairing"]["paired"]
    fad, inf = res["metrics"]["fad_mel"], res["metrics"]["fad_mel_inf"]
    assert fad["n_clips"] == {"output": n, "reference": n}
    assert fad["n_frames"]["output"] == fad["n_frames"]["reference"] > n
    assert inf["ci95"] is None and inf["estimator"] == "fadtk score_inf"
    assert fad["ci95"][0] <= fad["mean"]
    assert fad["set_level"] and isinstance(fad["flags"], list)
    # silent outputs against non-silent references: every SI-SDR is the -100 convention
    assert res["metrics"]["si_sdr"]["conventions"] == {"both_silent": 0, "one_silent": n}
    out = tmp_path / "res"
    write_results(res, out)
    oracle = run_benchmark("oracle", dataset, metrics=["si_sdr", "fad_mel"], per_clip_fad=True,
                           out=out, progress=False)
    md = render_leaderboard(out, "md")
    assert "conventions one_silent" in md and f"N clips {n}/{n} ref" in md
    cmp = compare_results(res, oracle)
    assert cmp["metrics"]["fad_mel"]["ci95"] is None and cmp["metrics"]["fad_mel"]["n"] == 0
    assert "fad_mel_clip_fd" not in cmp["metrics"]


def test_missing_outputs_are_flagged_not_rescored(dataset, tmp_path):
    import shutil
    import soundfile as sf
    from copdata import open_dataset
    clips = sorted(open_dataset(dataset).clips("test"), key=lambda c: c.id)
    folder = tmp_path / "outs"
    folder.mkdir()
    for clip in clips[1:]:
        sf.write(folder / f"{clip.id}.wav", clip.audio(), clip.sample_rate)
    res = run_benchmark(str(folder), dataset, metrics=["fad_mel"], progress=False,
                        allow_failures=True)
    fad = res["metrics"]["fad_mel"]
    assert "missing_clips" in fad["flags"]
    assert fad["n_clips"] == {"output": len(clips) - 1, "reference": len(clips)}
    shutil.rmtree(folder)


@pytest.mark.parametrize("rate", [44100, 48000])
def test_stereo_outputs_are_downmixed_and_resampled_as_the_references(dataset, tmp_path, rate):
    """Outputs as a 44.1 / 48 kHz stereo WAV holding the reference at -3 dB in each
    channel: copdata builds references with libswresample (stereo -> 0.707 (L + R)), so the
    output must come back as the reference itself, resampled once. Planted bug it catches:
    the old channel mean (0.707 x the reference) or a second resampling pass."""
    import librosa
    import soundfile
    from copbench.models import FolderOutputs
    from copdata import open_dataset
    clips = sorted(open_dataset(dataset).clips("test"), key=lambda c: c.id)
    folder = tmp_path / f"out{rate}"
    folder.mkdir()
    for clip in clips:
        ref = clip.audio()
        mono = ref if rate == clip.sample_rate else librosa.resample(
            ref, orig_sr=clip.sample_rate, target_sr=rate, res_type="soxr_vhq")
        soundfile.write(folder / f"{clip.id}.wav", np.stack([mono, mono], 1) / np.sqrt(2), rate,
                        subtype="FLOAT")
    source = FolderOutputs(folder)
    clip = clips[0]
    audio, sr = source.audio(clip)
    ref = clip.audio()
    assert sr == clip.sample_rate and abs(len(audio) - len(ref)) <= 2
    n = min(len(audio), len(ref))
    gain = float(audio[:n] @ ref[:n] / (ref[:n] @ ref[:n]))
    assert gain == pytest.approx(1.0, abs=0.01)  # the channel mean would give 0.707
    if rate == clip.sample_rate:
        assert np.abs(audio[:n] - ref[:n]).max() < 1e-5
    res = run_benchmark(str(folder), dataset, metrics=["si_sdr"], progress=False)
    assert res["provenance"]["audio_fixes"]["resampled"] == 0  # once, in the decoder
    assert res["metrics"]["si_sdr"]["mean"] > (60 if rate == clip.sample_rate else 25)
