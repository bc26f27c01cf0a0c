"""The metric objects of copbench (score, finalize, settings) against their oracles
(issue 21: mutation testing).

The per-clip formulas have their own oracle tests (``test_bench_midi.py``,
``test_bench_panns_scores.py``); here the metric objects are driven with a
stand-in transcriber or embedder that returns known notes or logits, so what is
checked is what the object does with them: which notes it scores against
which, the conventions it counts, the set-level value and its bootstrap CI.
Oracles: notes worked by hand, mir_eval's own defaults, sklearn (through
``copdata.scoring.seed_frame_scores``, checked against the seed script in
``test_scoring.py``) and ``copbench.stats.bootstrap_statistic_ci`` (the
percentile bootstrap, checked in ``test_oracle_stats.py``).
"""

import inspect
from types import SimpleNamespace

import numpy as np
import pytest

from copbench.metrics.base import ScoreItem
from copbench.stats import bootstrap_statistic_ci
from copdata import scoring
from copdata.notes import Note
from copdata.roll import render_roll

SR = 16000


def _clip(clip_id, notes, seconds=3.0, fps=25.0, roll=None):
    frames = int(round(seconds * fps))
    if roll is None:
        roll = render_roll(notes, frames, fps)
    return SimpleNamespace(id=clip_id, sample_rate=SR, num_samples=int(seconds * SR), fps=fps,
                           num_frames=frames, seconds=seconds, notes=lambda: list(notes),
                           roll=lambda: roll)


class FakeTranscriber:
    """Returns the notes given for each clip id; records what it was called with."""

    def __init__(self, by_clip):
        self.by_clip, self.calls = by_clip, []

    def transcribe(self, audio, sample_rate, item=None):
        self.calls.append((audio, sample_rate, item))
        notes = self.by_clip[item]
        if notes is None:
            from copdata.errors import SilentInputError
            raise SilentInputError("silent", item=item)
        return list(notes)

    def info(self):
        return {"name": "fake", "version": "0", "threads": 2, "device": "cpu"}


def _midi_metric(by_clip, note_post=()):
    from copbench.metrics.midi import MidiMetric
    metric = MidiMetric(note_post=note_post)
    metric.transcriber = FakeTranscriber(by_clip)
    return metric


# ---- midi ----------------------------------------------------------------------------

def test_midi_settings_are_mir_evals_defaults_and_the_seed_keys():
    """Oracle: mir_eval.transcription's own keyword defaults; the seed script's keys 15-65."""
    import mir_eval
    from copbench.metrics.midi import MidiMetric
    defaults = inspect.signature(mir_eval.transcription.precision_recall_f1_overlap).parameters
    settings = MidiMetric(note_post=["ends"]).settings()
    assert settings["onset_tolerance_s"] == defaults["onset_tolerance"].default == 0.05
    assert settings["pitch_tolerance_cents"] == defaults["pitch_tolerance"].default == 50.0
    assert settings["offset_ratio"] == defaults["offset_ratio"].default == 0.2
    assert settings["offset_min_tolerance_s"] == defaults["offset_min_tolerance"].default == 0.05
    assert settings["audeo_keys"] == [15, 65]  # MIDI 36..86, Roll2Midi_evaluate_tv2a.py
    assert {"frame_roll", "seed"} <= set(settings)
    # the transcriber's record, its post-processing included (runtime choices left out)
    assert settings["transcriber"]["name"] == "basic-pitch"
    assert settings["transcriber"]["note_post"] == ["ends"]
    assert "threads" not in settings["transcriber"]


def test_midi_metric_builds_the_named_transcriber_on_the_named_device(monkeypatch):
    import copdata.transcription
    from copbench.metrics.midi import MidiMetric
    calls = []
    monkeypatch.setattr(copdata.transcription, "transcriber_for",
                        lambda name, device=None: calls.append((name, device)) or "T")
    metric = MidiMetric("transkun", device="cuda:1", note_post=["octave"])
    assert calls == [("transkun", "cuda:1")] and metric.transcriber == "T"
    assert metric.note_post == ("octave",)
    assert MidiMetric("transkun").note_post == ()


