"""The dataset card (``README.md``) of a Hugging Face export.

The YAML front matter declares the parquet files per split (``configs``), the
features, the licence and task categories; the text states the sources and
their ids, fps, sample rate, clip length, the transcriber with version and
thresholds, how the views are aligned, statistics and the licence split
(annotations under the project's licence, media under their owners' terms).
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..dataset.stats import dataset_stats
from ..dataset.store import Dataset
from ..escape import code_fence, md_text

PROJECT_LICENSE = "apache-2.0"
MAX_SOURCE_ROWS = 300
PAPER = "https://arxiv.org/abs/2503.22200"


def _sources(ds: Dataset) -> list[dict]:
    """One entry per source item that produced clips: id, split, URL/label, title, clips."""
    items: dict[str, dict] = {}
    for row in ds.rows:
        meta = row.meta
        entry = items.setdefault(row.source_id, {
            "split": row.split,
            "source": meta.get("source_url") or meta.get("url") or row.source,
            "title": meta.get("title") or "",
            "clips": 0,
        })
        entry["clips"] += 1
    return [{"source_id": k, **v} for k, v in items.items()]


def _json_block(value) -> list[str]:
    """A fenced JSON block whose text (remote titles, URLs) cannot close it."""
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    fence = code_fence(text)
    return [fence + "json", text, fence]


def _front_matter(ds: Dataset, features, shard_files: dict[str, list[str]], recorded: bool,
                  split_counts: dict[str, int], out_dir: Path) -> str:
    num_clips = sum(split_counts.values())
    info_yaml = {}
    try:  # datasets' own YAML form of the features (what push_to_hub writes)
        from datasets import DatasetInfo

        info_yaml = DatasetInfo(features=features)._to_yaml_dict()
    except (ImportError, AttributeError):
        pass
    size = next(label for limit, label in ((1e3, "n<1K"), (1e4, "1K<n<10K"),
                                           (1e5, "10K<n<100K"), (1e6, "100K<n<1M"),
                                           (float("inf"), "n>1M")) if num_clips < limit)
    front = {
        "pretty_name": f"CoP piano dataset ({ds.settings.get('source', {}).get('name', '?')})",
        "license": "other" if recorded else PROJECT_LICENSE,
        "task_categories": ["text-to-audio", "audio-classification"],
        "tags": ["music", "piano", "video-to-audio", "midi", "piano-roll",
                 "chain-of-perform", "copdata"],
        "size_categories": [size],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": f"data/{s}-*"} for s in shard_files]}],
    }
    if recorded:
        front["license_name"] = "annotations-apache-2.0-media-owners-terms"
        front["license_details"] = ("Annotations (MIDI, piano rolls, text steps, metadata) "
                                    "Apache-2.0; video and audio remain under their owners' "
                                    "terms.")
    if info_yaml.get("features"):
        sizes = {s: sum((out_dir / f).stat().st_size for f in files)
                 for s, files in shard_files.items()}
        front["dataset_info"] = {
            "features": info_yaml["features"],
            "splits": [{"name": s, "num_bytes": sizes[s], "num_examples": split_counts[s]}
                       for s in shard_files],
            "download_size": sum(sizes.values()), "dataset_size": sum(sizes.values())}
    return "---\n" + yaml.safe_dump(front, sort_keys=False, allow_unicode=True) + "---\n"


def dataset_card(ds: Dataset, features, split_counts: dict[str, int],
                 shard_files: dict[str, list[str]], out_dir: str | Path) -> str:
    """Markdown card with YAML front matter for the exported dataset ``ds`` whose
    shards (``shard_files``, relative to ``out_dir``) are written."""
    s = ds.settings
    source = s.get("source") or {}
    recorded = s.get("midi_origin") == "transcription"
    stats = dataset_stats(ds.root)
    audio_array = isinstance(features["audio"], dict)  # the --audio-format array struct
    fps, sr, secs = ds.fps, ds.sample_rate, ds.clip_seconds
    lines = [_front_matter(ds, features, shard_files, recorded, split_counts, Path(out_dir)),
             f"# {md_text(source.get('name', 'CoP'))} piano performances in five views", "",
             "Each row is one clip of a piano performance with five time-aligned views "
             "(video, audio, MIDI notes, an 88-key piano roll and text steps that walk the "
             "chain video -> keys -> notes -> sound), made with `copdata` for Chain-of-Perform "
             f"video-to-audio research ({PAPER}).", "",
             "## Format", "",
             f"- clip length: {secs:g} s; video {fps:g} fps ({int(round(secs * fps))} frames, "
             f"H.264); audio mono {sr} Hz ({int(round(secs * sr))} samples)",
             ("- `audio`: `{array, sampling_rate}`, the decoded float32 samples (values of "
              "the clip's 16-bit FLAC)" if audio_array else
              f"- `audio`: `Audio` ({sr} Hz), the clip's 16-bit FLAC file")
             + "; `video`: `Video`, the clip's H.264 MP4 file. `datasets` decodes them with "
             "torchcodec (which needs a system FFmpeg); without it, "
             "`copdata.export.hf.load_export` loads them as `{bytes, path}` and "
             "`decode_audio` / `decode_video` decode them with soundfile and PyAV, to the same "
             "samples and frames",
             "- `roll`: uint8 (frames, 88); column k is MIDI pitch 21+k (A0..C8); value = "
             "velocity of a sounding note, 0 = off; frame i covers [i/fps, (i+1)/fps)",
             "- `notes`: lists `pitch`, `start`, `end` (seconds in the clip), `velocity`, as in "
             "the clip's MIDI file", "- `steps`: ordered `{step, text}`; every number a step "
             "states is true of the clip's notes; `caption` is the first step",
             "- source columns: `source_id`, `source`, `segment`, `start`/`end` (seconds in the "
             "source), `midi_origin`, source metadata (title, uploader, licence, URL when "
             "known) and `stats`",
             f"- splits: {', '.join(f'{k} ({v} clips)' for k, v in split_counts.items())}; "
             f"files: {', '.join(f for files in shard_files.values() for f in files)}", "",
             "## How the views were made and aligned", "",
             "Every view covers the same span and starts at t = 0 of the clip. Video frames are "
             "resampled to a constant frame rate by presentation time (frame i shows source time "
             "start + i/fps) and cropped to the keyboard box when the source gives one; audio is "
             "decoded and resampled with libswresample (PyAV). The MIDI view is "
             + ("the automatic transcription of the performance audio (not ground truth)"
                if recorded else "the ground-truth notes the audio was rendered from")
             + "; notes crossing a clip edge are cut at it. The roll and the text steps are "
             "computed from the MIDI view as read back from the file, so the views agree "
             "exactly.", ""]
    transcriber = s.get("transcriber")
    if transcriber:
        from ..transcription.registry import measured_accuracy

        lines += ["## Transcriber", "", *_json_block(transcriber), "",
                  measured_accuracy(transcriber.get("name"), transcriber.get("note_post") or ()),
                  ""]
    from ..qa.stage import claims_card_lines

    lines += ["## What the text steps claim", "", *claims_card_lines(s.get("qa")), "",
              "Each row's `qa` column holds the measurements (docs/qa.md of the CoP toolkit).", ""]
    lines += ["## Source", "", *_json_block(source),
              "", "## Statistics", "",
              f"- clips: {stats['clips']} ({stats['hours']:.3f} h); per split: "
              + ", ".join(f"{k}: {v}" for k, v in stats["clips_per_split"].items()),
              f"- notes: {stats['notes']}; notes per second per clip: mean "
              f"{stats['notes_per_second']['mean']}, min {stats['notes_per_second']['min']}, "
              f"max {stats['notes_per_second']['max']}"]
    if stats["pitch"]:
        lines.append(f"- pitch range: {stats['pitch']['lowest']} .. {stats['pitch']['highest']}")
    lines.append(f"- source items: {stats['items']}, failed at build time: "
                 f"{stats['items_failed']} {md_text(stats['failures_by_class'] or '')}".rstrip())
    lines += ["", "## Sources and ids", "",
              "| source_id | split | clips | source | title |", "|---|---|---|---|---|"]
    srcs = _sources(ds)
    for e in srcs[:MAX_SOURCE_ROWS]:
        cells = [e["source_id"], e["split"], str(e["clips"]), str(e["source"]), e["title"]]
        lines.append("| " + " | ".join(md_text(c) for c in cells) + " |")
    if len(srcs) > MAX_SOURCE_ROWS:
        lines.append(f"\n... and {len(srcs) - MAX_SOURCE_ROWS} more (see the `source_id` and "
                     "`source` columns).")
    lines += ["", "## Licence", ""]
    if recorded:
        lines += ["- Annotations (MIDI, piano rolls, text steps, statistics, metadata columns) "
                  "are released under Apache-2.0, the licence of the CoP toolkit.",
                  "- Video and audio stay under their owners' terms (see each row's source URL "
                  "and `license` column where given). They are included for research use; "
                  "share the ids and annotations, and remove rows on request of an owner.", ""]
    else:
        lines += ["All views are synthesized by the CoP toolkit and released under Apache-2.0.",
                  ""]
    lines += ["## Loading", "", "```python", "from datasets import load_dataset",
              "ds = load_dataset('PATH_OR_REPO')  # with torchcodec + FFmpeg installed",
              "row = ds['train'][0]",
              ("audio = row['audio']['array']  # float32 mono" if audio_array else
               "samples = row['audio'].get_all_samples()  # torchcodec AudioDecoder"),
              "frames = row['video'].get_frames_in_range(0, len(row['video'])).data  # NCHW",
              "# without torchcodec (soundfile and PyAV only): copdata's helpers",
              "from copdata.export.hf import load_export, decode_audio, decode_video",
              "ds = load_export('PATH_OR_REPO', decode=False)",
              "audio = decode_audio(ds['train'][0]['audio'])  # float32 mono",
              "frames = decode_video(ds['train'][0]['video'])  # uint8 (T, H, W, 3)",
              "```", "", "A local folder is cached by `datasets` under its name and card: after "
              "re-exporting into the same folder, load it with "
              "`download_mode='force_redownload'` (or another `cache_dir`).", "", "## Citation", "", "Chain-of-Perform (CoP), arXiv:2503.22200. "
              f"Exported with copdata {s.get('copdata_version', '')}.", ""]
    return "\n".join(lines)
