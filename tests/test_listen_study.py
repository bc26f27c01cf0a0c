"""`copbench listen` without a browser: the study folder is blind and complete."""

import json
import re

import av
import numpy as np
import pytest
from mediafactory import build_synth_dataset

from copbench.cli import main
from copbench.listen import StudyError, build_study, read_key
from copbench.listen.media import media_tags, normalize_level
from copbench.run import run_benchmark

NAMES = ("oracle", "resynth", "silence", "noise", "ground-truth")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_synth_dataset(tmp_path_factory.mktemp("ds") / "tiny", 3, 3.0, 1.0)


def test_study_folder_is_blind(dataset, tmp_path):
    results = tmp_path / "results"
    for model in ("resynth", "silence"):
        run_benchmark(model, dataset, metrics=["si_sdr"], out=results, progress=False,
                      command=["copbench", "run", "--model", model])
    # the oracle is the hidden reference already, whatever its results are named
    renamed = run_benchmark("baseline:oracle", dataset, metrics=["si_sdr"], out=results,
                            progress=False, name="ground-truth")
    assert renamed["model"] == "ground-truth" and renamed["metrics"]["si_sdr"]["mean"] == 100.0
    # a results name is the system name; the output is re-created from the provenance
    run_benchmark("baseline:resynth", dataset, metrics=["si_sdr"], out=results, progress=False,
                  name="resynth-again")
    study = tmp_path / "study"
    assert main(["listen", "--data", str(dataset), "--models", str(results), "--clips", "2",
                 "--raters-seed", "3", "--out", str(study), "--no-progress"]) == 0
    key = read_key(study)
    systems = {s.system: s.role for s in key.stimuli.values()}
    assert systems == {"oracle": "reference", "resynth": "model", "resynth-again": "model",
                       "silence": "model", "noise": "anchor"}
    assert len(key.spec["trials"]) == 2 * 5 and len(key.spec["training"]) == 3
    assert [t["stimulus"] for t in key.spec["trials"]] == sorted(key.test_stimuli())
    files = [p for p in study.rglob("*") if p.is_file()]
    # the key is beside the served folder, never in it
    assert not [p for p in files if "key" in p.name]
    assert (tmp_path / "study.study-key.json").is_file()
    for path in files:
        assert not any(n in str(path.relative_to(study)).lower() for n in NAMES)
        text = path.read_bytes().decode("latin-1").lower()
        assert not any(re.search(n, text) for n in NAMES), path
        if path.suffix == ".mp4":
            tags = json.dumps(media_tags(path)).lower()
            assert "encoder" not in tags and not any(n in tags for n in NAMES)
            with av.open(str(path)) as container:
                kinds = sorted(s.type for s in container.streams)
                audio = np.concatenate([f.to_ndarray().reshape(-1)
                                        for f in container.decode(audio=0)])
            assert kinds == ["audio", "video"]
            stim = key.stimuli[path.stem]
            rms_db = 20 * np.log10(np.sqrt(np.mean(audio.astype(np.float64) ** 2)) + 1e-12)
            if stim.system == "silence":
                assert rms_db < -80
            else:  # level-aligned to -26 dBFS RMS (AAC changes it a little)
                assert rms_db == pytest.approx(-26, abs=1.5)
    page = (study / "index.html").read_text()
    assert "study-key" not in page and key.study_hash in page
    assert "<script" in page and "http" not in page  # self-contained, no post url asked


def test_study_refuses_a_page_that_would_name_a_model(dataset, tmp_path):
    with pytest.raises(StudyError, match="name a system"):
        build_study(dataset, "silence", tmp_path / "s", clips=1, study_id="silence-vs-rest",
                    progress=False)
    with pytest.raises(StudyError, match="only 3 clips"):
        build_study(dataset, "silence", tmp_path / "s2", clips=9, progress=False)
    with pytest.raises(StudyError, match="--post-url"):
        build_study(dataset, "silence", tmp_path / "s4", clips=1, post_url="javascript:alert(1)",
                    progress=False)
    with pytest.raises(StudyError, match="--anchor"):
        build_study(dataset, "silence", tmp_path / "s3", clips=1, anchor="static", progress=False)


def test_normalize_level():
    tone = 0.5 * np.sin(np.linspace(0, 200 * np.pi, 44100))
    out = normalize_level(tone, -26.0)
    assert 20 * np.log10(np.sqrt(np.mean(out.astype(np.float64) ** 2))) == pytest.approx(-26, abs=0.01)
    clicks = np.zeros(44100)
    clicks[::4410] = 1.0
    assert np.abs(normalize_level(clicks)).max() <= 10 ** (-1 / 20) + 1e-6  # peak kept at -1 dBFS
    assert not normalize_level(np.zeros(100)).any()
