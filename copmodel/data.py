"""Training tensors from a CoP dataset folder (read through ``copdata.open_dataset``).

Each clip is precomputed once into the arrays the model consumes:

- ``feats``: raw audio features (the representation's feature map: log-STFT, log-mel
  or codec latents) ``float32 (C, feat_frames)`` of the clip audio at the
  internal sample rate (the model normalises them);
- ``frames``: grayscale keyboard frames ``uint8 (T, frame_height, frame_width)``;
- ``video_features``: ``float32 (T, D)`` only with a pretrained video encoder;
- ``roll``: ``float32 (T, 88)`` in {0, 1} (``roll.npy > 0``);
- ``text`` / ``text_mask``: the caption (first step text) encoded for the text encoder.

With ``cache_dir`` the arrays are stored as ``.npz`` keyed by clip id, clip row and
the settings they depend on (never inside the dataset folder), each written to a
temporary name and renamed into place (a reader never sees half a file). Under
several processes only the main process computes missing entries; the others
wait at a barrier and then read the cache. With a cache, items are read from
disk when used (nothing of the split is held in memory), so every process holds
only the clips of its own batch positions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

import copdata
from copdata.errors import DatasetError
from copdata.media.decode import read_audio

from .presets import Config, SeqLens
from .text import encode_caption
from .video import clip_image_features, preprocess_frames

log = logging.getLogger(__name__)


def seq_lens(cfg: Config, seconds: float, fps: float) -> SeqLens:
    return SeqLens.derive(seconds, fps, cfg.audio, cfg.net.patch)


def fit_frames(frames: np.ndarray, num_frames: int) -> np.ndarray:
    """Cut or repeat the last frame so that there are exactly ``num_frames``."""
    if len(frames) == 0:
        raise DatasetError("clip video has no frames", item="frames")
    if len(frames) >= num_frames:
        return frames[:num_frames]
    pad = np.repeat(frames[-1:], num_frames - len(frames), axis=0)
    return np.concatenate([frames, pad])


def condition_arrays(clip, cfg: Config, lens: SeqLens, roll: np.ndarray | None = None,
                     caption: str | None = None) -> dict:
    """Video, text (the clip's caption unless ``caption`` is given) and (ground-truth
    unless given) roll arrays of one clip."""
    rgb = fit_frames(clip.frames(), lens.video_frames)
    out = {"frames": preprocess_frames(rgb, cfg.net.frame_height, cfg.net.frame_width)}
    if cfg.net.video_encoder.startswith("clip:"):
        out["video_features"] = clip_image_features(rgb, cfg.net.video_encoder)
    text, mask = encode_caption(clip.caption if caption is None else caption, cfg.net)
    out["text"], out["text_mask"] = text, mask
    if roll is None:
        roll = clip.roll()
    out["roll"] = (fit_frames(np.asarray(roll), lens.video_frames) > 0).astype(np.float32)
    return out


def clip_arrays(clip, cfg: Config, lens: SeqLens, audio_repr) -> dict:
    """All training arrays of one clip (see the module docstring)."""
    out = condition_arrays(clip, cfg, lens)
    audio, _ = read_audio(clip.dir / "audio.flac", cfg.audio.sample_rate)
    audio = np.asarray(audio, dtype=np.float32)[: lens.audio_samples]
    audio = np.pad(audio, (0, lens.audio_samples - len(audio)))
    with torch.no_grad():
        feats = audio_repr.encode(torch.from_numpy(audio)[None], lens.feat_frames)[0]
    out["feats"] = feats.float().cpu().numpy()
    return out


# Format of the cached arrays, part of every cache file's name: a cache written by
# another format (version 1 stored the features as "mel") is never read; its clips are
# precomputed again. Bump it whenever the arrays' names or meaning change.
CACHE_VERSION = 2


def _cache_key(clip, cfg: Config) -> str:
    deps = {"version": CACHE_VERSION, "row": clip.row, "audio": cfg.audio.__dict__,
            "frames": [cfg.net.frame_height, cfg.net.frame_width, cfg.net.video_encoder],
            "text": [cfg.net.text_encoder, cfg.net.text_vocab, cfg.net.text_max_tokens],
            "seconds": clip.seconds, "fps": clip.fps}
    digest = hashlib.sha256(json.dumps(deps, sort_keys=True, default=str).encode()).hexdigest()
    return f"{clip.id}.{digest[:16]}.npz"


def write_npz_atomic(path: Path, arrays: dict) -> None:
    """``np.savez`` to a temporary file in the same folder, then rename into place."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def read_npz(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def read_cached(path: Path) -> dict:
    """One clip's cached arrays; a file without the ``feats`` array (another cache
    format) is a clear error rather than a ``KeyError`` mid-training."""
    arrays = read_npz(path)
    if "feats" not in arrays:
        raise DatasetError(f"cached clip has no 'feats' array (arrays: {sorted(arrays)}): "
                           f"written by another copmodel cache format; delete the file to "
                           f"precompute it again (cache format {CACHE_VERSION})", item=str(path))
    return arrays