def test_midi_metric_scores_the_transcription_against_the_reference():
    """Hand-worked: reference C4 E4 G4; the transcription hits C4 and G4 and adds A4."""
    ref = [Note(0.2, 0.8, 60, 90), Note(1.0, 1.6, 64, 90), Note(2.0, 2.6, 67, 90)]
    est = [Note(0.21, 0.8, 60, 70), Note(2.03, 2.6, 67, 70), Note(2.0, 2.4, 69, 70)]
    metric = _midi_metric({"a": est})
    audio = np.full(3 * SR, 0.25, np.float32)
    # the frame reference is the dataset's stored roll (roll.npy), not the notes
    # rendered again: here it holds 5 more cells (MIDI 72, frames 70..74)
    stored = render_roll(ref, 75, 25.0)
    stored[70:75, 72 - 21] = 1
    out = metric.score(ScoreItem(_clip("a", ref, roll=stored), audio))
    (got_audio, got_sr, got_item), = metric.transcriber.calls
    assert got_audio is audio and got_sr == SR and got_item == "a"
    # notes: 2 of 3 estimated match, 2 of 3 reference found
    assert out["midi_note_precision"] == pytest.approx(2 / 3)
    assert out["midi_note_recall"] == pytest.approx(2 / 3)
    assert out["midi_note_f1"] == pytest.approx(2 / 3)
    # frames at 25 fps (render_roll: frames floor(on*fps) .. ceil(off*fps) - 1):
    # ref C4 5..19 (15), E4 25..39 (15), G4 50..64 (15) + the stored 5: 50 cells
    # est C4 5..19 (15), G4 50..64 (15), A4 50..59 (10): 40 cells; 30 in common
    assert out["midi_frame_precision"] == pytest.approx(30 / 40)
    assert out["midi_frame_recall"] == pytest.approx(30 / 50)
    assert metric.convention_counts() == {"silent_output": 0, "notes_both_empty": 0,
                                          "notes_one_empty": 0, "frames_both_empty": 0}


def test_midi_metric_applies_its_note_post_processing():
    # "octave" drops the weaker note of an octave pair with one onset (C5 at 20 under C4 at 100)
    ref = [Note(0.2, 0.8, 60, 90)]
    est = [Note(0.2, 0.8, 60, 100), Note(0.2, 0.8, 72, 20)]
    silence = np.zeros(3 * SR, np.float32)
    plain = _midi_metric({"a": est}).score(ScoreItem(_clip("a", ref), silence))
    octave = _midi_metric({"a": est}, ["octave"]).score(ScoreItem(_clip("a", ref), silence))
    assert plain["midi_note_precision"] == pytest.approx(1 / 2)
    assert octave["midi_note_precision"] == pytest.approx(1.0)


def test_midi_metric_counts_each_convention():
    notes = [Note(0.5, 1.0, 60, 90)]
    metric = _midi_metric({"silent": None, "none": [], "one": [], "extra": notes})
    silent = metric.score(ScoreItem(_clip("silent", []), np.zeros(3 * SR, np.float32)))
    assert metric.convention_counts() == {"silent_output": 1, "notes_both_empty": 1,
                                          "notes_one_empty": 0, "frames_both_empty": 1}
    assert silent["midi_note_f1"] == silent["midi_frame_f1"] == 1.0
    one = metric.score(ScoreItem(_clip("one", notes), np.zeros(3 * SR, np.float32)))
    assert metric.convention_counts()["notes_one_empty"] == 1
    assert one["midi_note_recall"] == one["midi_frame_recall"] == 0.0
    extra = metric.score(ScoreItem(_clip("extra", []), np.zeros(3 * SR, np.float32)))
    assert metric.convention_counts() == {"silent_output": 1, "notes_both_empty": 1,
                                          "notes_one_empty": 2, "frames_both_empty": 1}
    assert extra["midi_note_precision"] == extra["midi_frame_precision"] == 0.0
    # a reference note outside the audeo keys: the 88-key frames are not both empty, the
    # audeo ones are, and only the former decides the frames_both_empty convention
    low = [Note(0.5, 1.0, 25, 90)]
    metric = _midi_metric({"low": []})
    metric.score(ScoreItem(_clip("low", low), np.zeros(3 * SR, np.float32)))
    assert metric.convention_counts()["frames_both_empty"] == 0


def _chord(shift):
    return [Note(0.1 + shift, 0.7 + shift, 60, 90), Note(1.1, 1.9, 64 + int(10 * shift), 90),
            Note(2.2, 2.9, 67, 90)]


def _seed_run(clips, seed=7):
    """Score ``clips`` ({id: (reference, estimate)}) in the given order; finalize."""
    metric = _midi_metric({k: est for k, (_, est) in clips.items()})
    for k, (ref, _) in clips.items():
        metric.score(ScoreItem(_clip(k, ref), np.zeros(3 * SR, np.float32)))
    return metric.finalize(seed)


def _seed_ci_oracle(refs, ests, key, seed, n_boot):
    """copbench.stats' percentile bootstrap of the seed metric over clip indices."""
    cache = {}

    def statistic(idx):
        pick = tuple(int(i) for i in idx)
        if pick not in cache:
            cache[pick] = scoring.seed_frame_scores([refs[i] for i in pick], [ests[i] for i in pick])
        return cache[pick][key]
    return bootstrap_statistic_ci(len(refs), statistic, seed=seed, label="midi_frame_seed",
                                  n_boot=n_boot)


@pytest.fixture
def few_resamples(monkeypatch):
    """20 bootstrap resamples instead of 200 (sklearn is slow; the 200 is pinned
    in test_constants.py)."""
    import copbench.metrics.midi as midi
    monkeypatch.setattr(midi, "SEED_BOOT", 20)
    return 20


