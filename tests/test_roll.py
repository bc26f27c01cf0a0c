import numpy as np
import pytest

from copdata.notes import Note, midi_bytes, read_midi, segment_notes, snap_notes, note_name
from copdata.roll import PianoRoll, frame_span, render_roll
from copdata.errors import MidiError

FPS = 25.0


def test_short_note_marks_one_frame():
    roll = render_roll([Note(0.101, 0.105, 60, 70)], 10, FPS)  # 4 ms inside frame 2
    assert roll.dtype == np.uint8 and roll.shape == (10, 88)
    assert np.nonzero(roll[:, 60 - 21])[0].tolist() == [2]
    assert roll.sum() == 70


def test_frame_edges_are_half_open():
    # [0.04, 0.08) is exactly frame 1; ending at 0.08 must not touch frame 2.
    roll = render_roll([Note(0.04, 0.08, 21, 10)], 5, FPS)
    assert np.nonzero(roll[:, 0])[0].tolist() == [1]
    roll = render_roll([Note(0.04, 0.0801, 108, 10)], 5, FPS)
    assert np.nonzero(roll[:, 87])[0].tolist() == [1, 2]
    assert frame_span(0.4, 0.8, FPS) == (10, 20)


def test_overlap_takes_max_velocity_and_clips_to_length():
    notes = [Note(0.0, 0.2, 64, 40), Note(0.1, 0.3, 64, 90), Note(0.35, 5.0, 64, 20)]
    roll = render_roll(notes, 10, FPS)
    col = roll[:, 64 - 21]
    assert col[:2].tolist() == [40, 40]
    assert col[2:5].tolist() == [90, 90, 90]  # frame 2..4: max(40, 90) then 90
    assert col[8:].tolist() == [20, 20]  # the long note stops at the roll's end
    assert PianoRoll(roll, FPS).seconds == pytest.approx(0.4)


def test_out_of_range_pitches_and_empty_notes_are_ignored():
    roll = render_roll([Note(0, 1, 20, 50), Note(0, 1, 109, 50), Note(0.5, 0.5, 60, 50)], 25, FPS)
    assert roll.sum() == 0


def test_segment_notes_cuts_and_shifts_at_clip_edges():
    notes = [Note(9.5, 10.5, 60, 80), Note(10.2, 10.4, 62, 70), Note(19.9, 21.0, 64, 60),
             Note(3.0, 4.0, 65, 50)]
    seg = segment_notes(notes, 10.0, 20.0)
    assert [(n.pitch, n.start, n.end) for n in seg] == [
        (60, 0.0, 0.5), (62, pytest.approx(0.2, abs=1e-3), pytest.approx(0.4, abs=1e-3)),
        (64, pytest.approx(9.9, abs=1e-3), 10.0)]
    assert all(0 <= n.start < n.end <= 10.0 for n in seg)


def test_midi_round_trip_is_one_piano_track_and_exact_after_snapping():
    import io

    import pretty_midi

    notes = snap_notes([Note(0.0123, 0.5, 60, 64), Note(0.25, 1.333, 72, 100)])
    data = midi_bytes(notes)
    pm = pretty_midi.PrettyMIDI(io.BytesIO(data))
    assert len(pm.instruments) == 1 and pm.instruments[0].program == 0
    assert not pm.instruments[0].pitch_bends
    assert read_midi(data) == notes  # snapped times survive the file exactly
    assert render_roll(read_midi(data), 40, FPS).tolist() == render_roll(notes, 40, FPS).tolist()


def test_bad_midi_is_a_typed_error():
    with pytest.raises(MidiError):
        read_midi(b"not a midi file")


def test_note_names():
    assert note_name(60) == "C4" and note_name(21) == "A0" and note_name(108) == "C8"
