"""Identifiers that become paths: sanitize before they touch the file system."""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
CLIP_ID_RE = re.compile(r"^[A-Za-z0-9_-]+\.[0-9]{8}$")


def sanitize_source_id(raw: str, max_len: int = 64) -> str:
    """Map any string (file name, URL, manifest id) to ``[A-Za-z0-9_-]+``.

    Runs of other characters (spaces, ``;``, ``$()``, ``.``, ``/``) become one
    ``_``. When anything was replaced or the result is too long, a short hash
    of the raw string is appended so that distinct raw ids stay distinct.
    """
    raw = str(raw)
    if raw and not _UNSAFE.search(raw) and len(raw) <= max_len:
        return raw  # already safe (YouTube ids may start with "_" or "-")
    clean = _UNSAFE.sub("_", raw).strip("_") or "item"
    if clean != raw or len(clean) > max_len:
        digest = hashlib.sha1(raw.encode("utf-8")).hexdigest()[:8]
        clean = f"{clean[: max_len - 9]}-{digest}"
    return clean


def clip_id(source_id: str, segment: int) -> str:
    """``<source_id>.<segment:08d>``; ``source_id`` must already be sanitized."""
    if _UNSAFE.search(source_id) or not source_id:
        raise ValueError(f"source id {source_id!r} is not sanitized")
    return f"{source_id}.{segment:08d}"


MAX_CLIP_ID = 128  # sanitized source ids are at most 64 characters, + ".00000000"


def is_valid_clip_id(value: str) -> bool:
    return (isinstance(value, str) and len(value) <= MAX_CLIP_ID
            and bool(CLIP_ID_RE.match(value)) and ".." not in value)


SPLIT_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def check_split_name(split: str) -> str:
    """Return ``split`` when it is a safe split name (``[A-Za-z0-9_-]``, 1-64
    characters, e.g. ``train``, ``test``, ``val-2``); raise ``ValueError`` naming
    the problem otherwise. Split names become file names in exports, so
    ``../../EVIL`` or ``a/b`` are refused."""
    if not isinstance(split, str) or not SPLIT_RE.match(split):
        raise ValueError(f"split {split!r} must be a word of letters, digits, '_' or '-' "
                         "such as train or test")
    return split


def path_under(root, *parts):
    """``root/part/...`` resolved, refusing any result outside ``root``.

    Every writer that builds a path from a name it did not choose (a split, a
    clip id, a cache key) goes through this. Raises
    :class:`copdata.errors.UnsafePathError` when the joined path (symlinks
    resolved) leaves ``root``.
    """
    from pathlib import Path

    from .errors import UnsafePathError

    base = Path(root).resolve()
    target = base.joinpath(*(str(p) for p in parts)).resolve()
    if target != base and base not in target.parents:
        raise UnsafePathError(f"{'/'.join(str(p) for p in parts)!r} resolves to {target}, "
                              f"outside {base}; refusing to write there", item=str(root))
    return target
