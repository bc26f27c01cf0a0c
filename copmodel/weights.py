"""Where pretrained encoder weights come from (never downloaded).

A pretrained choice is ``KIND:WHERE`` (``clip:openai/clip-vit-base-patch32``,
``t5:/models/flan-t5-base``, ``encodec:facebook/encodec_24khz``). ``WHERE`` is looked
up, in order, as a local folder; as ``$COPBENCH_WEIGHTS/<org>--<name>`` (default
``~/.cache/copbench/weights``: the folder copbench's embedders use, so one copy of
the weights serves both); and as a Hugging Face repo id in the HF cache
(``huggingface_hub.snapshot_download(local_files_only=True)``, honouring
``$HF_HUB_CACHE``). When none holds a ``config.json``, :class:`WeightsNotFoundError`
names every place looked at, how to fetch the weights, and the built-in choice.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import WeightsNotFoundError


def shared_weights_dir() -> Path:
    root = os.environ.get("COPBENCH_WEIGHTS")
    if root:
        return Path(root).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "copbench" / "weights"


def _hf_snapshot(repo: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo, local_files_only=True,
                                      cache_dir=os.environ.get("HF_HUB_CACHE") or None))
    except Exception:  # not in the cache, or not a valid repo id
        return None


def pretrained_dir(spec: str, field: str, builtin: str) -> Path:
    """The folder of ``spec`` (``KIND:WHERE``) holding a transformers ``config.json``.
    ``field`` (e.g. ``net.video_encoder``) and ``builtin`` (e.g. ``cnn``) make the error
    say how to go without pretrained weights."""
    where = spec.split(":", 1)[1] if ":" in spec else spec
    candidates = [Path(where).expanduser()]
    if "/" in where and not where.startswith(("/", ".", "~")):
        candidates.append(shared_weights_dir() / where.replace("/", "--"))
    for path in candidates:
        if (path / "config.json").is_file():
            return path
    snap = _hf_snapshot(where) if len(candidates) > 1 else None
    if snap is not None and (snap / "config.json").is_file():
        return snap
    looked = ", ".join(str(c) for c in candidates) + (", the Hugging Face cache"
                                                        if len(candidates) > 1 else "")
    raise WeightsNotFoundError(
        f"pretrained weights for {field}={spec!r} not found (looked at {looked}); fetch them on "
        f"a machine with network (`huggingface-cli download {where}`) and copy the folder "
        f"(config.json + model.safetensors ...) to one of those places, or use the built-in "
        f"encoder with --set {field}={builtin}", item=spec)