def test_midi_seed_metric_is_the_seed_script_over_clips_sorted_by_id(few_resamples):
    clips = {"c": (_chord(0.0), _chord(0.3)), "a": (_chord(0.0), _chord(0.0)),
             "b": (_chord(0.2), _chord(0.0))}
    out = _seed_run(clips)
    order = sorted(clips)
    refs = [render_roll(clips[k][0], 75, 25.0) for k in order]
    ests = [render_roll(clips[k][1], 75, 25.0) for k in order]
    want = scoring.seed_frame_scores(refs, ests)
    assert set(out) == {"midi_frame_precision_seed", "midi_frame_recall_seed", "midi_frame_f1_seed"}
    for key in ("precision", "recall", "f1"):
        entry = out[f"midi_frame_{key}_seed"]
        assert entry["mean"] == pytest.approx(want[key], abs=1e-12)
        assert entry["n"] == 3 and entry["set_level"] is True
        # the CI: the project's percentile bootstrap over clips, with this label
        lo, hi = _seed_ci_oracle(refs, ests, key, 7, few_resamples)
        assert entry["ci95"] == pytest.approx([min(lo, want[key]), max(hi, want[key])], abs=1e-12)
        assert entry["ci95"][0] < entry["ci95"][1]  # the clips differ: a real interval
    assert out["midi_frame_f1_seed"]["accuracy"] == pytest.approx(want["accuracy"], abs=1e-12)
    # the order the clips were scored in does not matter
    assert _seed_run(dict(reversed(list(clips.items())))) == out


def test_midi_seed_metric_with_two_clips_bootstraps_and_with_one_does_not(few_resamples):
    clips = {"a": (_chord(0.0), _chord(0.0)), "b": (_chord(0.0), _chord(0.3))}
    out = _seed_run(clips)["midi_frame_f1_seed"]
    refs = [render_roll(clips[k][0], 75, 25.0) for k in "ab"]
    ests = [render_roll(clips[k][1], 75, 25.0) for k in "ab"]
    lo, hi = _seed_ci_oracle(refs, ests, "f1", 7, few_resamples)
    assert out["ci95"] == pytest.approx([min(lo, out["mean"]), max(hi, out["mean"])], abs=1e-12)
    assert out["ci95"][0] < out["ci95"][1]
    # one clip of 3 s: two 2 s chunks (the second padded), no bootstrap: a point interval
    one = _seed_run({"b": clips["b"]})["midi_frame_f1_seed"]
    alone = scoring.seed_frame_scores(refs[1:], ests[1:])["f1"]
    assert one["mean"] == pytest.approx(alone, abs=1e-12) and one["ci95"] == [one["mean"]] * 2
    assert one["n"] == 1 and alone < 1.0


def test_midi_seed_metric_needs_25_fps_and_two_chunks():
    from copbench.metrics.midi import MidiMetric
    assert MidiMetric().finalize(0) == {}  # nothing scored
    # 1.6 s at 25 fps is 40 frames: one 2 s chunk, too few for the paired windows
    metric = _midi_metric({"a": _chord(0.0)})
    metric.score(ScoreItem(_clip("a", _chord(0.0), seconds=1.6), np.zeros(SR, np.float32)))
    assert metric.finalize(0) == {}
    # 2.4 s: 60 frames, two chunks (the second padded): scored
    metric = _midi_metric({"a": _chord(0.0)})
    metric.score(ScoreItem(_clip("a", _chord(0.0), seconds=2.4), np.zeros(SR, np.float32)))
    assert metric.finalize(0)["midi_frame_f1_seed"]["mean"] == pytest.approx(1.0)
    # another frame rate: the seed metric is defined at 25 fps only
    metric = _midi_metric({"a": _chord(0.0)})
    metric.score(ScoreItem(_clip("a", _chord(0.0), fps=30.0), np.zeros(SR, np.float32)))
    assert metric.finalize(0) == {}


# ---- is_panns, kl_panns ----------------------------------------------------------------

class FakePanns:
    """A stand-in Cnn14: the logits of a clip are ``TABLE[audio[0] - audio[1]]`` (one window;
    a difference of samples, so av-benchmark's DC removal leaves the row index as it is)."""

    def __init__(self, table):
        self.table, self.calls, self.seconds = np.asarray(table, np.float64), [], []

    def load(self):
        return self

    def provenance(self):
        return {"name": "panns", "weights": "fake"}

    def embed_with_logits(self, audio, sample_rate, seconds=None):
        self.calls.append(sample_rate)
        self.seconds.append(seconds)
        logits = self.table[int(round(float(audio[0]) - float(audio[1])))][None, :]
        return np.zeros((1, 4)), logits


def _panns_metric(cls_name, table, monkeypatch):
    import copbench.metrics.panns_scores as panns
    built = []
    monkeypatch.setattr(panns, "build_embedder",
                        lambda name: built.append(name) or FakePanns(table))
    metric = getattr(panns, cls_name)()
    assert built == ["panns"]
    return metric


def _coded(index, n=SR):
    """Audio whose first sample tells FakePanns which logits row it is."""
    audio = np.zeros(n, np.float32)
    audio[0] = index
    return audio


