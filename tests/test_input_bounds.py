"""Numeric options are usage errors, one item's size is bounded, and tiny or
broken media are typed failures (issue 19, items 8, 10, 13). Oracles: the exit
status argparse gives a usage error (2), the report row's error class."""

import json

import pretty_midi
import pytest

from copdata.cli import main
from copdata.errors import MediaError
from copdata.media.download import verify_media


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


def test_byte_identical_copies_in_train_and_test_are_reported(tmp_path, capsys):
    import shutil

    from mediafactory import make_video

    from copdata.dataset.validate import validate_dataset
    (tmp_path / "in").mkdir()
    make_video(tmp_path / "in" / "take.mp4", seconds=2.2, fps=25, size=(64, 32))
    shutil.copyfile(tmp_path / "in" / "take.mp4", tmp_path / "in" / "copy.mp4")
    (tmp_path / "list.csv").write_text(f"path,split\n{tmp_path}/in/take.mp4,train\n"
                                       f"{tmp_path}/in/copy.mp4,test\n", encoding="utf-8")
    code = main(["build", "--source", "local", "--input", str(tmp_path / "list.csv"),
                 "--out", str(tmp_path / "D"), "--clip-seconds", "1"])
    assert code == 1 and "byte-identical to a clip of another split" in capsys.readouterr().out
    problems = validate_dataset(tmp_path / "D", progress=False)
    leaks = [p for p in problems if "leakage" in p]
    assert len(leaks) == 2 and not [p for p in problems if "leakage" not in p]  # 2 clips


def test_matplotlib_cache_lives_in_the_toolkits_cache(tmp_path):
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("MPLCONFIGDIR", "XDG_CACHE_HOME",
                                                           "XDG_CONFIG_HOME")}
    env.update(HOME=str(tmp_path / "home"), COPBENCH_CACHE=str(tmp_path / "cache"))
    code = ("import copdata, matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
            "plt.figure(); print(matplotlib.get_cachedir())")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "cache" / "matplotlib")
    assert not (tmp_path / "home" / ".cache" / "matplotlib").exists()


def test_a_bit_flipped_sample_table_is_a_media_failure(tmp_path):
    """One flipped bit in the video track's 'stbl' box leaves PyAV without a codec
    context (None): a typed MediaError (a download's `content`), not InternalError."""
    from mediafactory import make_video

    from copdata.media.decode import probe
    (tmp_path / "in").mkdir()
    video = make_video(tmp_path / "base.mp4", seconds=2.2, fps=25, size=(64, 32))
    data = video.read_bytes()
    assert data.count(b"stbl") == 2  # the video track's comes first
    flipped = tmp_path / "in" / "flipped.mp4"
    flipped.write_bytes(data.replace(b"stbl", bytes([ord("s") ^ 0x40]) + b"tbl", 1))
    with pytest.raises(MediaError, match="codec cannot be read"):
        probe(flipped)
    with pytest.raises(MediaError, match="not playable|codec cannot be read"):
        verify_media(flipped, need_video=True, need_audio=True)
    assert main(["build", "--source", "local", "--input", str(tmp_path / "in"),
                 "--out", str(tmp_path / "D"), "--clip-seconds", "1"]) == 1
    (row,) = json.loads((tmp_path / "D" / "report.json").read_text())
    assert row["error_class"] == "MediaError", row


def test_keyboard_frames_of_a_file_whose_header_claims_ten_hours(tmp_path):
    """An MKV of 3 s whose Segment Duration says 10 h: frames are sampled over what
    decodes, not 'no frame could be decoded' (oracle: the frames' grey levels are
    the encoded frame indices, spread over the 3 s)."""
    import struct

    import av
    import numpy as np

    from copdata.qa.detect import sample_frames
    path = tmp_path / "ten.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.options = {"qp": "0"}
        for i in range(75):
            frame = av.VideoFrame.from_ndarray(np.full((32, 64, 3), i * 3, np.uint8), "rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    data = bytearray(path.read_bytes())
    at = data.find(b"\x44\x89")  # EBML id of the Segment Info's Duration (a float)
    size = data[at + 2] & 0x7F
    data[at + 3:at + 3 + size] = struct.pack(">d" if size == 8 else ">f", 36000e3)
    path.write_bytes(bytes(data))
    with av.open(str(path)) as container:
        assert container.duration / 1e6 == pytest.approx(36000)
    frames = sample_frames(path, 7)
    levels = [int(round(f.mean())) for f in frames]
    assert len(frames) == 7 and levels == sorted(levels) and levels[-1] - levels[0] > 100
