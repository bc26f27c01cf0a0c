"""copdata numbers against oracles worked by hand (issue 21).

* A three-note piano MIDI with a drum track: reading it gives exactly the three
  piano notes; a build from it carries only them; ``validate`` refuses a clip
  whose MIDI holds a drum track.
* The AV offset: signals whose true offset is a fraction of a frame (a sum of
  smooth bumps sampled at shifted times) are recovered within a tenth of a frame,
  and shifting the audio later moves the estimate later by the same amount.
"""

import json

import numpy as np
import pretty_midi
import pytest

from copdata import open_dataset
from copdata.build import build_dataset
from copdata.dataset.validate import validate_dataset
from copdata.hashing import file_sha256
from copdata.notes import Note, read_midi
from copdata.qa.offset import estimate_offset
from copdata.sources.base import BuildSettings
from copdata.sources.synth import SynthSource

PIANO = [Note(0.5, 1.0, 60, 80), Note(1.25, 2.0, 64, 90), Note(2.5, 3.5, 67, 100)]


def _midi_with_drums(path, piano_notes=PIANO, drum_program=0):
    pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0, name="Piano")
    for n in piano_notes:
        piano.notes.append(pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.start, end=n.end))
    drums = pretty_midi.Instrument(program=drum_program, is_drum=True, name="Drums")
    # kick and snare on the beat: pitches 36 and 38 are inside the piano's range
    for i in range(8):
        drums.notes.append(pretty_midi.Note(velocity=110, pitch=36 + 2 * (i % 2),
                                            start=0.5 * i, end=0.5 * i + 0.1))
    pm.instruments += [piano, drums]
    pm.write(str(path))
    return path


def test_reading_a_midi_file_skips_its_drum_track(tmp_path):
    notes = read_midi(_midi_with_drums(tmp_path / "three.mid"))
    assert notes == PIANO
    assert read_midi((tmp_path / "three.mid").read_bytes()) == PIANO


@pytest.fixture(scope="module")
def built_from_drum_midi(tmp_path_factory):
    root = tmp_path_factory.mktemp("drums")
    midi_dir = root / "midi"
    midi_dir.mkdir()
    _midi_with_drums(midi_dir / "three.mid")
    out = root / "ds"
    settings = BuildSettings(clip_seconds=3.0, fps=25.0, sample_rate=16000, seed=0)
    build_dataset(SynthSource(midi_dir=midi_dir), out, settings, progress=False)
    return out


def test_build_from_a_midi_with_drums_keeps_only_the_piano(built_from_drum_midi):
    ds = open_dataset(built_from_drum_midi)
    assert len(ds) == 1
    clip = ds[ds.ids()[0]]
    # the 3 s clip cuts G4 (2.5..3.5 s) at its end
    assert clip.notes() == PIANO[:2] + [Note(2.5, 3.0, 67, 100)]
    roll = clip.roll()
    # frame i covers [i/25, (i+1)/25): C4 (column 39) frames 12..24, E4 31..49, G4 62..74
    assert np.flatnonzero(roll.any(axis=0)).tolist() == [39, 43, 46]
    assert np.flatnonzero(roll[:, 39]).tolist() == list(range(12, 25))
    assert np.flatnonzero(roll[:, 43]).tolist() == list(range(31, 50))
    assert np.flatnonzero(roll[:, 46]).tolist() == list(range(62, 75))
    assert roll[12, 39] == 80 and roll[31, 43] == 90 and roll[62, 46] == 100
    assert validate_dataset(built_from_drum_midi, progress=False) == []


def _replace_midi(root, clip_id, path_maker):
    """Write a new notes.mid and record its hash, as a build would have."""
    clip_dir = root / "clips" / clip_id
    path_maker(clip_dir / "notes.mid")
    rows = [json.loads(line) for line in (root / "clips.jsonl").read_text().splitlines() if line]
    for row in rows:
        if row["id"] == clip_id:
            row["hashes"]["notes.mid"] = file_sha256(clip_dir / "notes.mid")
    (root / "clips.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_validate_refuses_a_clip_whose_midi_has_a_drum_track(built_from_drum_midi, tmp_path):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(built_from_drum_midi, root)
    clip_id = open_dataset(root).ids()[0]
    _replace_midi(root, clip_id, _midi_with_drums)
    problems = validate_dataset(root, progress=False)
    # the hash was updated, the piano notes are unchanged: what is left is the drum track
    assert not any("hash" in p or "roll differs" in p or "steps.json" in p for p in problems), problems
    assert any(p.startswith(f"{clip_id}: ") and "drum=True" in p for p in problems), problems


def test_validate_refuses_a_single_drum_track_even_on_program_0(built_from_drum_midi, tmp_path):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(built_from_drum_midi, root)
    clip_id = open_dataset(root).ids()[0]

    def drums_only(path):
        pm = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120.0)
        drums = pretty_midi.Instrument(program=0, is_drum=True)
        drums.notes = [pretty_midi.Note(velocity=n.velocity, pitch=n.pitch, start=n.start, end=n.end)
                       for n in PIANO]
        pm.instruments.append(drums)
        pm.write(str(path))

    _replace_midi(root, clip_id, drums_only)
    problems = validate_dataset(root, progress=False)
    assert any("drum=True" in p for p in problems), problems
    # the drum notes are not piano notes: the stored roll is no longer what the MIDI gives
    assert any("roll differs" in p for p in problems), problems


# ---- AV offset: sub-frame shifts of smooth signals -------------------------------

FPS = 25.0
FRAMES = 250
MAX_LAG = 25  # ceil(1.0 s * 25 fps): the default search range