def _panns_clip(clip_id, ref_index):
    return SimpleNamespace(id=clip_id, sample_rate=SR, num_samples=SR, audio=lambda: _coded(ref_index))


def test_is_panns_is_the_inception_score_of_the_clips_sorted_by_id(monkeypatch):
    from copbench.metrics.panns_scores import inception_score
    rng = np.random.default_rng(3)
    table = rng.standard_normal((12, 6)) * 3
    metric = _panns_metric("InceptionScorePanns", table, monkeypatch)
    ids = [f"clip{i:02d}" for i in range(12)]
    for i in rng.permutation(12):  # scored out of order
        assert metric.score(ScoreItem(_panns_clip(ids[i], i), _coded(i))) == {}
    assert metric.embedder.calls == [SR] * 12
    out = metric.finalize(seed=5)["is_panns"]
    value, std = inception_score(table, 10)  # rows in id order: clip00 .. clip11
    assert out["mean"] == pytest.approx(value, rel=1e-12)
    assert out["std_splits"] == pytest.approx(std, rel=1e-12)
    assert (out["n"], out["splits"], out["set_level"], out["flags"]) == (12, 10, True, [])
    lo, hi = bootstrap_statistic_ci(12, lambda idx: inception_score(table[idx], 10)[0],
                                    seed=5, label="is_panns", n_boot=200)
    assert out["ci95"] == pytest.approx([min(lo, value), max(hi, value)], rel=1e-12)
    assert out["ci95"][0] < value < out["ci95"][1]
    settings = metric.settings()
    assert (settings["splits"], settings["shuffle_seed"]) == (10, 2020)
    assert settings["embedder"] == {"name": "panns", "weights": "fake"}
    assert {"ci", "features"} <= set(settings)
    # exactly 10 clips: ten splits, not few
    metric = _panns_metric("InceptionScorePanns", table, monkeypatch)
    for i in range(10):
        metric.score(ScoreItem(_panns_clip(ids[i], i), _coded(i)))
    ten = metric.finalize(seed=5)["is_panns"]
    assert (ten["splits"], ten["flags"]) == (10, [])


def test_is_panns_of_two_clips_resamples_with_two_splits(monkeypatch):
    # two clips, two splits of one clip each: a split's IS is exp(KL(p || p)) = 1, so the
    # value and every resample's are exactly 1 (resampled with ten splits they would be nan)
    table = np.array([[3.0, 0.0, -1.0], [0.0, 2.0, 1.0]])
    metric = _panns_metric("InceptionScorePanns", table, monkeypatch)
    for i in (1, 0):
        metric.score(ScoreItem(_panns_clip(f"c{i}", i), _coded(i)))
    out = metric.finalize(seed=1)["is_panns"]
    assert (out["mean"], out["ci95"], out["splits"], out["flags"]) == (1.0, [1.0, 1.0], 2, ["few_clips"])


def test_kl_panns_is_kl_of_the_reference_from_the_output_worked_by_hand(monkeypatch):
    # reference logits (0, 0): p_ref = (1/2, 1/2); output logits (log 3, 0): p_out = (3/4, 1/4)
    table = np.array([[0.0, 0.0], [np.log(3.0), 0.0]])
    metric = _panns_metric("KlPanns", table, monkeypatch)
    out = metric.score(ScoreItem(_panns_clip("c", 0), _coded(1)))
    # KL(p_ref || p_out) = 1/2 log(2/3) + 1/2 log(2) = 1/2 log(4/3)
    assert out["kl_panns"] == pytest.approx(0.5 * np.log(4 / 3), rel=1e-12)
    # sigmoid terms: sigmoid(0) = 1/2 on both classes of the reference;
    # 1/2 (log 1/2 - log 3/4) + 1/2 (log 1/2 - log 1/2) = 1/2 log(2/3)
    assert out["kl_panns_sigmoid"] == pytest.approx(0.5 * np.log(2 / 3), rel=1e-12)
    want = 0.5 * (np.log(0.5) - np.log(0.75 + 1e-6)) + 0.5 * (np.log(0.5) - np.log(0.25 + 1e-6))
    assert out["kl_panns_audioldm"] == pytest.approx(want, rel=1e-12)
    assert set(metric.settings()) >= {"kl_panns", "kl_panns_sigmoid", "kl_panns_audioldm", "embedder"}
    assert metric.embedder.calls == [SR, SR]  # output and reference, at the clip's rate


