"""``copdata validate`` against datasets with exactly one planted defect (issue 21).

Oracle: one tiny dataset is built from a MIDI written by hand (three notes in a
one-second clip, 10 fps, 8 kHz) and is valid (``validate`` finds nothing). Each
test copies it, plants one defect by hand (a drum track, a roll cell off, a
wrong sample rate, one sample missing, a claim that does not follow from its
score, ...) and, where the defect is not about them, records the files' new
content hashes and stats as a build would, so the one problem ``validate``
must report is known by construction: the exact list of problem lines.

This is the fast test selection of ``copdata/dataset/validate.py`` for
``make mutate`` (one small build per test session).
"""

import json
import shutil

import av
import numpy as np
import pretty_midi
import pytest

from copdata import open_dataset
from copdata.build import build_dataset
from copdata.dataset.integrity import view_hashes
from copdata.dataset.validate import validate_dataset
from copdata.ids import MAX_CLIP_ID
from copdata.media.encode import encode_video, write_audio
from copdata.notes import Note
from copdata.sources.base import BuildSettings
from copdata.sources.synth import SynthSource
from copdata.steps import make_steps

FPS, SR, SECONDS = 10.0, 8000, 1.0
SIZE = (208, 32)  # the smallest frame the synth renderer draws (4 pixels per white key)
# three piano notes inside [0, 1] s: C4, E4, G4 (the last ends on the clip's end)
NOTES = [Note(0.0, 0.35, 60, 80), Note(0.3, 0.6, 64, 90), Note(0.55, 1.0, 67, 100)]


def _write_midi(path, tracks, bends=0):
    """``tracks``: list of (program, is_drum, notes)."""
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120.0)
    for program, is_drum, notes in tracks:
        inst = pretty_midi.Instrument(program=program, is_drum=is_drum)
        inst.notes = [pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.start, end=n.end)
                      for n in notes]
        inst.pitch_bends = [pretty_midi.PitchBend(pitch=1000, time=0.1 * (i + 1)) for i in range(bends)]
        pm.instruments.append(inst)
    pm.write(str(path))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("valid")
    (root / "midi").mkdir()
    _write_midi(root / "midi" / "three.mid", [(0, False, NOTES)])
    settings = BuildSettings(clip_seconds=SECONDS, fps=FPS, sample_rate=SR, seed=0, frame_size=SIZE)
    build_dataset(SynthSource(midi_dir=root / "midi", frame_size=SIZE), root / "ds", settings,
                  progress=False)
    return root / "ds"


