"""``copmodel prefs``: preference pairs for stage-3 DPO.

For each clip of a split, sample K candidates (seeds ``seed * 1000 + k``) with a
checkpoint, vocode them, transcribe them (``copdata.transcribe``) and score each
with copbench's note-level MIDI F1 against the clip's reference notes. The best
candidate is the winner, the worst the loser; clips whose candidates all score
the same give no pair. The file (``torch.save``) holds ``{"pairs": [{clip_id,
mel_w, mel_l, score_w, score_l}], "info": {...}}`` with raw audio features.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import copdata

from .sample import load_sampler

log = logging.getLogger(__name__)
METRIC = "midi_note_f1"


def score_candidates(audios: list[np.ndarray], sample_rate: int, reference_notes) -> list[float]:
    """Note F1 (copbench's ``midi_note_f1``: :func:`copdata.scoring.note_scores`) of
    each candidate's transcription."""
    from copdata.scoring import note_scores
    from copdata.transcribe import get_transcriber

    transcriber = get_transcriber()
    return [note_scores(reference_notes, transcriber.transcribe(a, sample_rate))["f1"]
            for a in audios]


def load_preferences(path: str | Path) -> dict:
    """Read a preferences file (weights-only ``torch.load``; see :func:`~copmodel.ckpt.safe_load`)."""
    from .ckpt import safe_load
    from .errors import CheckpointError

    prefs = safe_load(path, what="preferences file")
    if not isinstance(prefs, dict) or not isinstance(prefs.get("pairs"), list):
        raise CheckpointError("not a copmodel preferences file (copmodel prefs --out)",
                              item=str(path))
    return prefs


def make_preferences(ckpt: str | Path, data: str | Path, out: str | Path, split: str = "train",
                     candidates: int = 4, steps: int | None = None, cfg: float | None = None,
                     limit: int | None = None, seed: int = 0) -> dict:
    """Write preference pairs to ``out``; returns a summary."""
    if candidates < 2:
        raise ValueError("need at least 2 candidates per clip")
    sampler = load_sampler(ckpt)
    clips = list(copdata.open_dataset(data).clips(split))[:limit]
    pairs, gaps = [], []
    for clip in tqdm(clips, desc="prefs", unit="clip"):
        feats = [sampler.generate_features(clip, seed * 1000 + k, steps, cfg)
                 for k in range(candidates)]
        audios = [sampler.vocode(f, clip) for f in feats]
        scores = score_candidates(audios, clip.sample_rate, clip.notes())
        best, worst = int(np.argmax(scores)), int(np.argmin(scores))
        if scores[best] <= scores[worst]:
            continue
        gaps.append(scores[best] - scores[worst])
        pairs.append({"clip_id": clip.id, "mel_w": torch.from_numpy(feats[best]),
                      "mel_l": torch.from_numpy(feats[worst]),
                      "score_w": float(scores[best]), "score_l": float(scores[worst])})
    info = {"ckpt": str(ckpt), "ckpt_sha256": sampler.ckpt_hash, "data": str(data),
            "split": split, "candidates": candidates, "metric": METRIC, "seed": seed,
            "clips": len(clips), "pairs": len(pairs)}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"pairs": pairs, "info": info}, out)
    return {**info, "mean_gap": float(np.mean(gaps)) if gaps else 0.0, "out": str(out)}
