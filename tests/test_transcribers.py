"""The transcriber registry: each transcriber on rendered piano, Transkun's
loading, the choice on the command lines and in dataset.json, post-processing."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest

from copdata.cli import main as cli_main
from copdata.errors import SilentInputError, TranscriberError
from copdata.notes import Note, read_midi
from copdata.render.piano import render_notes
from copdata.scoring import note_scores
from copdata.transcription import (TRANSCRIBERS, get_transcriber, resolve_transcriber_name,
                                   transcribe_file, transcriber_for)
from copdata.transcription.post import (apply_steps, check_steps, drop_octave_doublings,
                                        floor_ends, shorten_ends)

SR = 44100


def _phrase() -> list[Note]:
    """Six notes and a C-major triad over 3.5 s in C3..C5 (hand-written)."""
    notes = [Note(0.20 + 0.4 * i, 0.50 + 0.4 * i, p, 90) for i, p in
             enumerate([60, 64, 67, 72, 69, 65])]
    notes += [Note(2.6, 3.3, p, 80) for p in (48, 52, 55)]
    return notes


@pytest.fixture(scope="module")
def phrase_audio():
    notes = _phrase()
    return notes, render_notes(notes, SR, seconds=3.6)


@pytest.fixture(scope="module")
def transcriptions(phrase_audio):
    """Each transcriber's notes of the phrase (one run each: Transkun decodes
    16 s segments every 8 s, so even 4 s of audio costs three segments)."""
    _, audio = phrase_audio
    cache: dict[str, list[Note]] = {}

    def notes_of(name: str) -> list[Note]:
        if name not in cache:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                cache[name] = get_transcriber(name, num_threads=2).transcribe(audio, SR,
                                                                              item="phrase")
            WARNED[name] = [str(w.message) for w in caught]
        return cache[name]
    return notes_of


WARNED: dict[str, list[str]] = {}


def test_transkun_runs_without_torch_checkpoint_warnings(transcriptions):
    # Transkun 2.0.1 calls torch.utils.checkpoint at inference: torch warned twice
    # per 16 s segment (three segments here) until the wrapper silenced exactly those
    transcriptions("transkun")
    assert not [m for m in WARNED["transkun"] if "use_reentrant" in m or "requires_grad" in m]


@pytest.mark.parametrize("name", sorted(TRANSCRIBERS))
def test_each_transcriber_finds_the_notes_of_rendered_piano(name, phrase_audio, transcriptions):
    # oracle: the MIDI the audio was rendered from, scored by mir_eval
    reference, _ = phrase_audio
    scores = note_scores(reference, transcriptions(name))
    assert scores["f1"] >= 0.85, (name, scores, transcriptions(name))
    transcriber = get_transcriber(name, num_threads=2)
    assert transcriber.name == name and transcriber.info()["name"] == name
    assert get_transcriber(name, num_threads=2) is transcriber  # loaded once per process


def test_transkun_ends_are_closer_than_basic_pitchs(phrase_audio, transcriptions):
    # the measured fault this transcriber fixes: basic-pitch's notes outlast the keys
    reference, _ = phrase_audio
    assert note_scores(reference, transcriptions("transkun"))["f1_offset"] >= 0.8
    assert note_scores(reference, transcriptions("transkun"))["f1_offset"] > \
        note_scores(reference, transcriptions("basic-pitch"))["f1_offset"]


def test_transkun_refuses_silence_before_running():
    transkun = get_transcriber("transkun", num_threads=2)
    with pytest.raises(SilentInputError):
        transkun.transcribe(np.zeros(SR, np.float32), SR)
    with pytest.raises(SilentInputError):
        transkun.transcribe_blocks([np.zeros(1000, np.float32)] * 3, 22050)


def test_transkun_mel_standin_equals_the_trained_filterbank():
    # oracle: the checkpoint's freq2mels buffer, computed by torchaudio at training time
    import torch

    from copdata.transcription.transkun import WEIGHTS_RELPATH, _package_dir, melscale_fbanks
    state = torch.load(_package_dir().joinpath(*WEIGHTS_RELPATH), map_location="cpu",
                       weights_only=True)["state_dict"]
    trained = state["framewiseFeatureExtractor.freq2mels"]
    ours = melscale_fbanks(n_freqs=4096 // 2 + 1, f_min=30, f_max=8000, n_mels=229,
                           sample_rate=44100)
    assert ours.shape == trained.shape
    torch.testing.assert_close(ours, trained.float(), atol=5e-5, rtol=0)  # float32 rounding
    assert "torchaudio" not in sys.modules  # the stand-in is gone after the build


def test_transkun_device_choices():
    from copdata.transcription.transkun import resolve_device
    import torch

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(TranscriberError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(TranscriberError, match="CUDA"):
            resolve_device("cuda")
        assert resolve_transcriber_name("auto") == "basic-pitch"


def test_unknown_transcriber_or_setting_is_an_error(tmp_path, capsys):
    with pytest.raises(TranscriberError, match="unknown transcriber"):
        get_transcriber("onsets-and-frames")
    with pytest.raises(TranscriberError, match="no setting"):
        get_transcriber("transkun", onset_threshold=0.4)
    with pytest.raises(TranscriberError, match="unknown note post"):
        check_steps(["octave", "sustain"])
    wav = tmp_path / "x.wav"
    for argv in (["transcribe", str(wav), "--out", str(tmp_path / "x.mid"), "--transcriber", "nope"],
                 ["build", "--source", "synth", "--out", str(tmp_path / "d"), "--transcriber", "nope"],
                 ["transcribe", str(wav), "--out", str(tmp_path / "x.mid"), "--note-post", "pedal"]):
        with pytest.raises(SystemExit) as exc:
            cli_main(argv)
        assert exc.value.code == 2, argv
        assert "nope" in capsys.readouterr().err or "pedal" in " ".join(argv)
    from copbench.cli import main as bench_main
    with pytest.raises(SystemExit) as exc:
        bench_main(["run", "--model", "baseline:silence", "--data", str(tmp_path),
                    "--transcriber", "nope"])
    assert exc.value.code == 2


def test_transcribe_cli_applies_the_choice_and_the_post_processing(tmp_path, phrase_audio):
    from copdata.media.encode import write_audio

    reference, audio = phrase_audio
    wav = tmp_path / "phrase.wav"
    write_audio(wav, audio, SR)
    out = tmp_path / "phrase.mid"
    assert cli_main(["transcribe", str(wav), "--out", str(out), "--transcriber", "basic-pitch",
                     "--note-post", "ends"]) == 0
    full = transcribe_file(wav, None, transcriber="basic-pitch")
    halved = read_midi(out)
    assert note_scores(reference, full)["f1"] >= 0.85
    assert [n.pitch for n in halved] == [n.pitch for n in full]
    np.testing.assert_allclose([n.end - n.start for n in halved],
                               [(n.end - n.start) / 2 for n in full], atol=2e-3)


@pytest.mark.parametrize("name", [
    "basic-pitch", pytest.param("transkun", marks=pytest.mark.slow)])
def test_build_records_the_transcriber_in_dataset_json(tmp_path, make_video, name):
    src = tmp_path / "in"
    src.mkdir()
    make_video(str(src / "take.mp4"), seconds=2.5)
    out = tmp_path / "out"
    assert cli_main(["build", "--source", "local", "--input", str(src), "--out", str(out),
                     "--clip-seconds", "2", "--sample-rate", "22050", "--transcriber", name,
                     "--device", "cpu", "--note-post", "octave", "--quiet"]) == 0
    info = json.loads((out / "dataset.json").read_text())
    assert info["transcriber"]["name"] == name
    assert info["transcriber"]["version"] == {"basic-pitch": "0.4.0", "transkun": "2.0.1"}[name]
    assert info["transcriber"]["note_post"] == ["octave"]
    assert info["build"]["transcriber"] == name
    assert "device" not in info["transcriber"] and "transcriber_device" not in info["build"]
    assert cli_main(["validate", str(out), "--quiet"]) == 0
    clip = next(iter(__import__("copdata").open_dataset(out)))
    assert clip.notes(), "the melody's notes are found"
    # a resumed build with another transcriber refuses (the MIDI view would differ)
    other = "transkun" if name == "basic-pitch" else "basic-pitch"
    assert cli_main(["build", "--source", "local", "--input", str(src), "--out", str(out),
                     "--clip-seconds", "2", "--sample-rate", "22050", "--transcriber", other,
                     "--note-post", "octave", "--quiet"]) == 2


def test_octave_doublings_hand_worked():
    c4 = Note(1.0, 1.5, 60, 100)
    weak_c3 = Note(1.02, 1.5, 48, 60)     # 0.6 x the note an octave above: dropped (<= 0.7)
    weak_c5 = Note(0.98, 1.4, 72, 55)     # 0.55 x the note an octave below: dropped (<= 0.6)
    played_g3 = Note(2.0, 2.5, 55, 90)    # a played octave G3+G4 at similar loudness: kept
    played_g4 = Note(2.01, 2.5, 67, 85)
    late_e3 = Note(1.2, 1.6, 52, 10)      # octave below E4 but 150 ms later: kept
    e4 = Note(1.05, 1.3, 64, 100)
    kept = drop_octave_doublings([c4, weak_c3, weak_c5, played_g3, played_g4, late_e3, e4])
    assert kept == [c4, played_g3, played_g4, late_e3, e4]


def test_shorten_ends_and_step_order():
    notes = [Note(1.0, 2.0, 60, 80), Note(0.5, 0.9, 62, 80)]
    assert [(n.start, n.end, n.pitch) for n in shorten_ends(notes)] == [
        (1.0, 1.5, 60), (0.5, pytest.approx(0.7), 62)]
    with pytest.raises(TranscriberError):
        shorten_ends(notes, 0.0)
    # octave runs before ends, whatever the order given; the result is sorted by onset
    pair = [Note(1.0, 2.0, 60, 100), Note(1.0, 2.0, 48, 50)]
    assert check_steps(["ends", "octave"]) == ("octave", "ends")
    assert apply_steps(pair, ["ends", "octave"]) == [Note(1.0, 1.5, 60, 100)]


def test_floor_ends_hand_worked():
    notes = [Note(0.0, 0.03, 60, 80),    # 30 ms, next C4 at 0.05 s: ends there (not 0.1)
             Note(0.05, 0.5, 60, 80),    # already long: unchanged
             Note(1.0, 1.02, 62, 80),    # 20 ms, alone on its key: lasts 0.1 s
             Note(1.04, 1.06, 64, 80),   # another key's onset does not cut it: 0.1 s
             Note(1.06, 1.08, 64, 80),   # a same-pitch successor before the end: never shorter
             Note(2.0, 2.5, 65, 80)]     # long: unchanged
    got = [(n.start, round(n.end, 9), n.pitch) for n in floor_ends(notes)]
    assert got == [(0.0, 0.05, 60), (0.05, 0.5, 60), (1.0, 1.1, 62), (1.04, 1.06, 64),
                   (1.06, 1.16, 64), (2.0, 2.5, 65)]
    with pytest.raises(TranscriberError):
        floor_ends(notes, 0.0)
    # floor runs after ends whatever the order given: 0.4 s halves to 0.2, 0.1 s halves to 0.05
    # and is floored back to 0.1 (floor first would give 0.2 and 0.05)
    assert check_steps(["floor", "ends", "octave"]) == ("octave", "ends", "floor")
    assert [(n.start, round(n.end, 9)) for n in apply_steps(
        [Note(0.0, 0.4, 60, 80), Note(1.0, 1.1, 62, 80)], ["floor", "ends"])] == [
        (0.0, 0.2), (1.0, 1.1)]


def test_measured_accuracy_line_names_the_figures_of_docs_table():
    from copdata.transcription.registry import measured_accuracy

    # figures of docs/transcription.md's OMAPS 001-025 table
    assert "note F1 0.963 on onsets, 0.439 with note ends" in measured_accuracy("transkun", ["floor"])
    assert "note F1 0.692 on onsets, 0.156 with note ends" in measured_accuracy("basic-pitch", [])
    assert "0.696 on onsets, 0.203" in measured_accuracy("basic-pitch", ["ends", "octave"])
    for name, post in (("transkun", ["octave", "floor"]), ("other", []), ("transkun", ["x"]),
                       ("transkun", 7)):
        assert "not measured" in measured_accuracy(name, post), (name, post)


def test_copbench_midi_metric_uses_and_records_the_transcriber(tmp_path):
    from mediafactory import build_synth_dataset

    from copbench.cli import main as bench_main
    from copbench.metrics.midi import MidiMetric

    data = build_synth_dataset(tmp_path / "tiny", 2, 4.0, 2.0)
    results = {}
    for label, extra in (("plain", []), ("ends", ["--note-post", "ends"])):
        assert bench_main(["run", "--model", "baseline:oracle", "--data", str(data), "--split",
                           "all", "--metrics", "midi", "--out", str(tmp_path / label),
                           "--transcriber", "basic-pitch", "--no-progress", *extra]) == 0
        results[label] = json.loads((tmp_path / label / "oracle.json").read_text())
    settings = {k: r["provenance"]["metrics"]["midi"]["settings"]["transcriber"]
                for k, r in results.items()}
    assert settings["plain"]["name"] == settings["ends"]["name"] == "basic-pitch"
    assert settings["plain"]["note_post"] == [] and settings["ends"]["note_post"] == ["ends"]
    # the post-processing reaches the scores: onsets unchanged, ends moved
    plain, ends = (results[k]["metrics"] for k in ("plain", "ends"))
    assert plain["midi_note_f1"]["mean"] == ends["midi_note_f1"]["mean"]
    assert plain["midi_note_f1_offset"]["mean"] != ends["midi_note_f1_offset"]["mean"]
    transkun = MidiMetric("transkun", device="cpu").settings()["transcriber"]
    assert transkun["name"] == "transkun" and transkun["model_sha256"]