@pytest.fixture
def ds(built, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(built, root)
    return root


def _rows(root):
    return [json.loads(line) for line in (root / "clips.jsonl").read_text().splitlines() if line]


def _write_rows(root, rows):
    (root / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _cid(root):
    (row,) = _rows(root)
    return row["id"]


def _edit_row(root, fn):
    rows = _rows(root)
    fn(rows[0])
    _write_rows(root, rows)


def _restamp(root):
    """Record the clip files' content hashes, as the build would have."""
    cid = _cid(root)
    _edit_row(root, lambda r: r.update(hashes=view_hashes(root / "clips" / cid)))


def _settings(root, fn):
    path = root / "dataset.json"
    settings = json.loads(path.read_text())
    fn(settings)
    path.write_text(json.dumps(settings))


def _validate(root):
    return validate_dataset(root, progress=False)


def _write_steps(root, claims):
    """steps.json as the build writes it for these notes and claims."""
    cid = _cid(root)
    meta = _rows(root)[0].get("meta")
    steps = make_steps(NOTES, SECONDS, FPS, meta, claims)
    (root / "clips" / cid / "steps.json").write_text(json.dumps(steps))


def _video(path, frames, codec="libx264", size=SIZE):
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=int(FPS))
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(frames):
            image = np.full((size[1], size[0], 3), 40 + 20 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def test_the_built_dataset_is_valid_and_holds_the_hand_written_notes(built):
    assert _validate(built) == []
    (clip,) = open_dataset(built).clips()
    assert clip.notes() == NOTES
    roll = clip.roll()
    # frame i covers [i/10, (i+1)/10): C4 (column 39) frames 0..3, E4 (43) 3..5, G4 (46) 5..9
    assert np.flatnonzero(roll[:, 39]).tolist() == [0, 1, 2, 3]
    assert np.flatnonzero(roll[:, 43]).tolist() == [3, 4, 5]
    assert np.flatnonzero(roll[:, 46]).tolist() == [5, 6, 7, 8, 9]
    assert clip.row.to_dict()["qa"]["claims"]["keyboard"] is True  # the steps say "top-down"


# ---- the dataset as a whole ----------------------------------------------------------

def test_a_folder_that_is_not_a_dataset_is_one_problem(tmp_path):
    problems = _validate(tmp_path)
    assert len(problems) == 1 and problems[0].startswith(f"{tmp_path}: ")
    assert "not a CoP dataset folder" in problems[0]


def test_a_clips_file_that_is_not_json_is_one_problem(ds):
    (ds / "clips.jsonl").write_text("{not json\n")
    problems = _validate(ds)
    assert len(problems) == 1 and problems[0].startswith(f"{ds}: ")


def test_dataset_json_missing_a_setting_and_report_json_missing(ds):
    _settings(ds, lambda s: s.pop("source"))
    (ds / "report.json").unlink()
    assert _validate(ds) == ["dataset.json: missing source", "report.json: missing"]


def test_duplicate_ids_are_each_reported(ds):
    rows = _rows(ds)
    _write_rows(ds, rows * 3)
    cid = rows[0]["id"]
    problems = [p for p in _validate(ds) if p.startswith("clips.jsonl: duplicate")]
    assert problems == [f"clips.jsonl: duplicate id {cid}"] * 2


def test_an_unsafe_id_is_reported_and_its_clip_skipped_but_not_the_next(ds):
    cid = _cid(ds)
    rows = _rows(ds)
    bad = dict(rows[0], id="../escape")
    # the clip after the unsafe row lost its roll: it is still checked
    (ds / "clips" / cid / "roll.npy").unlink()
    _write_rows(ds, [bad] + rows)
    assert _validate(ds) == [
        "clips.jsonl: unsafe clip id '../escape' (ids are <source>.<8 digits>, at most "
        f"{MAX_CLIP_ID} characters)",
        "../escape: id does not name source 'three' and segment 0",  # integrity's span check
        f"{cid}: missing roll.npy",
    ]


def test_folders_not_in_the_clips_file_are_reported_in_name_order(ds):
    (ds / "clips" / "zz-extra").mkdir()
    (ds / "clips" / ".tmp-half.123").mkdir()
    assert _validate(ds) == ["clips/.tmp-half.123: temporary (partial) clip folder",
                             "clips/zz-extra: folder not in clips.jsonl"]


def test_an_empty_split_and_an_unsafe_split(ds):
    cid = _cid(ds)
    _edit_row(ds, lambda r: r.update(split=""))
    assert _validate(ds) == [f"{cid}: row has an empty split"]
    _edit_row(ds, lambda r: r.update(split="../x"))
    problems = _validate(ds)
    assert len(problems) == 1 and problems[0].startswith(f"{cid}: ") and "../x" in problems[0]


def test_missing_view_files_are_one_line_and_nothing_else_is_checked(ds):
    cid = _cid(ds)
    (ds / "clips" / cid / "roll.npy").unlink()
    (ds / "clips" / cid / "steps.json").unlink()
    # the claims no longer follow from the scores: not checked for a clip with files missing
    _edit_row(ds, lambda r: r["qa"].update(keyboard_score=0.0))
    assert _validate(ds) == [f"{cid}: missing roll.npy, steps.json"]


# ---- video and audio -----------------------------------------------------------------

def test_video_one_frame_short(ds):
    cid = _cid(ds)
    _video(ds / "clips" / cid / "video.mp4", 9)
    _restamp(ds)
    assert _validate(ds) == [f"{cid}: video has 9 frames, expected 10"]


def test_video_not_h264(ds):
    cid = _cid(ds)
    _video(ds / "clips" / cid / "video.mp4", 10, codec="mpeg4")
    _restamp(ds)
    assert _validate(ds) == [f"{cid}: video codec is mpeg4, expected h264"]


def test_video_that_does_not_decode(ds):
    cid = _cid(ds)
    (ds / "clips" / cid / "video.mp4").write_bytes(b"\x00" * 300)
    _restamp(ds)
    problems = _validate(ds)
    assert problems[0].startswith(f"{cid}: video does not decode: ")
    assert all("video" in p or "stats cannot be checked" in p for p in problems), problems


def _audio(ds, samples, rate=SR, channels=1):
    cid = _cid(ds)
    path = ds / "clips" / cid / "audio.flac"
    audio = (0.1 * np.sin(np.arange(samples) * 0.05)).astype(np.float32)
    if channels == 1:
        write_audio(path, audio, rate)
    else:
        pcm = (np.stack([audio] * channels) * 32767).astype(np.int16)
        with av.open(str(path), "w", format="flac") as container:
            stream = container.add_stream("flac", rate=rate, layout="stereo")
            frame = av.AudioFrame.from_ndarray(pcm.T.reshape(1, -1), format="s16", layout="stereo")
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    # the row states the new audio's level as a build would; only the planted defect is left
    from copdata.dataset.integrity import _peak_dbfs
    from copdata.media.decode import db_full_scale, read_audio

    decoded, _ = read_audio(path, SR)
    _edit_row(ds, lambda r: r["stats"].update(
        samples=len(decoded), audio_rms_dbfs=round(db_full_scale(decoded), 2),
        audio_peak_dbfs=_peak_dbfs(decoded)))
    _restamp(ds)
    return cid


def test_audio_one_sample_short(ds):
    cid = _audio(ds, SR - 1)
    assert _validate(ds) == [f"{cid}: audio has 7999 samples, expected 8000"]


def test_audio_at_another_sample_rate(ds):
    cid = _audio(ds, SR, rate=16000)  # 0.5 s at 16 kHz: the right count, the wrong rate
    problems = _validate(ds)
    assert f"{cid}: audio sample rate 16000, expected 8000" in problems
    assert not any("samples, expected" in p or "channels" in p for p in problems), problems


def test_audio_in_stereo(ds):
    cid = _audio(ds, SR, channels=2)
    assert _validate(ds) == [f"{cid}: audio has 2 channels, expected mono"]


def test_audio_that_does_not_decode(ds):
    cid = _cid(ds)
    (ds / "clips" / cid / "audio.flac").write_bytes(b"fLaC" + b"\x00" * 100)
    _restamp(ds)
    problems = _validate(ds)
    assert problems[0].startswith(f"{cid}: audio does not decode: ")
    assert not any("sample rate" in p or "channels" in p for p in problems), problems


# ---- MIDI, roll and steps ------------------------------------------------------------

def _midi(ds, tracks, bends=0):
    cid = _cid(ds)
    _write_midi(ds / "clips" / cid / "notes.mid", tracks, bends)
    _restamp(ds)
    return cid


def test_a_drum_track_beside_the_piano(ds):
    drums = [Note(0.1 * i, 0.1 * i + 0.05, 36, 110) for i in range(5)]
    cid = _midi(ds, [(0, False, NOTES), (0, True, drums)])
    # drum notes are not piano notes: the roll, steps and stats still hold
    assert _validate(ds) == [f"{cid}: MIDI has 2 tracks, expected one piano track",
                             f"{cid}: MIDI track program 0 (drum=True), expected 0"]


def test_the_piano_split_over_two_tracks(ds):
    cid = _midi(ds, [(0, False, NOTES[:1]), (0, False, NOTES[1:])])
    assert _validate(ds) == [f"{cid}: MIDI has 2 tracks, expected one piano track"]


def test_a_track_on_another_program(ds):
    cid = _midi(ds, [(1, False, NOTES)])
    assert _validate(ds) == [f"{cid}: MIDI track program 1 (drum=False), expected 0"]


def test_pitch_bends(ds):
    cid = _midi(ds, [(0, False, NOTES)], bends=2)
    assert _validate(ds) == [f"{cid}: MIDI has 2 pitch bends"]


def test_a_note_past_the_clip_end(ds):
    late = NOTES[:2] + [Note(0.55, 1.25, 67, 100)]  # the roll and steps are checked too
    cid = _midi(ds, [(0, False, late)])
    problems = _validate(ds)
    assert f"{cid}: 1 notes outside [0, 1] s, e.g. {late[2]}" in problems, problems


def test_a_note_ending_a_tick_past_the_clip_end(ds):
    # one tick (1/960 s at 480 ticks per beat, 120 bpm) past 1.0 s
    late = NOTES[:2] + [Note(0.55, 1.0 + 1 / 960, 67, 100)]
    cid = _midi(ds, [(0, False, late)])
    problems = _validate(ds)
    assert any(p.startswith(f"{cid}: 1 notes outside [0, 1] s") for p in problems), problems


def test_an_empty_clip_is_valid_but_not_when_its_row_counts_notes(ds):
    cid = _cid(ds)
    clip_dir = ds / "clips" / cid
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120.0)
    pm.instruments.append(pretty_midi.Instrument(program=0))  # dropped when read back
    pm.write(str(clip_dir / "notes.mid"))
    np.save(clip_dir / "roll.npy", np.zeros((10, 88), np.uint8))
    qa = _rows(ds)[0]["qa"]
    (clip_dir / "steps.json").write_text(json.dumps(make_steps([], SECONDS, FPS, _rows(ds)[0]["meta"],
                                                                qa["claims"])))
    stats = dict(notes=0, notes_per_second=0.0, pitch_min=None, pitch_max=None, velocity_min=None,
                 velocity_max=None, active_frames=0)
    _edit_row(ds, lambda r: r["stats"].update(stats))
    _restamp(ds)
    assert _validate(ds) == []
    _edit_row(ds, lambda r: r["stats"].update(notes=3))
    problems = _validate(ds)
    assert f"{cid}: MIDI has 0 tracks, expected one piano track" in problems, problems


def test_a_midi_that_does_not_parse(ds):
    cid = _cid(ds)
    (ds / "clips" / cid / "notes.mid").write_bytes(b"MThd garbage")
    _restamp(ds)
    problems = _validate(ds)
    assert problems[0].startswith(f"{cid}: notes.mid does not parse:"), problems
    assert not any("roll" in p or "steps.json" in p for p in problems), problems


def _roll(ds, fn):
    cid = _cid(ds)
    path = ds / "clips" / cid / "roll.npy"
    np.save(path, fn(np.load(path)))
    _restamp(ds)
    return cid


def test_a_roll_one_cell_off(ds):
    # C4 held one frame longer (frame 4) than the notes say; frame 4 sounds anyway (E4)
    cid = _roll(ds, lambda r: (r.__setitem__((4, 39), 80), r)[1])
    assert _validate(ds) == [f"{cid}: roll differs from the roll rendered from notes.mid in 1 cells"]


def test_a_roll_with_a_wrong_velocity_in_two_cells(ds):
    cid = _roll(ds, lambda r: (r.__setitem__((slice(6, 8), 46), 99), r)[1])
    assert _validate(ds) == [f"{cid}: roll differs from the roll rendered from notes.mid in 2 cells"]


def test_a_roll_of_another_dtype_or_length(ds):
    cid = _roll(ds, lambda r: r.astype(np.int16))
    assert _validate(ds) == [f"{cid}: roll is int16 (10, 88), expected uint8 (10, 88)"]
    cid = _roll(ds, lambda r: r.astype(np.uint8)[:9])
    problems = _validate(ds)
    assert f"{cid}: roll is uint8 (9, 88), expected uint8 (10, 88)" in problems, problems


def test_a_roll_that_does_not_load(ds):
    cid = _cid(ds)
    (ds / "clips" / cid / "roll.npy").write_bytes(b"not numpy")
    _restamp(ds)
    problems = _validate(ds)
    assert any(p.startswith(f"{cid}: roll.npy does not load: ") for p in problems), problems
    assert not any("roll is" in p or "roll differs" in p for p in problems), problems


def _steps(ds, fn):
    cid = _cid(ds)
    path = ds / "clips" / cid / "steps.json"
    path.write_text(json.dumps(fn(json.loads(path.read_text()))))
    _restamp(ds)
    return cid


def test_steps_that_state_a_wrong_number(ds):
    def wrong(steps):
        notes = next(s for s in steps if s["step"] == "notes")
        assert "3 notes" in notes["text"]
        notes["text"] = notes["text"].replace("3 notes", "4 notes")
        return steps

    cid = _steps(ds, wrong)
    assert _validate(ds) == [f"{cid}: steps.json states something not true of notes.mid"]


@pytest.mark.parametrize("cut", ["order", "short", "three"])
def test_steps_that_do_not_walk_the_chain(ds, cut):
    edit = {"order": lambda s: s[::-1], "short": lambda s: s[:2], "three": lambda s: s[:3]}[cut]
    cid = _steps(ds, edit)
    assert _validate(ds) == [f"{cid}: steps.json does not walk video -> keys -> notes -> sound"]


def test_steps_that_do_not_load(ds):
    cid = _cid(ds)
    (ds / "clips" / cid / "steps.json").write_text("[{")
    _restamp(ds)
    problems = _validate(ds)
    assert len(problems) == 1 and problems[0].startswith(f"{cid}: steps.json does not load: ")


def test_steps_follow_the_rows_claims(ds):
    """Steps written for other claims than the row's: the claims reach make_steps."""
    cid = _cid(ds)
    _write_steps(ds, {"keyboard": False, "solo_piano": False})
    _restamp(ds)
    assert _validate(ds) == [f"{cid}: steps.json states something not true of notes.mid"]


# ---- QA claims -------------------------------------------------------------------------

def _claims(ds, claims=None, **qa):
    """Set qa fields and claims, and write the steps those claims give."""
    def edit(row):
        row["qa"].update(qa)
        if claims is not None:
            row["qa"]["claims"] = claims
    _edit_row(ds, edit)
    if claims is not None:
        _write_steps(ds, claims)
    _restamp(ds)
    return _cid(ds)


def test_a_keyboard_claim_below_its_threshold(ds):
    # built: keyboard_score 0.75 >= 0.5 and 88 keys; piano_pitches 3 < 6, so no solo-piano claim
    cid = _claims(ds, keyboard_score=0.4999)
    assert _validate(ds) == [f"{cid}: qa.claims.keyboard=True but keyboard_score=0.4999 and the "
                             "claim threshold is 0.5"]


def test_a_score_exactly_at_the_threshold_claims(ds):
    _claims(ds, keyboard_score=0.5)
    assert _validate(ds) == []


def test_a_keyboard_claim_without_enough_keys(ds):
    cid = _claims(ds, keyboard_keys=48)  # 49 needed (claim_keyboard_keys)
    assert _validate(ds) == [f"{cid}: qa.claims.keyboard=True but keyboard_score="
                             f"{_rows(ds)[0]['qa']['keyboard_score']} and the claim threshold is 0.5"]
    _claims(ds, keyboard_keys=49)
    assert _validate(ds) == []
    _claims(ds, keyboard_keys=None)  # not measured: the score alone decides
    assert _validate(ds) == []


def test_the_keys_count_only_where_the_dataset_asks_for_it(ds):
    _claims(ds, keyboard_keys=10)
    _settings(ds, lambda s: s["qa"].pop("claim_keyboard_keys"))
    assert _validate(ds) == []


def test_a_missing_claim_where_the_score_makes_one(ds):
    cid = _claims(ds, claims={"keyboard": False, "solo_piano": False})
    assert _validate(ds) == [f"{cid}: qa.claims.keyboard=False but keyboard_score="
                             f"{_rows(ds)[0]['qa']['keyboard_score']} and the claim threshold is 0.5"]


def test_a_solo_piano_claim_needs_its_distinct_pitches(ds):
    score = _rows(ds)[0]["qa"]["piano_score"]
    assert score >= 0.5
    cid = _claims(ds, claims={"keyboard": True, "solo_piano": True}, piano_pitches=5)
    assert _validate(ds) == [f"{cid}: qa.claims.solo_piano=True but piano_score={score} and the "
                             "claim threshold is 0.5 (5 distinct pitches, 6 needed)"]
    _claims(ds, piano_pitches=6)
    assert _validate(ds) == []
    _claims(ds, piano_pitches=None)  # not measured: the score alone decides
    assert _validate(ds) == []
    _settings(ds, lambda s: s["qa"].pop("claim_piano_pitches"))
    _claims(ds, piano_pitches=2)
    assert _validate(ds) == []


def test_solo_piano_claim_below_its_threshold_and_a_raised_threshold(ds):
    cid = _claims(ds, claims={"keyboard": True, "solo_piano": True}, piano_pitches=6, piano_score=0.3)
    assert _validate(ds) == [f"{cid}: qa.claims.solo_piano=True but piano_score=0.3 and the "
                             "claim threshold is 0.5 (6 distinct pitches, 6 needed)"]
    _settings(ds, lambda s: s["qa"].update(claim_piano=0.25))
    assert _validate(ds) == []
    _settings(ds, lambda s: s["qa"].pop("claim_piano_pitches"))
    _claims(ds, piano_score=0.2)
    assert _validate(ds) == [f"{cid}: qa.claims.solo_piano=True but piano_score=0.2 and the "
                             "claim threshold is 0.25"]


def test_a_recorded_dataset_needs_the_piano_timbre_for_solo_piano(ds):
    """A recorded build's qa block names claim_piano_timbre: the claim needs the
    timbre measured and at least that; not measured (None) makes no claim."""
    score = _rows(ds)[0]["qa"]["piano_score"]
    _settings(ds, lambda s: s["qa"].update(claim_piano_timbre=0.3))
    cid = _claims(ds, claims={"keyboard": True, "solo_piano": True}, piano_pitches=6,
                  piano_timbre=0.2999)
    assert _validate(ds) == [f"{cid}: qa.claims.solo_piano=True but piano_score={score} and the "
                             "claim threshold is 0.5 (6 distinct pitches, 6 needed) "
                             "(piano_timbre 0.2999, 0.3 needed)"]
    _claims(ds, piano_timbre=0.3)
    assert _validate(ds) == []
    _claims(ds, piano_timbre=None)
    assert len(_validate(ds)) == 1
    _claims(ds, claims={"keyboard": True, "solo_piano": False})
    assert _validate(ds) == []  # not measured, not claimed
    _settings(ds, lambda s: s["qa"].update(claim_piano_timbre=None))  # a rendered build
    assert _validate(ds) == [f"{cid}: qa.claims.solo_piano=False but piano_score={score} and the "
                             "claim threshold is 0.5 (6 distinct pitches, 6 needed)"]


@pytest.mark.parametrize("value", [None, "0.9"])
def test_a_score_that_is_not_a_number(ds, value):
    cid = _claims(ds, keyboard_score=value, piano_score=0.3,
                  claims={"keyboard": True, "solo_piano": True})
    # the keyboard line, then solo piano is still checked
    assert _validate(ds) == [
        f"{cid}: qa.keyboard_score is missing or not a number",
        f"{cid}: qa.claims.solo_piano=True but piano_score=0.3 and the claim threshold is 0.5 "
        "(3 distinct pitches, 6 needed)"]


def test_qa_object_and_qa_block_must_come_together(ds):
    cid = _cid(ds)
    _settings(ds, lambda s: s.pop("qa"))
    assert _validate(ds) == [f"{cid}: row has a qa object but dataset.json has no qa block"]
    _edit_row(ds, lambda r: r.pop("qa"))
    _write_steps(ds, None)
    _restamp(ds)
    assert _validate(ds) == []
    _settings(ds, lambda s: s.update(qa={"claim_keyboard": 0.5, "claim_piano": 0.5}))
    assert _validate(ds) == [f"{cid}: row has no qa object although the build ran QA"]


# ---- what the checks read, and the loop over clips -----------------------------------

def test_a_clip_with_files_missing_does_not_stop_the_next_clip(ds):
    """A second clip (segment 1 of the same source) lost its roll; the clip after
    it in clips.jsonl has one roll cell off: both are reported."""
    cid = _cid(ds)
    (row,) = _rows(ds)
    second = "three.00000001"
    shutil.copytree(ds / "clips" / cid, ds / "clips" / second)
    (ds / "clips" / second / "roll.npy").unlink()
    _roll(ds, lambda r: (r.__setitem__((4, 39), 80), r)[1])
    (row,) = _rows(ds)
    _write_rows(ds, [dict(row, id=second, segment=1, start=1.0, end=2.0), row])
    assert _validate(ds) == [f"{second}: missing roll.npy",
                             f"{cid}: roll differs from the roll rendered from notes.mid in 1 cells"]


def test_a_dataset_without_its_clips_folder(ds):
    cid = _cid(ds)
    shutil.rmtree(ds / "clips")
    assert _validate(ds) == [f"{cid}: missing video.mp4, audio.flac, notes.mid, roll.npy, steps.json"]


def test_video_frames_are_counted_on_the_video_stream_only(ds):
    """An mp4 with an audio stream beside the 10 video frames is still 10 frames."""
    cid = _cid(ds)
    path = ds / "clips" / cid / "video.mp4"
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=int(FPS))
        video.width, video.height = SIZE
        video.pix_fmt = "yuv420p"
        audio = container.add_stream("aac", rate=SR, layout="mono")
        for i in range(10):
            image = np.full((SIZE[1], SIZE[0], 3), 40 + 20 * i, np.uint8)
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        pcm = np.zeros((1, SR), np.float32)
        frame = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="mono")
        frame.sample_rate = SR
        for packet in audio.encode(frame):
            container.mux(packet)
        for stream in (video, audio):
            for packet in stream.encode(None):
                container.mux(packet)
    with av.open(str(path)) as container:  # the file holds both streams
        assert len(container.streams.video) == 1 and len(container.streams.audio) == 1
    _restamp(ds)
    assert _validate(ds) == []