def _bumps(times, positions, width=1.2):
    """A sum of Gaussian bumps (frames) centred at ``times`` sampled at ``positions``."""
    return np.exp(-0.5 * ((positions[:, None] - times[None, :]) / width) ** 2).sum(axis=1)


def _signals(late_frames, seed=0, events=60):
    """Motion of the picture and onsets of audio that is ``late_frames`` late."""
    times = np.sort(np.random.default_rng(seed).uniform(0, FRAMES, events))
    motion = _bumps(times, np.arange(FRAMES, dtype=float))
    # onset row j is video frame j - MAX_LAG
    onsets = _bumps(times + late_frames, np.arange(FRAMES + 2 * MAX_LAG, dtype=float) - MAX_LAG)
    return motion[:, None], onsets[:, None]


@pytest.mark.parametrize("late_frames", [0.0, 0.1, 0.3, 0.45, 0.7, -0.3, 2.4, -3.6])
def test_a_sub_frame_offset_is_recovered_within_a_tenth_of_a_frame(late_frames):
    motion, onsets = _signals(late_frames)
    offset, confidence = estimate_offset(motion, onsets, FPS)
    assert abs(offset * FPS - late_frames) <= 0.1, (offset * FPS, late_frames)
    assert confidence > 0.5


def test_shifting_the_audio_later_moves_the_offset_later_by_the_same_amount():
    base = estimate_offset(*_signals(0.2, seed=3), FPS)[0]
    for shift in (0.25, 1.0, 3.5):
        moved = estimate_offset(*_signals(0.2 + shift, seed=3), FPS)[0]
        assert (moved - base) * FPS == pytest.approx(shift, abs=0.1)


def test_flat_or_still_signals_give_no_offset():
    motion, onsets = _signals(0.3)
    assert estimate_offset(np.zeros_like(motion), onsets, FPS) == (0.0, 0.0)
    assert estimate_offset(motion, np.zeros_like(onsets), FPS) == (0.0, 0.0)


# ---- roll and notes: edges worked by hand ---------------------------------------------

def test_roll_clamps_velocity_start_and_length():
    from copdata.roll import PianoRoll, render_roll, roll_to_pitches

    fps = 10.0
    roll = render_roll([Note(-0.25, 0.15, 21, 0),      # before 0: frames 0..1, velocity 0 -> 1
                        Note(0.3, 0.4, 22, 200),       # velocity 200 -> 127, frame 3
                        Note(0.45, 9.0, 108, 64),      # past the end: frames 4..5
                        Note(0.7, 0.9, 60, 50)], 6, fps)  # wholly after the end: nothing
    assert np.flatnonzero(roll[:, 0]).tolist() == [0, 1] and roll[0, 0] == 1
    assert np.flatnonzero(roll[:, 1]).tolist() == [3] and roll[3, 1] == 127
    assert np.flatnonzero(roll[:, 87]).tolist() == [4, 5] and roll[5, 87] == 64
    assert int(roll.astype(bool).sum()) == 5
    pr = PianoRoll(roll, fps)
    assert pr.num_frames == 6 and pr.seconds == pytest.approx(0.6)
    assert pr.frame_times().tolist() == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    assert roll_to_pitches(roll).tolist() == list(range(21, 109))


def test_snap_notes_grid_clamps_and_drops():
    from copdata.notes import TICKS_PER_SECOND, notes_to_arrays, segment_notes, snap_notes

    tick = 1 / TICKS_PER_SECOND
    snapped = snap_notes([Note(0.4 * tick, 2.6 * tick, 60, 0),        # -> ticks 0..3, velocity 1
                          Note(-1.0, 0.5, 61, 300),                   # start clamped to 0, velocity 127
                          Note(1.0, 1.0 + 0.4 * tick, 62, 9),         # rounds to empty: dropped
                          Note(0.5, 5.0, 20, 9), Note(0.5, 5.0, 109, 9),  # not piano keys: dropped
                          Note(1.5, 9.0, 108, 70)], max_seconds=2.0)  # end clamped to 2 s
    assert snapped == sorted([Note(0.0, 3 * tick, 60, 1), Note(0.0, 0.5, 61, 127),
                              Note(1.5, 2.0, 108, 70)])
    arrays = notes_to_arrays(snapped)
    assert arrays["pitch"].dtype == np.int64 and arrays["start"].dtype == np.float64
    assert arrays["pitch"].tolist() == [n.pitch for n in snapped]
    assert arrays["end"].tolist() == [n.end for n in snapped]
    assert arrays["velocity"].tolist() == [n.velocity for n in snapped]
    # a segment [1, 2) of a note 0.5..1.5: cut at 1 and shifted to 0..0.5
    assert segment_notes([Note(0.5, 1.5, 60, 80), Note(2.0, 2.5, 61, 80)], 1.0, 2.0) == \
        [Note(0.0, 0.5, 60, 80)]


def test_skipped_notes_do_not_stop_the_roll():
    from copdata.roll import frame_span, render_roll

    # a note 1e-12 s long right after a frame edge still marks its frame
    assert frame_span(0.08, 0.08 + 1e-12, 25.0) == (2, 3)
    skipped = [Note(0.5, 0.5, 60, 50),    # empty
               Note(0.1, 0.2, 20, 50),    # below A0
               Note(9.0, 9.5, 61, 50)]    # after the roll's end
    roll = render_roll(skipped + [Note(0.08, 0.08 + 1e-12, 62, 30)], 10, 25.0)
    assert np.argwhere(roll).tolist() == [[2, 62 - 21]] and roll[2, 41] == 30
    for note in skipped:  # each skipped note, alone in front of a real one
        roll = render_roll([note, Note(0.0, 0.04, 64, 10)], 10, 25.0)
        assert np.argwhere(roll).tolist() == [[0, 64 - 21]]