def test_panns_logits_are_taken_up_to_the_clips_length(monkeypatch):
    # av-benchmark cuts both sides at the clip's length (--audio_length): a 0.5 s clip whose
    # output runs 1 s asks the embedder for 0.5 s of each, output and reference
    table = np.array([[0.0, 0.0], [np.log(3.0), 0.0]])
    metric = _panns_metric("KlPanns", table, monkeypatch)
    clip = SimpleNamespace(id="c", sample_rate=SR, num_samples=SR // 2, audio=lambda: _coded(0, SR // 2))
    metric.score(ScoreItem(clip, _coded(1, SR)))
    assert metric.embedder.seconds == [0.5, 0.5]
    metric = _panns_metric("InceptionScorePanns", table, monkeypatch)
    metric.score(ScoreItem(clip, _coded(1, SR)))
    assert metric.embedder.seconds == [0.5]


def test_is_panns_of_one_clip_is_one_with_a_point_interval(monkeypatch):
    # one clip, one split: IS = exp(KL(p || p)) = 1; nothing to resample, so the interval is (1, 1)
    metric = _panns_metric("InceptionScorePanns", np.array([[3.0, 0.0, -1.0]]), monkeypatch)
    metric.score(ScoreItem(_panns_clip("only", 0), _coded(0)))
    out = metric.finalize(seed=1)["is_panns"]
    assert (out["mean"], out["ci95"], out["n"], out["splits"], out["flags"]) == (1.0, [1.0, 1.0], 1, 1,
                                                                                  ["few_clips"])


def test_kl_audioldm_where_a_reference_probability_underflows_to_zero():
    """softmax((0, -1000)) is exactly (1, 0): the zero term is dropped (0 log 0 = 0),
    quietly (no RuntimeWarning from log 0)."""
    import warnings
    from copbench.metrics.panns_scores import kl_softmax_audioldm
    ref, out = np.array([[0.0, -1000.0]]), np.array([[0.0, np.log(3.0)]])  # p_out = (1/4, 3/4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = kl_softmax_audioldm(out, ref)
    assert got == pytest.approx([-np.log(0.25 + 1e-6)], rel=1e-12)


def test_panns_scores_compute_in_float64_whatever_the_logits_dtype():
    """float32 logits: the scores are the float64 ones of the same values (torch in
    float64 as the oracle), not float32 arithmetic (which is off by ~1e-7)."""
    import torch
    from copbench.metrics.panns_scores import inception_score, kl_sigmoid, kl_softmax, kl_softmax_audioldm
    F = torch.nn.functional
    rng = np.random.default_rng(4)
    out32 = (rng.standard_normal((4, 50)) * 8).astype(np.float32)
    ref32 = (rng.standard_normal((4, 50)) * 8).astype(np.float32)
    o, r = torch.from_numpy(out32).double(), torch.from_numpy(ref32).double()
    want_soft = F.kl_div(F.log_softmax(o, 1), F.log_softmax(r, 1), reduction="none", log_target=True).sum(1)
    want_sig = F.kl_div(F.logsigmoid(o), F.logsigmoid(r), reduction="none", log_target=True).sum(1)
    want_ldm = F.kl_div((o.softmax(1) + 1e-6).log(), r.softmax(1), reduction="none").sum(1)
    assert kl_softmax(out32, ref32) == pytest.approx(want_soft.numpy(), rel=1e-10)
    assert kl_sigmoid(out32, ref32) == pytest.approx(want_sig.numpy(), rel=1e-10)
    assert kl_softmax_audioldm(out32, ref32) == pytest.approx(want_ldm.numpy(), rel=1e-10)
    p = o.softmax(1)
    q = p.mean(0, keepdim=True)
    want_is = float((p * (p.log() - q.log())).sum(1).mean().exp())
    assert inception_score(out32, 1, shuffle=False)[0] == pytest.approx(want_is, rel=1e-10)


def test_softmax_helpers_survive_large_logits():
    from copbench.metrics.panns_scores import _log_softmax, _softmax
    logits = np.array([[1000.0, 1000.0 + np.log(3.0)], [-1000.0, -1000.0]])
    assert _softmax(logits) == pytest.approx(np.array([[0.25, 0.75], [0.5, 0.5]]), rel=1e-12)
    assert _log_softmax(logits) == pytest.approx(np.log([[0.25, 0.75], [0.5, 0.5]]), rel=1e-12)


# ---- clip_score ----------------------------------------------------------------------

@pytest.mark.parametrize("num_frames, fps, rate, want", [
    (50, 25.0, 1.0, [12, 37]),          # 2 s: frames floor(0.5 * 25), floor(1.5 * 25)
    (75, 30.0, 1.0, [15, 45]),          # 2.5 s: whole seconds 0 and 1 only
    (10, 25.0, 1.0, [9]),               # 0.4 s: at least one frame, clamped to the last
    (37, 25.0, 1.0, [12]),              # 1.48 s: one whole second, one frame
    (50, 25.0, 2.0, [6, 18, 31, 43]),   # 2 frames a second: (k + 0.5) / 2 s
])
def test_clip_score_frame_times_worked_by_hand(num_frames, fps, rate, want):
    from copbench.metrics.clip_score import sample_indices
    assert sample_indices(num_frames, fps, rate) == want


class FakeImageEmbedder:
    """Frame ``f`` (all pixels equal to v) embeds to a unit vector along axis ``v``."""

    def __init__(self, dims=512):
        self.model = SimpleNamespace(config=SimpleNamespace(projection_dim=dims))
        self.seen = []

    def load(self):
        return self

    def provenance(self):
        return {"name": "clip-image"}

    def embed_frames(self, frames):
        self.seen.append([int(f[0, 0, 0]) for f in frames])
        out = np.zeros((len(frames), 512))
        out[np.arange(len(frames)), [int(f[0, 0, 0]) for f in frames]] = 1.0
        return out


class FakeWav2Clip:
    def __init__(self):
        self.calls = []

    def load(self):
        return self

    def provenance(self):
        return {"name": "wav2clip"}

    def embed(self, audio, sample_rate):
        self.calls.append((audio, sample_rate))
        # two windows whose mean lies along axes 12 and 37 with weights 3 and 1
        out = np.zeros((2, 512))
        out[0, 12], out[1, 12], out[1, 37] = 4.0, 2.0, 2.0
        return out


def _clip_score_metric(monkeypatch, dims=512):
    import copbench.metrics.clip_score as cs
    monkeypatch.setattr(cs, "ClipImageEmbedder", lambda: FakeImageEmbedder(dims))
    monkeypatch.setattr(cs, "Wav2ClipEmbedder", FakeWav2Clip)
    return cs.ClipScore()


def test_clip_score_is_100_cos_of_mean_frame_and_mean_audio_embeddings(monkeypatch):
    metric = _clip_score_metric(monkeypatch)
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(50)]  # frame i embeds along axis i
    clip = SimpleNamespace(id="c", sample_rate=SR, num_frames=50, fps=25.0,
                           iter_frames=lambda: iter(frames))
    audio = np.zeros(2 * SR, np.float32)
    out = metric.score(ScoreItem(clip, audio))
    assert metric.image_embedder.seen == [[12, 37]]
    assert len(metric.audio_embedder.calls) == 1
    assert metric.audio_embedder.calls[0][0] is audio and metric.audio_embedder.calls[0][1] == SR
    # video: (e12 + e37) / 2; audio: (3 e12 + e37) / 2; cos = (3 + 1) / (sqrt(2) sqrt(10))
    assert out == {"clip_score": pytest.approx(100 * 4 / np.sqrt(20), rel=1e-12)}
    assert set(metric.settings()) >= {"frames_per_second", "frame_times", "audio_embedder",
                                      "image_embedder"}
    from copbench.errors import MetricError
    empty = SimpleNamespace(id="e", sample_rate=SR, num_frames=50, fps=25.0, iter_frames=lambda: iter([]))
    with pytest.raises(MetricError) as caught:
        metric.score(ScoreItem(empty, np.zeros(2 * SR, np.float32)))
    assert caught.value.item == "e"
    with pytest.raises(MetricError, match="256-d") as caught:
        _clip_score_metric(monkeypatch, dims=256)  # CLIP's projection must match Wav2CLIP's 512
    assert caught.value.item == "clip_score"


