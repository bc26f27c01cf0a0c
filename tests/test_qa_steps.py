"""steps.json states a keyboard view and solo piano only when QA claims them."""

from copdata.notes import Note
from copdata.qa.stage import CLAIM_PIANO, CLAIM_PIANO_RECORDED, claim_thresholds, claims
from copdata.steps import make_steps

NOTES = [Note(0.0, 0.5, 60, 80), Note(0.5, 1.0, 48, 70)]


def _text(steps):
    return " ".join(s["text"] for s in steps)


def test_claims_choose_the_wording():
    both = _text(make_steps(NOTES, 10.0, 25.0, {}, {"keyboard": True, "solo_piano": True}))
    assert "top-down view of a piano keyboard" in both and "solo piano" in both
    neither = make_steps(NOTES, 10.0, 25.0, {}, {"keyboard": False, "solo_piano": False})
    assert "keyboard" not in neither[0]["text"] and "solo piano" not in _text(neither)
    assert neither[0]["text"].startswith("The video shows the performance for 10 s")
    assert neither[-1]["text"].startswith("The notes heard are")
    silent = make_steps([], 10.0, 25.0, {}, {"keyboard": True, "solo_piano": False})
    assert "piano is silent" not in _text(silent)
    # datasets built before QA keep their wording
    assert make_steps(NOTES, 10.0, 25.0, {}) == make_steps(NOTES, 10.0, 25.0, {},
                                                           {"keyboard": True, "solo_piano": True})


def test_claim_thresholds_follow_the_build_options():
    assert claim_thresholds(None, None) == (0.5, 0.5)
    # chosen on real recordings; with the timbre doing the instrument's work it is lower
    assert claim_thresholds(None, None, recorded=True)[0] == CLAIM_PIANO_RECORDED != CLAIM_PIANO
    assert claim_thresholds(0.6, None, recorded=True) == (0.6, 0.5)  # an explicit option wins
    assert claim_thresholds(0.7, 0.2) == (0.7, 0.2)
    assert claims({"piano_score": 0.69, "keyboard_score": 0.2}, 0.7, 0.2) == \
        {"keyboard": True, "solo_piano": False}


def test_solo_piano_needs_enough_distinct_pitches():
    """Worked by hand: the same score claims solo piano with six distinct
    pitches, not with five (a few held notes of any pitched instrument), and a
    row made before the pitch count (no ``piano_pitches``) is judged on its
    score alone."""
    from copdata.qa.stage import CLAIM_PIANO_PITCHES, measure_audio

    assert CLAIM_PIANO_PITCHES == 6
    row = {"piano_score": 0.9, "keyboard_score": 0.0}
    assert claims({**row, "piano_pitches": 6}, 0.80, 0.5)["solo_piano"] is True
    assert claims({**row, "piano_pitches": 5}, 0.80, 0.5)["solo_piano"] is False
    assert claims(row, 0.80, 0.5)["solo_piano"] is True
    assert claims({**row, "piano_pitches": 40, "piano_score": 0.79}, 0.80, 0.5)["solo_piano"] is False
    # the count is of distinct pitches: a note repeated five times is one pitch
    import numpy as np

    audio = np.zeros(22050, np.float32)
    notes = [Note(0.1 * k, 0.1 * k + 0.05, 60, 80) for k in range(5)] + [Note(0.6, 0.7, 64, 80)]
    assert measure_audio(audio, 22050, notes)["piano_pitches"] == 2
