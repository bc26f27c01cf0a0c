"""``copdata validate``: check every clip of a dataset against the contract.

Checks per clip: all five files present; ``video.mp4`` decodes to exactly
``round(seconds*fps)`` frames; ``audio.flac`` is mono at the dataset rate with
exactly ``round(seconds*sr)`` samples; ``notes.mid`` has one piano track
(program 0), no pitch bends, every note inside ``[0, seconds]``; ``roll.npy`` is
``uint8 (T, 88)`` and equals the roll rendered from the MIDI; ``steps.json``
equals the steps recomputed from the MIDI (so every number it states is true)
and states "a top-down view of a piano keyboard" / "solo piano" only when the
row's ``qa.claims`` say so, and those claims follow from the row's
``keyboard_score`` / ``piano_score`` and the claim thresholds in
``dataset.json``'s ``qa`` block.
Integrity (:mod:`copdata.dataset.integrity`): each view file's sha256 equals the hash
recorded in ``clips.jsonl`` at build time (so an edited file, or audio swapped
between two clips, is found), the row's stats equal those recomputed from the
files, and start/end/segment agree, and no clip's video or audio is
byte-identical to a clip's of another split. Dataset-wide: ids unique and safe, split
names safe, no clip folder missing from or extra to ``clips.jsonl``, no
temporary folders left.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pretty_midi
from tqdm.auto import tqdm

from ..errors import CopDataError
from ..ids import MAX_CLIP_ID, is_valid_clip_id
from ..notes import notes_from_pretty_midi
from ..roll import render_roll
from ..sources.base import split_problem
from ..steps import make_steps
from .integrity import (check_hashes, check_spans, check_stats, cross_split_duplicates,
                        missing_hashes)
from .store import TMP_PREFIX, VIEW_FILES, Clip, open_dataset

REQUIRED_SETTINGS = ("schema_version", "fps", "sample_rate", "clip_seconds", "source")


def _check_video(clip: Clip) -> list[str]:
    try:
        with av.open(str(clip.dir / "video.mp4")) as container:
            stream = container.streams.video[0]
            if stream.codec_context.name != "h264":
                return [f"video codec is {stream.codec_context.name}, expected h264"]
            count = sum(1 for _ in container.decode(stream))
    except Exception as exc:  # any decode failure is a finding, not a crash
        return [f"video does not decode: {exc}"]
    if count != clip.num_frames:
        return [f"video has {count} frames, expected {clip.num_frames}"]
    return []


def _check_audio(clip: Clip) -> list[str]:
    try:
        with av.open(str(clip.dir / "audio.flac")) as container:
            stream = container.streams.audio[0]
            rate, channels = stream.codec_context.sample_rate, stream.codec_context.channels
            samples = sum(f.samples for f in container.decode(stream))
    except Exception as exc:
        return [f"audio does not decode: {exc}"]
    problems = []
    if rate != clip.sample_rate:
        problems.append(f"audio sample rate {rate}, expected {clip.sample_rate}")
    if channels != 1:
        problems.append(f"audio has {channels} channels, expected mono")
    if samples != clip.num_samples:
        problems.append(f"audio has {samples} samples, expected {clip.num_samples}")
    return problems


def _check_claims(clip: Clip, qa_settings: dict | None) -> list[str]:
    """The row's QA claims follow from its scores (and distinct pitches, for
    solo piano) and the dataset's thresholds."""
    qa = clip.row.get("qa")
    if qa is None:
        return [] if not qa_settings else ["row has no qa object although the build ran QA"]
    if not qa_settings:
        return ["row has a qa object but dataset.json has no qa block"]
    if not isinstance(qa, dict):
        return ["row's qa is not an object"]
    claims = qa.get("claims") or {}
    if not isinstance(claims, dict):
        return ["row's qa.claims is not an object"]
    problems = []
    for name, score, key in (("keyboard", "keyboard_score", "claim_keyboard"),
                             ("solo_piano", "piano_score", "claim_piano")):
        value = qa.get(score)
        if not isinstance(value, (int, float)):
            problems.append(f"qa.{score} is missing or not a number")
            continue
        expected = value >= qa_settings[key]
        min_keys = qa_settings.get("claim_keyboard_keys")
        if name == "keyboard" and min_keys is not None and qa.get("keyboard_keys") is not None:
            expected = expected and qa["keyboard_keys"] >= min_keys  # a partial keyboard
        min_pitches = qa_settings.get("claim_piano_pitches")
        pitches = qa.get("piano_pitches")
        if name == "solo_piano" and min_pitches is not None and pitches is not None:
            expected = expected and pitches >= min_pitches  # a few held notes: no claim
        min_timbre = qa_settings.get("claim_piano_timbre")
        timbre = qa.get("piano_timbre")
        if name == "solo_piano" and min_timbre is not None:  # recorded: timbre measured and piano
            expected = expected and isinstance(timbre, (int, float)) and timbre >= min_timbre
        if bool(claims.get(name)) != bool(expected):
            problems.append(f"qa.claims.{name}={claims.get(name)} but {score}={value} and the "
                            f"claim threshold is {qa_settings[key]}"
                            + (f" ({pitches} distinct pitches, {min_pitches} needed)"
                               if name == "solo_piano" and min_pitches is not None
                               and pitches is not None else "")
                            + (f" (piano_timbre {timbre}, {min_timbre} needed)"
                               if name == "solo_piano" and min_timbre is not None else ""))
    return problems


