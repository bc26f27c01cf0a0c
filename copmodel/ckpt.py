"""Checkpoints: one ``torch.save`` dict per file, written atomically, read back
with ``torch.load(weights_only=True)`` (tensors, numbers, strings, lists, tuples
and dicts only: a checkpoint cannot run code when it is loaded; a file that
tries to raises :class:`CheckpointError` and nothing of it executes).

Keys: ``format``, ``stage``, ``step``, ``config`` (``Config.to_dict()``),
``weights`` (model state dict, including audio normalisation stats), ``ema``,
``optimizer``, ``scheduler``, ``rng`` (python, numpy, torch, cuda states),
``data`` (fps, sample rate, seconds of the training clips), ``init_from`` (the
checkpoint this stage started from, or None).
"""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from copdata.hashing import file_sha256

from .errors import CheckpointError

FORMAT = "copmodel-ckpt-1"


def rng_state() -> dict:
    """Python, numpy, torch (and CUDA) RNG states in weights-only-loadable types
    (numpy's key array is stored as an int64 tensor)."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                       float(gauss)),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_as_tuple(state["python"]))
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), pos,
                         has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    set_cuda_rng_states(state.get("cuda") or [])


def set_cuda_rng_states(states) -> int:
    """Restore the stored CUDA RNG states of the GPUs that exist here: a checkpoint
    written on 8 GPUs resumes on 1 (the extra states are ignored) and one written on 1
    resumes on 8 (the other GPUs keep their states). Returns how many were restored."""
    if not states or not torch.cuda.is_available():
        return 0
    n = min(len(states), torch.cuda.device_count())
    for index in range(n):
        torch.cuda.set_rng_state(states[index], index)
    return n


def to_cpu(obj):
    """A copy of nested dicts/lists/tuples with every tensor moved to the CPU (what a
    checkpoint stores, so that it loads on any machine)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


def _as_tuple(value):
    """Nested lists -> tuples (Python's random state is a tuple of tuples)."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value


def safe_load(path: str | Path, what: str = "checkpoint", mmap: bool = False):
    """``torch.load(path, weights_only=True)`` with every failure as a
    :class:`CheckpointError` (a file that would run code on unpickling is refused
    by the weights-only unpickler before anything of it executes). ``mmap``: tensors
    are memory-mapped from the file (read when touched, shared between processes) when
    it is in torch's zip format."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found", item=str(path))
    if mmap:
        import zipfile

        # only torch's zip format can be mapped; an old-format file is read whole (and
        # still weights-only)
        mmap = zipfile.is_zipfile(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        found = [line.strip() for line in str(exc).splitlines()
                 if "Unsupported" in line or "GLOBAL" in line]
        reason = found[0].rstrip(".") if found else type(exc).__name__
        raise CheckpointError(
            f"refusing to load {what}: it holds objects other than tensors, numbers, strings "
            f"and containers, which could run code on loading ({reason}); nothing of it was "
            "executed", item=str(path)) from None
    except Exception as exc:  # torch raises many types for truncated or foreign files
        raise CheckpointError(f"cannot read {what} ({type(exc).__name__}: {exc})",
                              item=str(path)) from None


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
    ckpt = safe_load(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"not a {FORMAT} checkpoint", item=str(path))
    return ckpt


def file_hash(path: str | Path) -> str:
    """sha256 of a file."""
    return file_sha256(path)
