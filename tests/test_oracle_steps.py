"""The text steps of small clips, every sentence written out by hand.

Oracle: the expected texts below were worked out from the notes by hand (counts,
notes per second, names with C4 = MIDI 60, velocity range, the largest number of
notes sounding at once with ends exclusive, the dynamics word of the mean
velocity), not produced by running the code.
"""

import pytest

from copdata.notes import Note
from copdata.steps import STEP_NAMES, caption, make_steps, max_polyphony

NEUTRAL = {"keyboard": False, "solo_piano": False}


def _texts(steps):
    assert [s["step"] for s in steps] == list(STEP_NAMES)
    return [s["text"] for s in steps]


def test_three_notes_across_middle_c_with_metadata():
    notes = [Note(2.0, 3.0, 64, 70), Note(0.0, 1.0, 48, 30), Note(0.5, 1.5, 64, 50)]
    meta = {"title": "Etude", "performer": "Ana", "style": "slow and quiet"}
    steps = make_steps(notes, 4.0, 30.0, meta)
    assert _texts(steps) == [
        'The video shows a top-down view of a piano keyboard for 4 s at 30 frames per second, '
        'from "Etude" by Ana; the performance is slow and quiet.',
        "2 distinct keys pressed, from C3 to E4; 1 note below middle C (left-hand register) "
        "and 2 from middle C up (right-hand register).",
        "The clip contains 3 notes (0.75 notes per second) with pitches from C3 to E4 and "
        "velocities from 30 to 70; at most 2 notes sounding at once.",
        "The result is solo piano, soft (p) on average, spanning C3 to E4.",
    ]
    assert caption(steps) == steps[0]["text"]
    assert caption([]) == ""


def test_one_low_note_neutral_wording_and_an_uploader():
    meta = {"title": "T", "uploader": "chan", "performer": "ignored"}
    steps = make_steps([Note(1.0, 2.5, 40, 100)], 10.0, 29.97, meta, claims=NEUTRAL)
    assert _texts(steps) == [
        'The video shows the performance for 10 s at 29.97 frames per second, from "T" by chan.',
        "1 distinct key pressed, from E2 to E2; all 1 note below middle C (left-hand register).",
        "The clip contains 1 note (0.10 notes per second) with pitches from E2 to E2 and "
        "velocities from 100 to 100; at most 1 note sounding at once.",
        "The notes heard are very loud (ff) on average, spanning E2 to E2.",
    ]


def test_notes_from_middle_c_up_a_title_alone_and_no_length():
    notes = [Note(0.0, 1.0, 60, 79), Note(1.0, 2.0, 72, 81)]  # one ends as the other starts
    steps = make_steps(notes, 0.0, 25.0, {"title": "Only"}, claims={"keyboard": True})
    assert _texts(steps) == [
        'The video shows a top-down view of a piano keyboard for 0 s at 25 frames per second, '
        'from "Only".',
        "2 distinct keys pressed, from C4 to C5; all 2 notes at or above middle C "
        "(right-hand register).",
        "The clip contains 2 notes (0.00 notes per second) with pitches from C4 to C5 and "
        "velocities from 79 to 81; at most 1 note sounding at once.",
        "The notes heard are loud (f) on average, spanning C4 to C5.",
    ]


@pytest.mark.parametrize("solo, sound", [(None, "The piano is silent."),
                                         (NEUTRAL, "No notes are heard.")])
def test_a_clip_without_notes(solo, sound):
    steps = make_steps([], 5.0, 30.0, claims=solo)
    assert _texts(steps)[1:] == ["No keys are pressed during the clip.",
                                 "The clip contains 0 notes, so it has no pitch range.", sound]


@pytest.mark.parametrize("velocity, word", [
    (39, "very soft (pp)"), (40, "soft (p)"), (59, "soft (p)"), (60, "moderate (mf)"),
    (79, "moderate (mf)"), (80, "loud (f)"), (99, "loud (f)"), (100, "very loud (ff)")])
def test_dynamics_word_at_each_boundary(velocity, word):
    text = make_steps([Note(0.0, 1.0, 60, velocity)], 1.0, 30.0)[3]["text"]
    assert text == f"The result is solo piano, {word} on average, spanning C4 to C4."


def test_polyphony_counts_overlaps_with_ends_exclusive():
    assert max_polyphony([]) == 0
    assert max_polyphony([Note(0, 1, 60, 80), Note(1, 2, 62, 80)]) == 1  # touching
    chord = [Note(0, 2, 60, 80), Note(0, 2, 64, 80), Note(0.5, 1, 67, 80), Note(1, 3, 72, 80)]
    assert max_polyphony(chord) == 3  # 0.5..1: three; at 1 one ends and one starts
    later = [Note(0, 1, 60, 80), Note(2, 3, 62, 80), Note(2, 3, 64, 80), Note(2.5, 3, 67, 80)]
    assert max_polyphony(later) == 3  # the largest chord comes after a note has ended


def test_notes_per_second_of_a_clip_shorter_than_a_second():
    text = make_steps([Note(0.0, 0.25, 60, 80)], 0.5, 30.0)[2]["text"]
    assert text.startswith("The clip contains 1 note (2.00 notes per second)")