class ClipTensors(torch.utils.data.Dataset):
    """Precomputed clips of one split; items are dicts of tensors. Held in memory
    (``items``) or read from cache files when used (``paths``)."""

    def __init__(self, items: list[dict] | None, ids: list[str], lens: SeqLens,
                 paths: list[Path] | None = None):
        if not ids:
            raise DatasetError("no clips to train on", item="split")
        self.items, self.ids, self.lens, self.paths = items, ids, lens, paths

    @classmethod
    def from_folder(cls, data_dir: str | Path, split: str, cfg: Config, audio_repr,
                    cache_dir: str | Path | None = None, accelerator=None,
                    progress: bool = True) -> "ClipTensors":
        """Precompute (or read from ``cache_dir``) every clip of a split. With an
        ``accelerator`` of several processes, the main process fills the cache and
        the others wait for it (a cache folder is then required)."""
        ds = copdata.open_dataset(data_dir)
        clips = list(ds.clips(split))
        if not clips:
            raise DatasetError(f"dataset has no clips in split {split!r}; splits present: "
                               f"{sorted({r['split'] for r in ds.rows})}", item=str(data_dir))
        lens = seq_lens(cfg, ds.clip_seconds, ds.fps)
        ids = [c.id for c in clips]
        if cache_dir is None:
            if accelerator is not None and accelerator.num_processes > 1:
                raise DatasetError("several processes share precomputed data through a cache "
                                   "folder; pass cache_dir", item=str(data_dir))
            items = [clip_arrays(c, cfg, lens, audio_repr)
                     for c in tqdm(clips, desc=f"precompute {split}", unit="clip", leave=False,
                                   disable=not progress)]
            return cls(items, ids, lens)
        cache = Path(cache_dir)
        paths = [cache / _cache_key(c, cfg) for c in clips]
        main = accelerator is None or accelerator.is_main_process
        if main:
            cache.mkdir(parents=True, exist_ok=True)
            todo = [(c, p) for c, p in zip(clips, paths) if not p.is_file()]
            cached = {n.rsplit(".", 2)[0] for n in os.listdir(cache) if n.endswith(".npz")}
            stale = sum(c.id in cached for c, _ in todo)
            if stale:
                log.warning("%d clips have cache files in %s that do not match this config or "
                            "cache format %d (e.g. written by an older copmodel): computing "
                            "them again", stale, cache, CACHE_VERSION)
            for clip, path in tqdm(todo, desc=f"precompute {split}", unit="clip", leave=False,
                                   disable=not progress):
                write_npz_atomic(path, clip_arrays(clip, cfg, lens, audio_repr))
        if accelerator is not None:
            accelerator.wait_for_everyone()
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise DatasetError(f"{len(missing)} precomputed clips missing from the cache",
                               item=missing[0])
        return cls(None, ids, lens, paths)

    def stacked_feats(self) -> torch.Tensor:
        """Every clip's features in one tensor (small sets only: see :meth:`feature_maps`)."""
        return torch.stack([self[i]["feats"] for i in range(len(self))])

    def feature_maps(self, limit: int = 0, seed: int = 0):
        """The clips' raw features one at a time (every clip, or a seeded subset of
        ``limit`` clips), for streaming statistics."""
        indices = range(len(self))
        if 0 < limit < len(self):
            g = torch.Generator().manual_seed(seed)
            indices = sorted(torch.randperm(len(self), generator=g)[:limit].tolist())
        for i in indices:
            arrays = self.items[i] if self.items is not None else read_cached(self.paths[i])
            yield torch.as_tensor(arrays["feats"])

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        arrays = self.items[i] if self.items is not None else read_cached(self.paths[i])
        return {k: torch.as_tensor(v) for k, v in arrays.items()}


def collate(items: list[dict]) -> dict:
    """Stack a list of item dicts into a batch dict."""
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}
