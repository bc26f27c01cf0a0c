"""Checkpoints: one ``torch.save`` dict per file, written atomically.

Keys: ``format``, ``stage``, ``step``, ``config`` (``Config.to_dict()``),
``weights`` (model state dict, including audio normalisation stats), ``ema``,
``optimizer``, ``scheduler``, ``rng`` (python, numpy, torch, cuda states),
``data`` (fps, sample rate, seconds of the training clips), ``init_from`` (the
checkpoint this stage started from, or None).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

from copdata.hashing import file_sha256

from .errors import CheckpointError

FORMAT = "copmodel-ckpt-1"


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, payload: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save({"format": FORMAT, **payload}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint not found; train the stage first "
                              "(copmodel train --stage N ...)", item=str(path))
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for truncated files
        raise CheckpointError(f"cannot read checkpoint ({type(exc).__name__}: {exc})",
                              item=str(path)) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"not a {FORMAT} checkpoint", item=str(path))
    return ckpt


def file_hash(path: str | Path) -> str:
    """sha256 of a file."""
    return file_sha256(path)
