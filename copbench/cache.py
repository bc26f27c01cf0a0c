"""The copbench cache: reference statistics and per-video results, keyed by hashes.

Lives in ``$COPBENCH_CACHE`` or ``~/.cache/copbench``, never inside an input
folder. An entry's key is the sha256 of a JSON document naming everything it
depends on (file hashes, embedder name, version, weights hash, settings), so a
changed input or setting can never hit a stale entry. Entries are float64 ``.npz``
files written to a temp name and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from copdata.hashing import file_sha256  # noqa: F401  (re-exported)

ENV_VAR = "COPBENCH_CACHE"


def cache_dir() -> Path:
    root = os.environ.get(ENV_VAR)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "copbench"


def cache_key(doc: dict) -> str:
    """sha256 of the canonical JSON of ``doc``."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _path(kind: str, key: str) -> Path:
    """``CACHE/kind/key.npz``, refused (``UnsafePathError``) if it would leave the cache."""
    from copdata.ids import path_under
    return path_under(cache_dir(), kind, f"{key}.npz")


def load(kind: str, key: str) -> dict[str, np.ndarray] | None:
    path = _path(kind, key)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def save(kind: str, key: str, arrays: dict[str, np.ndarray]) -> Path:
    path = _path(kind, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez(tmp, **{k: np.asarray(v) for k, v in arrays.items()})
    os.replace(tmp, path)
    return path
