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


def is_valid_clip_id(value: str) -> bool:
    return bool(CLIP_ID_RE.match(value)) and ".." not in value
