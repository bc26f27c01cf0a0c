"""Numeric options are usage errors, one item's size is bounded, and tiny or
broken media are typed failures (issue 19, items 8, 10, 13). Oracles: the exit
status argparse gives a usage error (2), the report row's error class."""

import json

import pretty_midi
import pytest

from copdata.cli import main
from copdata.download import verify_media
from copdata.errors import MediaError


@pytest.mark.parametrize("option", [
    ["--clip-seconds", "1e-9"], ["--clip-seconds", "0"], ["--fps", "0"], ["--fps", "nan"],
    ["--sample-rate", "1"], ["--item-seconds", "inf"], ["--item-seconds", "1e12"],
    ["--num-items", "-3"], ["--workers", "0"], ["--test-fraction", "2"]])
def test_numeric_options_out_of_range_are_usage_errors(option, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["build", "--source", "synth", "--out", str(tmp_path / "D"), *option])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert option[0] in err and ("range" in err or "finite" in err or "not an" in err)
    assert not (tmp_path / "D").exists()


def test_a_midi_note_at_ten_hours_is_a_failed_row_not_an_allocation(tmp_path):
    midi = pretty_midi.PrettyMIDI(resolution=24)  # 10 h stays under pretty_midi's tick cap
    piano = pretty_midi.Instrument(program=0)
    piano.notes += [pretty_midi.Note(80, 60, 0.0, 0.5), pretty_midi.Note(80, 62, 36000.0, 36000.5)]
    midi.instruments.append(piano)
    (tmp_path / "in").mkdir()
    midi.write(str(tmp_path / "in" / "long.mid"))
    code = main(["build", "--source", "synth", "--midi-dir", str(tmp_path / "in"),
                 "--out", str(tmp_path / "D"), "--clip-seconds", "1"])
    assert code == 1
    (row,) = json.loads((tmp_path / "D" / "report.json").read_text())
    assert row["error_class"] == "MidiError" and "at most 3600 s" in row["message"]


def test_a_one_pixel_video_is_a_media_failure(tmp_path):
    from mediafactory import make_video
    (tmp_path / "in").mkdir()
    video = make_video(tmp_path / "in" / "dot.mp4", seconds=2.2, fps=25, size=(1, 1),
                       pix_fmt="yuv444p")
    with pytest.raises(MediaError, match="1x1 pixels"):
        verify_media(video, need_video=True, need_audio=True)  # a download: `content`
    assert main(["build", "--source", "local", "--input", str(tmp_path / "in"),
                 "--out", str(tmp_path / "D"), "--clip-seconds", "1"]) == 1
    (row,) = json.loads((tmp_path / "D" / "report.json").read_text())
    assert row["error_class"] == "MediaError" and "1x1 pixels" in row["message"]