# ---- fad_<embedder> ----------------------------------------------------------------------

class FakeFrames:
    """A stand-in embedder: clip audio coded with ``_coded(k)`` embeds to ``FRAMES[k]``."""

    def __init__(self, table):
        self.table, self.calls = table, []

    def load(self):
        return self

    def provenance(self):
        return {"name": "fake-frames", "version": "1"}

    def embed(self, audio, sample_rate):
        self.calls.append((int(audio[0]), len(audio), sample_rate))
        return self.table[int(audio[0])]


def _frechet_by_hand(a, b):
    """||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^1/2), scipy's sqrtm, unbiased covariances."""
    from scipy import linalg
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(s_a @ s_b).real
    return float((mu_a - mu_b) @ (mu_a - mu_b) + np.trace(s_a + s_b - 2 * root))


def _fad_setup(monkeypatch, tmp_path, n_clips=5, frames=12, dims=3):
    import copbench.metrics.fad as fad
    monkeypatch.setenv("COPBENCH_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(7)
    # references 0..n-1, outputs n..2n-1 (shifted: a real distance)
    table = {k: rng.standard_normal((frames, dims)) + (0.5 if k >= n_clips else 0.0)
             for k in range(2 * n_clips)}
    fake = FakeFrames(table)
    fake.built = []
    monkeypatch.setattr(fad, "build_embedder", lambda name: fake.built.append(name) or fake)
    clips = []
    for k in range(n_clips):
        folder = tmp_path / f"clip{k}"
        folder.mkdir(exist_ok=True)
        (folder / "audio.flac").write_bytes(f"audio {k}".encode())  # hashed for the cache key
        clips.append(SimpleNamespace(id=f"clip{k}", dir=folder, sample_rate=SR, num_samples=800,
                                     audio=lambda k=k: _coded(k, 1000)))  # 1000 samples: cut to 800
    return fad, fake, table, clips


def test_fad_is_the_frechet_distance_of_all_output_and_reference_frames(monkeypatch, tmp_path):
    from copbench.metrics.fad_inf import fad_inf, spread_at_n
    fad, fake, table, clips = _fad_setup(monkeypatch, tmp_path)
    metric = fad.FadMetric("fake", per_clip=True)
    assert fake.built == ["fake"] and metric.provenance()["flags"] == []
    assert metric.NAME == "fad_fake" and metric.COLUMNS == {"fad_fake": False, "fad_fake_inf": False}
    assert metric.finalize(0) == {}  # nothing scored
    metric.bind_split(list(reversed(clips)))
    for k in (3, 0, 1, 2):  # clip4 has no output
        assert metric.score(ScoreItem(clips[k], _coded(5 + k, 800))) == {}
    assert fake.calls == [(5 + k, 800, SR) for k in (3, 0, 1, 2)]
    out = metric.finalize(seed=3)
    # every reference clip of the split, cut to its num_samples, at its rate
    assert sorted(fake.calls[4:]) == [(k, 800, SR) for k in range(5)]
    ref = np.concatenate([table[k] for k in range(5)])
    outs = {f"clip{k}": table[5 + k] for k in range(4)}
    got = np.concatenate(list(outs.values()))
    entry = out["fad_fake"]
    assert entry["mean"] == pytest.approx(_frechet_by_hand(got, ref), rel=1e-9)
    assert entry["value_eig"] == pytest.approx(entry["mean"], rel=1e-9)
    assert entry["flags"] == ["missing_clips"] == metric.provenance()["flags"]
    assert (entry["n"], entry["n_clips"], entry["n_frames"], entry["set_level"]) == \
        (4, {"output": 4, "reference": 5}, {"output": 48, "reference": 60}, True)
    refs = {f"clip{k}": table[k] for k in range(5)}
    assert entry["ci95"] == list(spread_at_n(outs, refs, seed=3).ci95)
    # per clip: each output clip's own Gaussian against the reference one
    assert entry["per_clip_column"] == "fad_fake_clip_fd"
    assert entry["per_clip"] == pytest.approx({c: _frechet_by_hand(v, ref) for c, v in outs.items()},
                                              rel=1e-9)
    inf = fad_inf(ref, got, seed=3)
    entry_inf = out["fad_fake_inf"]
    assert entry_inf["mean"] == pytest.approx(inf.value, rel=1e-12)
    assert (entry_inf["slope"], entry_inf["r2"]) == pytest.approx((inf.slope, inf.r2), rel=1e-12)
    assert entry_inf["points"] == [[n, fd] for n, fd in inf.points]
    assert (entry_inf["seed"], entry_inf["n"], entry_inf["ci95"], entry_inf["set_level"]) == (3, 4, None, True)
    assert {"estimator", "interval"} <= set(entry_inf) and "interval" in entry
    assert entry_inf["n_frames"] == entry["n_frames"] and entry_inf["n_clips"] == entry["n_clips"]
    # FAD-inf keeps the run's flags but its own sign: "negative" is its intercept's
    assert set(entry_inf["flags"]) == {"missing_clips"} | set(inf.flags) and "few_frames" in inf.flags
    assert {"embedder", "covariance", "reference", "fad_inf", "ci", "per_clip"} <= set(metric.settings())
    assert metric.settings()["embedder"] == fake.provenance()


class FakeFramesAv:
    """A stand-in VGGish / PANNs for the av-benchmark path: audio coded with ``_coded_dc(k)``
    embeds to ``table[k]`` (a difference of samples: removing the DC keeps the code); each
    call records the length, the mean (the DC left), the rate and the cut."""

    def __init__(self, table):
        self.table, self.calls = table, []

    def load(self):
        return self

    def provenance(self):
        return {"name": "fake-av", "version": "1"}

    def embed(self, audio, sample_rate, seconds=None):
        audio = np.asarray(audio, np.float64)
        code = int(round(audio[0] - audio[1]))
        self.calls.append((code, len(audio), round(float(audio.mean()), 6), sample_rate, seconds))
        return self.table[code]


def _coded_dc(k, n, dc):
    audio = np.full(n, dc, np.float32)
    audio[0] += k
    return audio


def test_fad_vggish_and_panns_prepare_both_sides_as_av_benchmark(monkeypatch, tmp_path):
    """fad_vggish / fad_panns (av-benchmark's FD-VGG, FD-PANN): each side's whole file has its
    mean removed and is cut at the clip's length by the embedder (seconds = num_samples / rate):
    the output before the length rule (1200 samples, DC 0.5), the reference unfitted (1000
    samples, DC 0.3), for a clip of 800 samples. Worked by hand from the recorded calls."""
    from copbench.metrics.base import AV_BENCHMARK_DC, AV_BENCHMARK_LENGTH_RULE, fit_length
    import copbench.metrics.fad as fad
    rng = np.random.default_rng(5)
    table = {k: rng.standard_normal((6, 2)) + (0.7 if k >= 3 else 0.0) for k in range(6)}
    for name in ("vggish", "panns"):
        monkeypatch.setenv("COPBENCH_CACHE", str(tmp_path / name / "cache"))  # embedded afresh
        fake = FakeFramesAv(table)
        monkeypatch.setattr(fad, "build_embedder", lambda embedder, fake=fake: fake)
        metric = fad.FadMetric(name)
        assert (metric.NAME, metric.VERSION) == (f"fad_{name}", "3.1")
        settings = metric.settings()
        assert (settings["dc"], settings["length_rule"]) == (AV_BENCHMARK_DC, AV_BENCHMARK_LENGTH_RULE)
        clips = []
        for k in range(3):
            folder = tmp_path / name / f"clip{k}"
            folder.mkdir(parents=True)
            (folder / "audio.flac").write_bytes(f"audio {k}".encode())
            clips.append(SimpleNamespace(id=f"clip{k}", dir=folder, sample_rate=SR, num_samples=800,
                                         audio=lambda k=k: _coded_dc(k, 1000, 0.3)))
        for k, clip in enumerate(clips):
            full = _coded_dc(3 + k, 1200, 0.5)
            metric.score(ScoreItem(clip, fit_length(full, 800), full_audio=full))
        out = metric.finalize(seed=0)[f"fad_{name}"]
        cut = 800 / SR
        # outputs: full length, DC gone (the code k/1200 of the mean is removed too: mean 0)
        assert fake.calls[:3] == [(3 + k, 1200, 0.0, SR, cut) for k in range(3)]
        assert fake.calls[3:] == [(k, 1000, 0.0, SR, cut) for k in range(3)]
        expected = fad.frechet_result(np.concatenate([table[3 + k] for k in range(3)]),
                                      np.concatenate([table[k] for k in range(3)])).value
        assert out["mean"] == expected
    # any other embedder: no preparation, VERSION 3.0, the length rule of the output
    fake = FakeFrames({})
    monkeypatch.setattr(fad, "build_embedder", lambda embedder: fake)
    other = fad.FadMetric("fake")
    assert other.VERSION == "3.0" and other.settings()["dc"] == "none"
    assert "length_rule" in other.settings() and not other.av_benchmark


def test_fad_reference_frames_are_cached_by_the_split(monkeypatch, tmp_path):
    fad, fake, table, clips = _fad_setup(monkeypatch, tmp_path)
    first = fad.FadMetric("fake")
    for c in clips[:4]:
        first.score(ScoreItem(c, _coded(5 + int(c.id[-1]), 800)))
    value = first.finalize(seed=0)["fad_fake"]
    assert "per_clip" not in value
    # no bind_split: the reference is the scored clips (here 4 of 5), no missing_clips
    assert value["n_clips"] == {"output": 4, "reference": 4} and "missing_clips" not in value["flags"]
    calls = len(fake.calls)
    second = fad.FadMetric("fake")
    for c in clips[:4]:
        second.score(ScoreItem(c, _coded(5 + int(c.id[-1]), 800)))
    again = second.finalize(seed=0)["fad_fake"]
    assert len(fake.calls) == calls + 4  # the outputs only: the reference came from the cache
    assert again == value  # the cached frames are split back into the same clips
    # the same audio files under other clip ids: another reference, embedded again
    renamed = [SimpleNamespace(**{**vars(c), "id": "x" + c.id}) for c in clips[:4]]
    fourth = fad.FadMetric("fake")
    for c in renamed:
        fourth.score(ScoreItem(c, _coded(5 + int(c.id[-1]), 800)))
    assert fourth.finalize(seed=0)["fad_fake"]["flags"] == value["flags"]
    assert len(fake.calls) == calls + 4 + 4 + 4
    calls = len(fake.calls)
    # another split (one more clip): another key, embedded again
    third = fad.FadMetric("fake")
    third.bind_split(clips)
    third.score(ScoreItem(clips[0], _coded(5, 800)))
    one = third.finalize(seed=0)["fad_fake"]
    assert one["n_clips"] == {"output": 1, "reference": 5}
    assert one["flags"] == ["missing_clips", "too_few_clips"]  # too few: the spread's flag
    assert len(fake.calls) == calls + 1 + 5


def test_fad_per_clip_needs_two_frames_and_inf_keeps_its_own_sign(monkeypatch, tmp_path):
    fad, fake, table, clips = _fad_setup(monkeypatch, tmp_path)
    table[5], table[6] = table[5][:1], table[6][:2]  # outputs of one and of two frames
    real = fad.frechet_result

    def negative(a, b):  # the full FD flagged negative (round-off): FAD-inf does not inherit it
        res = real(a, b)
        res.flags = sorted(set(res.flags) | {"negative"})
        return res
    monkeypatch.setattr(fad, "frechet_result", negative)
    metric = fad.FadMetric("fake", per_clip=True)
    for k in (0, 1):
        metric.score(ScoreItem(clips[k], _coded(5 + k, 800)))
    out = metric.finalize(seed=0)
    assert list(out["fad_fake"]["per_clip"]) == ["clip1"]  # one frame has no covariance
    assert "negative" in out["fad_fake"]["flags"] and "negative" not in out["fad_fake_inf"]["flags"]
