"""``copdata show``: one picture of a clip on one time axis.

Top to bottom: a strip of video frames (evenly spaced), the log-mel spectrogram
of the audio, the piano roll (velocity as colour, note names on the axis), and
the text steps.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..notes import note_name
from .store import open_dataset


def show_clip(root: str | Path, clip_id: str, out: str | Path, num_frames: int = 8) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.signal import stft

    ds = open_dataset(root)
    if clip_id not in ds:
        raise DatasetError(f"no clip {clip_id!r} (ids look like {ds.ids()[:1]})", item=str(root))
    clip = ds[clip_id]
    frames = clip.frames()
    audio = clip.audio()
    roll = clip.roll()
    steps = clip.steps()
    T = clip.seconds
    fig = plt.figure(figsize=(14, 10), constrained_layout=True)
    grid = fig.add_gridspec(4, 1, height_ratios=[1.0, 1.3, 1.6, 0.8])

    ax = fig.add_subplot(grid[0])
    picks = np.linspace(0, len(frames) - 1, num_frames).round().astype(int)
    strip = np.concatenate([frames[i] for i in picks], axis=1)
    ax.imshow(strip, aspect="auto", extent=(0, T, 0, 1))
    ax.set_yticks([])
    ax.set_xticks([(k + 0.5) * T / num_frames for k in range(num_frames)])
    ax.set_xticklabels([f"{i / clip.fps:.1f}s" for i in picks])
    ax.set_title(f"{clip.id}  ({clip.split})  video frames")

    ax = fig.add_subplot(grid[1])
    f, t, z = stft(audio, fs=clip.sample_rate, nperseg=2048, noverlap=2048 - 512)
    keep = f <= 8000
    db = 20 * np.log10(np.abs(z[keep]) + 1e-6)
    ax.imshow(db, origin="lower", aspect="auto", extent=(0, T, 0, f[keep][-1] / 1000),
              vmin=db.max() - 80, vmax=db.max(), cmap="magma")
    ax.set_ylabel("kHz")
    ax.set_title("audio spectrogram")
    ax.set_xlim(0, T)

    ax = fig.add_subplot(grid[2])
    active = np.nonzero(roll.any(axis=0))[0]
    lo, hi = (int(active.min()), int(active.max())) if len(active) else (27, 60)
    lo, hi = max(lo - 3, 0), min(hi + 3, 87)
    ax.imshow(roll[:, lo:hi + 1].T, origin="lower", aspect="auto", cmap="viridis",
              extent=(0, T, lo - 0.5, hi + 0.5), interpolation="nearest", vmin=0, vmax=127)
    ticks = [k for k in range(lo, hi + 1) if (k + 21) % 12 == 0]
    ax.set_yticks(ticks)
    ax.set_yticklabels([note_name(k + 21) for k in ticks])
    ax.set_title(f"piano roll ({roll.shape[0]} frames at {clip.fps:g} fps, colour = velocity)")
    ax.set_xlabel("time (s)")
    ax.set_xlim(0, T)

    ax = fig.add_subplot(grid[3])
    ax.axis("off")
    text = "\n".join(textwrap.fill(f"{i + 1}. [{s['step']}] {s['text']}", 150)
                     for i, s in enumerate(steps))
    ax.text(0, 1, text, va="top", ha="left", family="monospace", fontsize=9)
    ax.set_title("text steps", loc="left")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out