def test_audio_samples_are_counted_on_the_first_audio_stream_only(ds):
    """An audio file with a second audio stream (a Matroska file under the clip's
    name): its first stream has the 8000 samples; the second is not counted."""
    cid = _cid(ds)
    path = ds / "clips" / cid / "audio.flac"
    decoded_before = open_dataset(ds)[cid].audio()
    pcm = np.round(decoded_before * 32768).astype(np.int16)[None, :]
    with av.open(str(path), "w", format="matroska") as container:
        streams = [container.add_stream("pcm_s16le", rate=SR, layout="mono") for _ in range(2)]
        for stream in streams:
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = SR
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    with av.open(str(path)) as container:
        assert len(container.streams.audio) == 2
    _restamp(ds)
    assert _validate(ds) == []


def test_a_note_ending_within_a_microsecond_of_the_clip_end_is_inside(ds):
    """The tolerance is 1e-6 s: a note ending exactly 1e-6 s after the end is kept,
    one ending 2e-6 s after is outside. One tick is 1e-6 s (1 tick per beat at
    60e6 bpm), so the MIDI states both ends exactly."""
    cid = _cid(ds)
    path = ds / "clips" / cid / "notes.mid"
    for end_tick, outside in ((1_000_001, False), (1_000_002, True)):
        pm = pretty_midi.PrettyMIDI(resolution=1, initial_tempo=6e7)
        piano = pretty_midi.Instrument(program=0)
        piano.notes = [pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.start, end=n.end)
                       for n in NOTES[:2]]
        piano.notes.append(pretty_midi.Note(velocity=100, pitch=67, start=0.55, end=end_tick * 1e-6))
        pm.instruments.append(piano)
        pm.write(str(path))
        assert pretty_midi.PrettyMIDI(str(path)).instruments[0].notes[-1].end == end_tick * 1e-6
        _restamp(ds)
        problems = _validate(ds)
        assert any("notes outside" in p for p in problems) is outside, (end_tick, problems)
        if not outside:
            assert problems == []


