"""The leaderboard's sample browser (``copbench leaderboard --format html --samples N``).

For N clips (seeded choice among the clips every model scored), the page shows
the clip's video and, per system (the reference first, then each model), an
audio player and one PNG: the log-spectrogram of that audio over its piano
roll. The reference's roll is the dataset's MIDI view; a model's roll is its
output transcribed with copdata's transcriber (basic-pitch), drawn in colour
over the reference roll in grey, so wrong and missing notes stand out.
Playing any audio player plays the (muted) video in step with it.

Media and pictures go to ``<page stem>_files/`` beside the page; the clips
come from the dataset recorded in the results' provenance, the outputs are
re-created with :func:`copbench.outputs.source_for_results`.
"""

from __future__ import annotations

import html
import logging
import shutil
from pathlib import Path

import numpy as np
from tqdm import tqdm

from copdata import open_dataset
from copdata.errors import CopDataError
from copdata.export.publish import flac_samples, publishable_views, roll_array

from .errors import BenchError
from .models import Baseline
from .outputs import clip_output, source_for_results
from .stats import rng_for

log = logging.getLogger(__name__)
REFERENCE = "reference"


def _figure(audio: np.ndarray, sample_rate: int, roll: np.ndarray, ref_roll: np.ndarray | None,
            seconds: float, title: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.signal import stft

    fig, (ax_s, ax_r) = plt.subplots(2, 1, figsize=(3.6, 2.8), dpi=80, sharex=True,
                                     gridspec_kw={"height_ratios": [1, 1]},
                                     constrained_layout=True)
    f, _, z = stft(audio, fs=sample_rate, nperseg=1024, noverlap=768)
    keep = f <= 8000
    db = 20 * np.log10(np.abs(z[keep]) + 1e-6)
    top = max(float(db.max()), -40.0)
    ax_s.imshow(db, origin="lower", aspect="auto", extent=(0, seconds, 0, f[keep][-1] / 1000),
                vmin=top - 80, vmax=top, cmap="magma")
    ax_s.set_ylabel("kHz", fontsize=8)
    ax_s.set_title(title, fontsize=9)
    both = roll if ref_roll is None else np.maximum(roll, ref_roll)
    active = np.nonzero(both.any(axis=0))[0]
    lo, hi = (int(active.min()), int(active.max())) if len(active) else (27, 60)
    lo, hi = max(lo - 2, 0), min(hi + 2, 87)
    extent = (0, seconds, lo + 20.5, hi + 21.5)
    if ref_roll is not None:
        ax_r.imshow((ref_roll[:, lo:hi + 1] > 0).T, origin="lower", aspect="auto",
                    cmap="Greys", vmin=0, vmax=2.5, extent=extent, interpolation="nearest")
    shown = np.ma.masked_equal(roll[:, lo:hi + 1].T.astype(float), 0)
    ax_r.imshow(shown, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=127,
                extent=extent, interpolation="nearest")
    ax_r.set_ylabel("MIDI", fontsize=8)
    ax_r.set_xlabel("s", fontsize=8)
    for ax in (ax_s, ax_r):
        ax.tick_params(labelsize=7)
    fig.savefig(path)
    plt.close(fig)


def _transcribed_roll(audio: np.ndarray, clip) -> np.ndarray:
    from copdata.errors import SilentInputError
    from copdata.roll import render_roll
    from copdata.transcription import get_transcriber
    try:
        notes = get_transcriber().transcribe(audio, clip.sample_rate, item=clip.id)
    except SilentInputError:
        notes = []  # a silent output transcribes to no notes (as in the MIDI metric)
    return render_roll(notes, clip.num_frames, clip.fps)


MARKER = ".copbench-samples"


def _assets_folder(out: Path) -> Path:
    """``<page stem>_files/`` beside the page, emptied when an earlier sample
    browser made it (it holds :data:`MARKER`); any other existing path there
    is the user's and is refused, never deleted."""
    assets = out.parent / f"{out.stem}_files"
    if assets.is_symlink() or (assets.exists() and not (assets / MARKER).is_file()):
        raise BenchError(f"{assets} exists and was not written by a copbench sample browser; "
                         "move it away or choose another --out (nothing was deleted)",
                         item=str(assets))
    if assets.exists():
        for entry in assets.iterdir():  # only what an earlier run wrote: flat files
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    assets.mkdir(parents=True, exist_ok=True)
    (assets / MARKER).write_text("written by copbench leaderboard --samples; the folder is "
                                 "replaced by the next run\n", encoding="utf-8")
    return assets


def sample_browser(results: list[dict], out: Path, n_clips: int, seed: int = 0,
                   progress: bool = False) -> str:
    """Write the media of ``n_clips`` clips beside ``out`` and return the HTML section."""
    from .listen.media import write_stimulus

    prov = results[0].get("provenance", {}).get("dataset", {})
    root = prov.get("root")
    if not root or not Path(root).is_dir():
        raise BenchError("the results do not name a dataset folder that exists "
                         "(provenance.dataset.root); the sample browser needs the clips",
                         item=str(root))
    ds = open_dataset(root)
    common = None
    for res in results:
        ids = set(res.get("per_clip", {}))
        common = ids if common is None else common & ids
    candidates = sorted(i for i in (common or set()) if i in ds)
    if not candidates:
        raise BenchError("no clip is scored by every model; nothing to show", item=str(root))
    rng = rng_for(seed, "samples")
    picked = sorted(rng.choice(len(candidates), size=min(n_clips, len(candidates)),
                               replace=False).tolist())
    clip_ids = [candidates[i] for i in picked]
    sources = []
    for res in results:
        try:
            source = source_for_results(res)
        except CopDataError as exc:
            log.warning("no samples for %s: %s", res["model"], exc)
            sources.append((res["model"], None))
            continue
        if isinstance(source, Baseline) and source.baseline == "oracle":
            continue  # the reference itself, shown first anyway
        sources.append((res["model"], source))
    all_clips = sorted(ds.clips(prov.get("split") or "test"), key=lambda c: c.id)
    for _, source in sources:
        if source is not None:
            source.prepare(all_clips)
    # every file is checked before anything is written: only regular files inside
    # the dataset whose hashes match clips.jsonl are published
    verified = {cid: publishable_views(ds.root, ds[cid].row) for cid in clip_ids}
    assets = _assets_folder(out)
    rel = assets.name
    sections = []
    for k, clip_id in enumerate(tqdm(clip_ids, desc="samples", unit="clip", disable=not progress)):
        clip = ds[clip_id]
        tag = f"clip{k + 1:02d}"
        (assets / f"{tag}.mp4").write_bytes(verified[clip_id]["video.mp4"])
        ref_audio = flac_samples(verified[clip_id]["audio.flac"], clip_id)
        ref_roll = roll_array(verified[clip_id]["roll.npy"], clip_id)
        cards = []
        systems = [(REFERENCE, ref_audio, ref_roll, None)]
        for name, source in sources:
            try:
                if source is None:
                    raise BenchError("outputs cannot be re-created", item=name)
                audio = clip_output(source, clip)
                systems.append((name, audio, _transcribed_roll(audio, clip), ref_roll))
            except CopDataError as exc:
                systems.append((name, None, None, str(exc)))
        for j, (name, audio, roll, ref) in enumerate(systems):
            esc = html.escape(name)
            if audio is None:
                cards.append(f'<div class="card"><b>{esc}</b><p class="err">no output: '
                             f'{html.escape(str(ref))}</p></div>')
                continue
            stem = f"{tag}_{j:02d}"
            write_stimulus(None, audio, clip.sample_rate, assets / f"{stem}.m4a", with_video=False)
            title = ("spectrogram / dataset MIDI roll" if name == REFERENCE
                     else "spectrogram / transcribed roll")
            _figure(audio, clip.sample_rate, roll, ref if isinstance(ref, np.ndarray) else None,
                    clip.seconds, title, assets / f"{stem}.png")
            cards.append(f'<div class="card"><b>{esc}</b><audio controls preload="metadata" '
                         f'src="{rel}/{stem}.m4a"></audio><img src="{rel}/{stem}.png" '
                         f'alt="{esc} spectrogram and roll"></div>')
        sections.append(f'<section class="clip"><h3>{html.escape(clip_id)}</h3><div class="row">'
                        f'<video muted playsinline preload="metadata" controls '
                        f'src="{rel}/{tag}.mp4"></video><div class="cards">{"".join(cards)}'
                        "</div></div></section>")
    return (f"<style>{_STYLE}</style><h2>Samples ({len(clip_ids)} clips)</h2>"
            "<p class=\"notes\">Play any system: the video plays in step with it. Pictures: "
            "spectrogram (top) and piano roll (bottom; a model's roll is its transcribed output "
            "in colour over the reference roll in grey).</p>"
            + "".join(sections) + f"<script>{_SCRIPT}</script>")


_STYLE = """.clip{border-top:1px solid #ccc;padding:6px 0}.clip h3{margin:4px 0;font-size:1em}
.clip .row{display:flex;gap:12px;align-items:flex-start}
.clip video{width:240px;flex:none;background:#000;border-radius:4px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:8px;flex:1}
.card{border:1px solid #ddd;border-radius:6px;padding:4px 6px;font-size:13px;background:#fafafa}
.card audio{width:100%;height:30px;margin:3px 0}.card img{width:100%;display:block}
.err{color:#b00020}"""

_SCRIPT = """
document.querySelectorAll('section.clip').forEach(function (sec) {
  var video = sec.querySelector('video');
  sec.querySelectorAll('audio').forEach(function (a) {
    a.addEventListener('play', function () {
      document.querySelectorAll('audio').forEach(function (o) { if (o !== a) { o.pause(); } });
      video.currentTime = a.currentTime; video.play();
    });
    a.addEventListener('pause', function () { video.pause(); });
    a.addEventListener('seeked', function () { video.currentTime = a.currentTime; });
  });
});
"""
