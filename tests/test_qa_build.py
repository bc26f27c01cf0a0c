"""QA as a build stage: a mixed local build (piano, late-audio piano, speech, noise)."""

import json

import numpy as np
import pytest

from copdata.cli import main
from copdata.qa import synthetic
from copdata.qa.keyboard import iou
from copdata.qa.stage import CLAIM_PIANO, CLAIM_PIANO_RECORDED
from copdata.render.performance import generate_performance
from copdata.render.piano import render_notes
from copdata.validate import validate_dataset

SR, FPS, SECONDS = 22050, 25.0, 10.4
SIZE, BOX = (480, 240), (20, 120, 460, 180)
LATE = 0.3

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wild")
    notes, _ = generate_performance(1, SECONDS)
    piano = render_notes(notes, SR, SECONDS)
    scene = lambda seed, played: synthetic.performance_scene(played, SECONDS, FPS, SIZE, BOX, seed)
    synthetic.write_scene_video(folder / "piano.mp4", scene(1, notes), piano, SR)
    synthetic.write_scene_video(folder / "late.mp4", scene(1, notes), synthetic.delay(piano, LATE, SR), SR)
    synthetic.write_scene_video(folder / "speech.mp4", scene(2, []), synthetic.speech_like(SECONDS, SR, 3), SR)
    synthetic.write_scene_video(folder / "noise.mp4", scene(4, []), synthetic.noise(SECONDS, SR, "rustle", 5), SR)
    return folder


def _build(videos, out, *extra):
    return main(["build", "--source", "local", "--input", str(videos), "--out", str(out), "--quiet",
                 "--clip-seconds", "10", "--sample-rate", str(SR), "--auto-crop", *extra])


def _rows(out):
    return {json.loads(l)["id"]: json.loads(l) for l in (out / "clips.jsonl").read_text().splitlines()}


def test_thresholds_reject_with_reasons_and_offsets_are_corrected(videos, tmp_path, capsys):
    out = tmp_path / "strict"
    assert _build(videos, out, "--qa-min-piano", "0.5", "--qa-min-keyboard", "0.5",
                  "--qa-max-offset", "0.08", "--qa-correct-offset") == 1  # some items failed QA
    rows = _rows(out)
    assert sorted(rows) == ["late.00000000", "piano.00000000"]
    for row in rows.values():
        qa = row["qa"]
        assert qa["claims"] == {"keyboard": True, "solo_piano": True}
        assert iou(row["meta"]["auto_crop"]["box"], BOX) >= 0.9
    for cid in ("late.00000000",):
        assert abs(rows[cid]["qa"]["av_offset_s"] - LATE) <= 1 / FPS
        assert rows[cid]["qa"]["av_offset_applied_s"] == pytest.approx(rows[cid]["qa"]["av_offset_s"], abs=1 / SR)
    for cid in ("piano.00000000",):
        assert abs(rows[cid]["qa"]["av_offset_s"]) <= 1 / FPS
    report = json.loads((out / "report.json").read_text())
    rejected = [r for r in report if r["status"] == "rejected"]
    assert sorted(r["clip_id"] for r in rejected) == ["noise.00000000", "speech.00000000"]
    assert all("--qa-min-piano" in r["message"] for r in rejected)
    assert not (out / "clips" / "speech.00000000").exists()
    info = json.loads((out / "dataset.json").read_text())
    assert info["qa"]["min_piano"] == 0.5 and info["qa"]["correct_offset"] is True
    steps = json.loads((out / "clips" / "late.00000000" / "steps.json").read_text())
    assert "top-down view of a piano keyboard" in steps[0]["text"]
    assert steps[-1]["text"].startswith("The result is solo piano")
    assert validate_dataset(out, progress=False) == []
    capsys.readouterr()
    assert main(["qa", str(out), "--plot", str(tmp_path / "qa.png")]) == 0
    text = capsys.readouterr().out
    assert "2 kept, 2 rejected" in text and "speech.00000000" in text
    assert (tmp_path / "qa.png").stat().st_size > 0


def test_permissive_build_keeps_all_and_words_steps_neutrally(videos, tmp_path):
    out = tmp_path / "open"
    assert _build(videos, out) == 0
    rows = _rows(out)
    assert len(rows) == 4
    speech = rows["speech.00000000"]
    assert speech["qa"]["piano_score"] < 0.5 and speech["qa"]["claims"]["solo_piano"] is False
    steps = json.loads((out / "clips" / "speech.00000000" / "steps.json").read_text())
    assert "solo piano" not in json.dumps(steps)
    assert validate_dataset(out, progress=False) == []
    from copdata.stats import dataset_stats

    qa = dataset_stats(out)["qa"]
    # a recorded source: "solo piano" needs the threshold chosen on real recordings
    info = json.loads((out / "dataset.json").read_text())
    assert info["qa"]["claim_piano"] == CLAIM_PIANO_RECORDED > CLAIM_PIANO
    at_threshold = sum(r["qa"]["piano_score"] >= CLAIM_PIANO_RECORDED for r in rows.values())
    assert qa["clips_with_qa"] == 4 and qa["claims_solo_piano"] == at_threshold
    # a claim the scores do not support is caught
    lines = (out / "clips.jsonl").read_text().splitlines()
    tampered = []
    for line in lines:
        row = json.loads(line)
        if row["id"] == "speech.00000000":
            row["qa"]["claims"]["solo_piano"] = True
        tampered.append(json.dumps(row))
    (out / "clips.jsonl").write_text("\n".join(tampered) + "\n")
    problems = validate_dataset(out, progress=False)
    assert any("speech.00000000" in p and "claims.solo_piano" in p for p in problems)
    assert any("speech.00000000" in p and "steps.json" in p for p in problems)
