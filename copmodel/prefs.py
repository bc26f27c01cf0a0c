"""``copmodel prefs``: preference pairs for stage-3 DPO.

For each clip of a split, sample K candidates (seeds ``seed * 1000 + k``) with a
checkpoint's EMA weights, its guidance weight and convention and the roll its
Roll Predictor gives (the sampler's conditions), vocode them, transcribe them
(``copdata.transcription``) and score each with the note-level MIDI F1
(``copdata.scoring.note_scores``, what copbench reports as ``midi_note_f1``) against
the clip's reference notes. The best candidate is the winner, the worst the loser;
clips whose candidates all score the same give no pair.

The file (``torch.save``, read back weights-only by :func:`load_preferences`)
holds ``{"pairs": [...], "info": {...}}``. A pair: ``clip_id``, ``feats_w``,
``feats_l`` (raw audio features), ``roll`` (the roll the sampler used, ``(T, 88)``),
``guidance_weight``, ``score_w``, ``score_l``. ``info``: the checkpoint
(path and sha256: DPO's reference model is that checkpoint's EMA), data, split,
candidates, steps, guidance weight and convention, sway, seed, track, and ``metric`` (name,
module, version, settings, transcriber name, version and thresholds).

Mining runs on ``device``; under ``accelerate``/``torchrun`` each process takes
every W-th clip and the main process merges the shards into one file.
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
# pair keys of files written by older copmodel -> today's names
LEGACY_PAIR_KEYS = {"cfg": "guidance_weight", "mel_w": "feats_w", "mel_l": "feats_l"}


def ranking_metric() -> dict:
    """Name, version and settings of the score that ranks candidates."""
    import copdata
    from copdata import scoring
    from copdata.transcription import get_transcriber

    return {"name": METRIC, "function": "copdata.scoring.note_scores",
            "version": f"copdata {copdata.__version__}",
            "onset_tolerance_s": scoring.ONSET_TOLERANCE,
            "pitch_tolerance_cents": scoring.PITCH_TOLERANCE_CENTS,
            "transcriber": get_transcriber().info()}


def score_candidates(audios: list[np.ndarray], sample_rate: int, reference_notes) -> list[float]:
    """Note F1 (copbench's ``midi_note_f1``: :func:`copdata.scoring.note_scores`) of
    each candidate's transcription; a silent candidate transcribes to no notes."""
    from copdata.errors import SilentInputError
    from copdata.scoring import note_scores
    from copdata.transcription import get_transcriber

    transcriber = get_transcriber()

    def notes_of(audio):
        try:
            return transcriber.transcribe(audio, sample_rate)
        except SilentInputError:
            return []  # a silent candidate has no notes (copbench's silent_output convention)

    return [note_scores(reference_notes, notes_of(a))["f1"] for a in audios]


def load_preferences(path: str | Path) -> dict:
    """Read a preferences file (weights-only ``torch.load``; see :func:`~copmodel.ckpt.safe_load`)."""
    from .ckpt import safe_load
    from .errors import CheckpointError

    # memory-mapped: every rank reads only the pairs of its batch positions
    prefs = safe_load(path, what="preferences file", mmap=True)
    if not isinstance(prefs, dict) or not isinstance(prefs.get("pairs"), list):
        raise CheckpointError("not a copmodel preferences file (copmodel prefs --out)",
                              item=str(path))
    # files written before the renames store the guidance weight as "cfg" and the
    # features as "mel_w" / "mel_l"
    prefs["pairs"] = [{LEGACY_PAIR_KEYS.get(k, k): v for k, v in p.items()}
                      for p in prefs["pairs"] if isinstance(p, dict)]
    return prefs


def mine_pairs(sampler, clips: list, candidates: int, steps: int | None,
               guidance: float | None, seed: int, progress: bool = True
               ) -> tuple[list[dict], list[float]]:
    """Pairs (see the module docstring) and the winner-loser score gaps. Candidates
    are sampled on the ``tv2a`` track (video + the clip's caption: what training sees)."""
    weight = sampler.cfg.sample.guidance_weight if guidance is None else float(guidance)
    pairs, gaps = [], []
    for clip in tqdm(clips, desc="prefs", unit="clip", disable=not progress):
        batch = sampler.conditions(clip)
        feats = [sampler.generate_features(clip, seed * 1000 + k, steps, weight, batch=batch)
                 for k in range(candidates)]
        audios = [sampler.vocode(f, clip) for f in feats]
        scores = score_candidates(audios, clip.sample_rate, clip.notes())
        best, worst = int(np.argmax(scores)), int(np.argmin(scores))
        if scores[best] <= scores[worst]:
            continue
        gaps.append(scores[best] - scores[worst])
        roll = batch["roll"][0].float().cpu() if "roll" in batch else torch.zeros(0, 88)
        pairs.append({"clip_id": clip.id, "feats_w": torch.from_numpy(feats[best]),
                      "feats_l": torch.from_numpy(feats[worst]), "roll": roll, "guidance_weight": weight,
                      "score_w": float(scores[best]), "score_l": float(scores[worst])})
    return pairs, gaps


def make_preferences(ckpt: str | Path, data: str | Path, out: str | Path, split: str = "train",
                     candidates: int = 4, steps: int | None = None,
                     guidance: float | None = None,
                     limit: int | None = None, seed: int = 0, device: str | None = None,
                     progress: bool = True) -> dict:
    """Write preference pairs to ``out``; returns a summary. ``device`` defaults to the
    accelerator's (CUDA when present); several processes split the clips."""
    from accelerate import PartialState

    from .errors import ConfigError

    if candidates < 2:
        raise ConfigError("need at least 2 candidates per clip", item=str(candidates))
    state = PartialState()
    sampler = load_sampler(ckpt, device=device or str(state.device))
    clips = list(copdata.open_dataset(data).clips(split))[:limit]
    mine = clips[state.process_index::state.num_processes]
    pairs, gaps = mine_pairs(sampler, mine, candidates, steps, guidance, seed,
                             progress and state.is_main_process)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if state.num_processes > 1:
        from .ckpt import safe_load

        shard = out.with_name(f".{out.name}.rank{state.process_index}")
        torch.save({"pairs": pairs, "gaps": gaps}, shard)
        state.wait_for_everyone()
        if state.is_main_process:
            pairs, gaps = [], []
            for r in range(state.num_processes):
                part = safe_load(out.with_name(f".{out.name}.rank{r}"), "preferences shard")
                pairs += part["pairs"]
                gaps += part["gaps"]
        state.wait_for_everyone()
        shard.unlink()
    order = {c.id: i for i, c in enumerate(clips)}
    pairs.sort(key=lambda p: order[p["clip_id"]])
    info = {"ckpt": str(ckpt), "ckpt_sha256": sampler.ckpt_hash, "data": str(data),
            "split": split, "candidates": candidates, "seed": seed,
            "steps": steps or sampler.cfg.sample.steps,
            "guidance_weight": (sampler.cfg.sample.guidance_weight if guidance is None
                                else float(guidance)),
            "guidance_convention": sampler.cfg.sample.guidance_convention,
            "sway": sampler.cfg.sample.sway, "track": "tv2a",
            "roll": sampler.info()["roll"], "metric": ranking_metric(),
            "clips": len(clips), "pairs": len(pairs), "processes": state.num_processes}
    if state.is_main_process:
        tmp = out.with_name(f".{out.name}.tmp")
        torch.save({"pairs": pairs, "info": info}, tmp)
        tmp.replace(out)
    return {**info, "mean_gap": float(np.mean(gaps)) if gaps else 0.0, "out": str(out)}
