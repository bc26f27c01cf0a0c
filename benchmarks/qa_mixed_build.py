"""A mixed local build for the QA stage: piano, late-audio piano, speech, noise.

    .venv/bin/python benchmarks/qa_mixed_build.py OUT_DIR

Writes four 21 s videos of a rendered keyboard in a cluttered 640x360 frame
(no crop box: ``--auto-crop`` finds it): ``piano`` (in sync), ``offset_piano``
(the same audio 0.3 s late), ``speech`` (speech-like sound, keyboard idle) and
``noise`` (rustle, keyboard idle); then builds them with
``--auto-crop --qa-min-piano 0.5 --qa-min-keyboard 0.5 --qa-max-offset 0.04
--qa-correct-offset`` and prints ``copdata qa``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from copdata.cli import main as copdata  # noqa: E402
from copdata.qa import synthetic as S  # noqa: E402
from copdata.render.performance import generate_performance  # noqa: E402
from copdata.render.piano import render_notes  # noqa: E402


def make_media(folder: Path) -> None:
    sr, fps, secs = 44100, 25.0, 31.0  # 3 clips: enough for a confident source offset
    size, box = (640, 360), (40, 200, 600, 280)
    notes, _ = generate_performance(1, secs)
    piano = render_notes(notes, sr, secs)
    scene = lambda seed, played: S.performance_scene(played, secs, fps, size, box, seed)  # noqa: E731
    S.write_scene_video(folder / "piano.mp4", scene(1, notes), piano, sr)
    S.write_scene_video(folder / "offset_piano.mp4", scene(1, notes), S.delay(piano, 0.3, sr), sr)
    S.write_scene_video(folder / "speech.mp4", scene(2, []), S.speech_like(secs, sr, 3), sr)
    S.write_scene_video(folder / "noise.mp4", scene(4, []), S.noise(secs, sr, "rustle", 5), sr)


def run(out: Path) -> None:
    media = out / "media"
    media.mkdir(parents=True, exist_ok=True)
    make_media(media)
    copdata(["build", "--source", "local", "--input", str(media), "--out", str(out / "data"),
             "--force", "--quiet", "--auto-crop", "--qa-min-piano", "0.5", "--qa-min-keyboard", "0.5",
             "--qa-max-offset", "0.04", "--qa-correct-offset", "--video-timing", "rendered"])
    copdata(["qa", str(out / "data"), "--plot", str(out / "qa.png")])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    run(Path(sys.argv[1]))