def test_progress_is_shown_by_default_and_only_then(ds, capsys):
    assert _validate(ds) == []
    assert capsys.readouterr().err == ""
    assert validate_dataset(ds) == []
    err = capsys.readouterr().err
    assert "validate: 100%" in err and "1/1" in err and "clip/s" in err, err


# ---- hostile rows and files: a finding, never a crash (these crashed validate before) --

@pytest.mark.parametrize("steps", [[1, 2, 3, 4], "abcd", {"step": "video"}])
def test_steps_that_are_not_a_list_of_objects(ds, steps):
    cid = _steps(ds, lambda _: steps)
    assert _validate(ds) == [f"{cid}: steps.json does not walk video -> keys -> notes -> sound"]


def test_a_qa_that_is_not_an_object(ds):
    cid = _cid(ds)
    _edit_row(ds, lambda r: r.update(qa=[1]))
    # without claims the steps would say "top-down" and "solo piano": only the qa line is left
    _write_steps(ds, None)
    _restamp(ds)
    assert _validate(ds) == [f"{cid}: row's qa is not an object"]


def test_claims_that_are_not_an_object(ds):
    cid = _cid(ds)
    _edit_row(ds, lambda r: r["qa"].update(claims=[1]))
    _write_steps(ds, None)
    _restamp(ds)
    assert _validate(ds) == [f"{cid}: row's qa.claims is not an object"]
