"""Every convention counter and every CLI exit status fires in a test (issue 21).

Fréchet flags: ``tests/test_oracle_copbench.py``; FAD-inf and PANNs flags:
``tests/test_bench_fad_inf.py``; SI-SDR conventions end to end:
``tests/test_bench_run.py``. This file covers the MIDI metric's conventions,
AV-Align's ``no_peaks``, SI-SDR's conventions on the metric object and the
mapping of every typed error to the CLIs' exit status.
"""

import inspect
from types import SimpleNamespace

import numpy as np
import pytest

import copbench.errors
import copdata.errors
import copmodel.errors
from copbench.metrics.base import ScoreItem
from copbench.metrics.si_sdr import SiSdr
from copdata.cli import run_command
from copdata.notes import Note
from copdata.render.piano import render_notes
from copdata.roll import render_roll

SR = 16000
FPS = 25.0
SECONDS = 3.0
CHORD = [Note(0.3, 0.9, 60, 96), Note(1.2, 1.8, 64, 96), Note(2.1, 2.7, 67, 96)]


def _clip(notes, clip_id="c", audio=None):
    """A paired clip record: the fields a metric reads from a copdata Clip."""
    frames = int(SECONDS * FPS)
    return SimpleNamespace(id=clip_id, sample_rate=SR, num_samples=int(SECONDS * SR), fps=FPS,
                           num_frames=frames, seconds=SECONDS, notes=lambda: list(notes),
                           roll=lambda: render_roll(notes, frames, FPS),
                           audio=lambda: audio if audio is not None else render_notes(notes, SR, SECONDS))


def test_midi_metric_counts_each_convention_once_per_clip_it_decides():
    from copbench.metrics.midi import MidiMetric

    metric = MidiMetric()
    silence = np.zeros(int(SECONDS * SR), np.float32)
    # no reference notes, silent output: silent_output + notes_both_empty + frames_both_empty
    both_empty = metric.score(ScoreItem(_clip([]), silence))
    assert metric.convention_counts() == {"silent_output": 1, "notes_both_empty": 1,
                                          "notes_one_empty": 0, "frames_both_empty": 1}
    assert both_empty["midi_note_f1"] == 1.0 and both_empty["midi_frame_f1"] == 1.0
    # three reference notes, silent output: silent_output + notes_one_empty
    one_empty = metric.score(ScoreItem(_clip(CHORD), silence))
    assert metric.convention_counts() == {"silent_output": 2, "notes_both_empty": 1,
                                          "notes_one_empty": 1, "frames_both_empty": 1}
    assert one_empty["midi_note_f1"] == 0.0 and one_empty["midi_frame_f1"] == 0.0
    # the reference played back: no convention decides anything
    played = metric.score(ScoreItem(_clip(CHORD), render_notes(CHORD, SR, SECONDS)))
    assert metric.convention_counts()["notes_one_empty"] == 1
    assert sum(metric.convention_counts().values()) == 5
    assert played["midi_note_f1"] == pytest.approx(1.0)


def test_si_sdr_metric_counts_its_conventions():
    metric = SiSdr()
    silence = np.zeros(800, np.float32)
    tone = np.sin(np.arange(800) / 7.0).astype(np.float32)
    clip_silent = SimpleNamespace(id="a", sample_rate=SR, num_samples=800, audio=lambda: silence)
    clip_tone = SimpleNamespace(id="b", sample_rate=SR, num_samples=800, audio=lambda: tone)
    assert metric.score(ScoreItem(clip_silent, silence)) == {"si_sdr": 100.0}
    assert metric.score(ScoreItem(clip_tone, silence)) == {"si_sdr": -100.0}
    assert metric.score(ScoreItem(clip_silent, tone)) == {"si_sdr": -100.0}
    assert metric.score(ScoreItem(clip_tone, 0.5 * tone)) == {"si_sdr": 100.0}  # scaled copy
    assert metric.convention_counts() == {"both_silent": 1, "one_silent": 2}
    with pytest.raises(KeyError):
        metric.count_convention("not_a_convention")