def _check_midi_roll_steps(clip: Clip) -> list[str]:
    problems = []
    try:
        pm = pretty_midi.PrettyMIDI(str(clip.dir / "notes.mid"))
    except Exception as exc:
        return [f"notes.mid does not parse: {exc}"]
    # pretty_midi drops an empty track when reading: a clip without notes has none
    if len(pm.instruments) != 1 and not (len(pm.instruments) == 0 and not clip.row.get("stats", {}).get("notes")):
        problems.append(f"MIDI has {len(pm.instruments)} tracks, expected one piano track")
    for inst in pm.instruments:
        if inst.program != 0 or inst.is_drum:
            problems.append(f"MIDI track program {inst.program} (drum={inst.is_drum}), expected 0")
        if inst.pitch_bends:
            problems.append(f"MIDI has {len(inst.pitch_bends)} pitch bends")
    notes = notes_from_pretty_midi(pm)
    outside = [n for n in notes if n.start < 0 or n.end > clip.seconds + 1e-6 or n.end <= n.start]
    if outside:
        problems.append(f"{len(outside)} notes outside [0, {clip.seconds:g}] s, e.g. {outside[0]}")
    try:
        roll = clip.roll()
    except Exception as exc:
        problems.append(f"roll.npy does not load: {exc}")
    else:
        if roll.dtype != np.uint8 or roll.shape != (clip.num_frames, 88):
            problems.append(f"roll is {roll.dtype} {roll.shape}, expected uint8 ({clip.num_frames}, 88)")
        elif diff := int((roll != render_roll(notes, clip.num_frames, clip.fps)).sum()):
            problems.append(f"roll differs from the roll rendered from notes.mid in {diff} cells")
    try:
        steps = clip.steps()
    except Exception as exc:
        problems.append(f"steps.json does not load: {exc}")
    else:
        qa = clip.row.get("qa")
        claims = qa.get("claims") if isinstance(qa, dict) else None
        expected = make_steps(notes, clip.seconds, clip.fps, clip.row.meta,
                              claims if isinstance(claims, dict) else None)
        # a hostile steps.json (not a list of objects) is a finding, not a crash
        if (not isinstance(steps, list) or not all(isinstance(s, dict) for s in steps)
                or [s.get("step") for s in steps] != [s["step"] for s in expected]):
            problems.append("steps.json does not walk video -> keys -> notes -> sound")
        elif steps != expected:
            problems.append("steps.json states something not true of notes.mid")
    return problems


def validate_dataset(root: str | Path, progress: bool = True) -> list[str]:
    """All contract violations as ``"<where>: <problem>"`` lines (empty if none)."""
    root = Path(root)
    try:
        ds = open_dataset(root)
    except (CopDataError, ValueError) as exc:  # JSON or UTF-8 errors too
        return [f"{root}: {exc}"]
    problems = [f"dataset.json: missing {k}" for k in REQUIRED_SETTINGS if k not in ds.settings]
    if not (root / "report.json").is_file():
        problems.append("report.json: missing")
    ids = [r.id for r in ds.rows]
    seen = set()
    for cid in ids:
        if cid in seen:
            problems.append(f"clips.jsonl: duplicate id {cid}")
        seen.add(cid)
        if not isinstance(cid, str) or not is_valid_clip_id(cid):
            problems.append(f"clips.jsonl: unsafe clip id {cid!r:.100} (ids are <source>.<8 digits>, "
                            f"at most {MAX_CLIP_ID} characters)")
    clips_dir = root / "clips"
    on_disk = {p.name for p in clips_dir.iterdir()} if clips_dir.is_dir() else set()
    for name in sorted(on_disk - seen):
        kind = "temporary (partial) clip folder" if name.startswith(TMP_PREFIX) else "folder not in clips.jsonl"
        problems.append(f"clips/{name}: {kind}")
    for row in ds.rows:
        if not row.split:
            problems.append(f"{row.id}: row has an empty split")
        elif split_problem(row.split):
            problems.append(f"{row.id}: {split_problem(row.split)}")
    problems.extend(check_spans(ds.rows, ds.clip_seconds))
    problems.extend(missing_hashes(ds.rows))
    problems.extend(cross_split_duplicates(ds.rows))
    for clip in tqdm(list(ds.clips()), desc="validate", unit="clip", disable=not progress):
        if not is_valid_clip_id(clip.id):
            continue
        missing = [f for f in VIEW_FILES if not (clip.dir / f).is_file()]
        if missing:
            problems.append(f"{clip.id}: missing {', '.join(missing)}")
            continue
        for check in (_check_video, _check_audio, _check_midi_roll_steps, check_hashes,
                      check_stats):
            problems.extend(f"{clip.id}: {p}" for p in check(clip))
        problems.extend(f"{clip.id}: {p}" for p in _check_claims(clip, ds.settings.get("qa")))
    return problems
