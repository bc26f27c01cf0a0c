"""copdata.notes on cases worked by hand: the tick grid at a clip's edge, the piano's
end keys, the MIDI file's one named track and tempo, read errors naming their input,
and the column arrays' types.

Oracles: the tick grid is 480 ticks a beat at 120 bpm, 960 ticks a second (the MIDI
standard's arithmetic, not the code's); the piano's keys are A0 = 21 to C8 = 108;
pretty_midi reads the written file back independently.
"""

import numpy as np
import pretty_midi
import pytest

from copdata.errors import MidiError
from copdata.notes import Note, midi_bytes, notes_to_arrays, read_midi, segment_notes, snap_notes


def test_a_note_held_past_the_clip_ends_on_the_last_whole_tick():
    # clip [5, 15.0007): 10.0007 s = 9600.67 ticks; the last whole tick is 9600 = 10.0 s
    # (rounding the note's end instead would give 9601 ticks = 10.00104 s)
    assert segment_notes([Note(0.0, 20.0, 60, 80)], 5.0, 15.0007) == [Note(0.0, 10.0, 60, 80)]
    # inside the clip the end is rounded to the nearest tick: 3.0007 s -> 2881 ticks
    assert segment_notes([Note(6.0, 8.0007, 62, 80)], 5.0, 15.0) == [Note(1.0, 2881 / 960, 62, 80)]


def test_the_piano_keeps_its_lowest_and_highest_key_only():
    notes = [Note(0, 1, p, 80) for p in (20, 21, 108, 109)]
    assert [n.pitch for n in snap_notes(notes)] == [21, 108]


def test_the_midi_file_has_one_piano_track_at_120_bpm():
    pm = pretty_midi.PrettyMIDI(__import__("io").BytesIO(midi_bytes([Note(0.5, 1.0, 60, 90)])))
    assert [(i.name, i.program, i.is_drum) for i in pm.instruments] == [("Piano", 0, False)]
    times, tempi = pm.get_tempo_changes()
    assert list(times) == [0.0] and tempi[0] == pytest.approx(120.0)
    assert pm.resolution == 480


def test_read_errors_name_their_input_and_the_parsers_exception(tmp_path):
    with pytest.raises(MidiError) as raised:
        read_midi(b"not a midi file")
    assert raised.value.item == "<bytes>"
    assert type(raised.value.__cause__).__name__ in str(raised.value)
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"MThd garbage")
    with pytest.raises(MidiError) as raised:
        read_midi(bad)
    assert raised.value.item == str(bad)
    assert str(raised.value).startswith(f"{bad}: cannot read MIDI")


def test_column_arrays_have_fixed_types_whatever_the_inputs_are():
    arrays = notes_to_arrays([Note(1, 2, np.uint8(60), np.int16(80)), Note(3, 4, 64.0, 90.0)])
    assert {k: v.dtype for k, v in arrays.items()} == {
        "pitch": np.int64, "start": np.float64, "end": np.float64, "velocity": np.int64}
    assert arrays["pitch"].tolist() == [60, 64] and arrays["end"].tolist() == [2.0, 4.0]