def test_av_align_counts_no_peaks_for_a_motionless_video_and_silence(make_video):
    from copbench.metrics.av_align import AvAlign

    # uniform grey frames: no optical flow, so no video peak; silent audio: no audio peak
    video = make_video("video.mp4", seconds=2.0, fps=25, with_audio=False)
    clip = SimpleNamespace(id="still", dir=video.parent, sample_rate=SR, num_samples=2 * SR)
    metric = AvAlign(workers=1, use_cache=False)
    out = metric.score(ScoreItem(clip, np.zeros(2 * SR, np.float32)))
    assert out == {"av_align": 0.0}
    assert metric.convention_counts() == {"no_peaks": 1}


# ---- typed errors -> exit status ------------------------------------------------------

def _error_classes():
    found = []
    for module in (copdata.errors, copbench.errors, copmodel.errors):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, copdata.errors.CopDataError) and cls.__module__ == module.__name__:
                found.append(cls)
    return found


def test_the_error_modules_are_all_listed_below():
    # a new error class must be given its exit status in EXPECTED_STATUS
    assert {c.__name__ for c in _error_classes()} == set(EXPECTED_STATUS)


# 2: usage or input error (nothing or only part was done); 1: the model failed on
# some clips (copbench run wrote its results); see the CLIs' EXIT_STATUS texts
EXPECTED_STATUS = {
    "CopDataError": 2, "MediaError": 2, "MissingStreamError": 2, "TooShortError": 2,
    "QualityRejectedError": 2, "SilentInputError": 2, "SampleRateError": 2, "MidiError": 2,
    "ManifestError": 2, "RenderError": 2, "TranscriberError": 2, "DatasetError": 2,
    "DownloadError": 2, "UnsafePathError": 2, "BuildLockedError": 2,
    "BenchError": 2, "ModelError": 2, "ModelUnavailableError": 2, "PairingError": 2,
    "MetricError": 2, "WeightsMissingError": 2, "ChecksumError": 2, "OutputAudioError": 2,
    "IncompleteOutputsError": 1, "ResultsConflictError": 2, "UnsafeWeightsError": 2,
    "UnsupportedWeightsError": 2,
    "CopModelError": 2, "ConfigError": 2, "WeightsNotFoundError": 2, "CheckpointError": 2,
}


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_each_typed_error_maps_to_its_exit_status_with_one_line(cls, capsys):
    args = SimpleNamespace(debug=False)
    try:
        exc = cls("the thing went wrong", item="input.mp4")
    except TypeError:  # DownloadError takes a kind
        exc = cls("the thing went wrong", item="input.mp4", kind="network")

    def command():
        raise exc

    assert run_command("copdata test", command, args) == EXPECTED_STATUS[cls.__name__]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the thing went wrong" in err and "input.mp4" in err


def test_untyped_errors_interrupts_and_closed_pipes(capsys):
    args = SimpleNamespace(debug=False, exit_status=1)

    def boom():
        raise RuntimeError("unexpected")

    def interrupted():
        raise KeyboardInterrupt

    assert run_command("copdata test", boom, args) == 2
    assert "RuntimeError" in capsys.readouterr().err
    assert run_command("copdata test", interrupted, args) == 130
    assert run_command("copdata test", lambda: 3, args) == 3
    assert run_command("copdata test", lambda: None, args) == 0


def test_the_cli_entry_points_share_the_mapping(tmp_path, capsys):
    from copbench.cli import main as bench_main
    from copdata.cli import main as data_main
    from copmodel.cli import main as model_main

    missing = str(tmp_path / "nowhere")
    assert data_main(["validate", missing]) == 1  # problems found: the folder is not a dataset
    assert bench_main(["leaderboard", missing]) == 2
    assert model_main(["sample", "--ckpt", missing, "--data", missing, "--out", missing]) == 2
    err = capsys.readouterr().err
    assert "copbench leaderboard: error:" in err and "copmodel sample: error:" in err
