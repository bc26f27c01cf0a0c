"""What may leave a dataset folder: the one check every publisher makes.

The Hub export (and ``--push``), copbench's sample browser and its listening
study copy clip files to places other people read. A dataset folder is input
from someone else: a clip file may be a symlink to ``/etc/passwd`` or to a
private file, and a ``clips.jsonl`` row id may be ``../../../../tmp/X``.
:func:`publishable_views` is the single gate: for one clip row it reads the
view files only when

- the row id is a clip id (``<source_id>.<segment:08d>``, no ``..``, no ``/``);
- ``clips/`` and ``clips/<id>/`` are real folders (not symlinks) inside the
  dataset folder, and each view is a regular file (opened with
  ``O_NOFOLLOW``: a symlink, fifo or device is refused);
- the bytes read hash to the sha256 that ``clips.jsonl`` recorded for that
  view at build time (``validate`` checks the same hashes).

It returns the verified bytes, so what is published is exactly what was
checked. Anything else raises :class:`UnpublishableError` naming the clip and
the file; nothing is copied.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path

from ..errors import DatasetError
from ..ids import is_valid_clip_id

PUBLISHED_VIEWS = ("video.mp4", "audio.flac", "notes.mid", "roll.npy", "steps.json")


class UnpublishableError(DatasetError):
    """A clip file may not be published: outside the dataset, not a regular
    file, or not the file the build recorded (content hash)."""


def _real_dir(path: Path, what: str, item: str) -> None:
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise UnpublishableError(f"{what} is missing ({exc.strerror})", item=item) from None
    if not stat.S_ISDIR(st.st_mode):
        raise UnpublishableError(f"{what} is a symlink or not a folder; only files inside the "
                                 "dataset folder are published", item=item)


def _read_regular(path: Path, item: str) -> bytes:
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:  # ELOOP: a symlink
        why = "a symlink" if os.path.islink(path) else exc.strerror
        raise UnpublishableError(f"{path.name} cannot be published ({why}); only regular files "
                                 "inside the dataset folder are", item=item) from None
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise UnpublishableError(f"{path.name} is not a regular file", item=item)
        return fh.read()


def publishable_views(root: str | Path, row, names=PUBLISHED_VIEWS) -> dict[str, bytes]:
    """``{view file name: bytes}`` of clip ``row`` of the dataset at ``root``,
    each checked by the module's rule; raises :class:`UnpublishableError`."""
    root = Path(root)
    cid = str(row.id)
    if not is_valid_clip_id(cid):
        raise UnpublishableError("clips.jsonl row id is not a clip id (<source>.<8 digits>); "
                                 "refusing to read files for it", item=repr(cid)[:120])
    hashes = row.extra.get("hashes") if hasattr(row, "extra") else None
    if not isinstance(hashes, dict):
        raise UnpublishableError("clips.jsonl records no content hashes for this clip, so its "
                                 "files cannot be checked before publishing; rebuild with "
                                 "this copdata (copdata build --force)", item=cid)
    clips_dir = root / "clips"
    _real_dir(clips_dir, "clips/", cid)
    clip_dir = clips_dir / cid
    _real_dir(clip_dir, f"clips/{cid}/", cid)
    out = {}
    for name in names:
        if name not in PUBLISHED_VIEWS:
            raise ValueError(f"{name!r} is not a clip view")
        data = _read_regular(clip_dir / name, f"{cid}/{name}")
        expected = hashes.get(name)
        if not isinstance(expected, str) or hashlib.sha256(data).hexdigest() != expected.lower():
            raise UnpublishableError(
                f"{name} is not the file the build recorded (sha256 differs from clips.jsonl); "
                "run `copdata validate` and rebuild", item=f"{cid}/{name}")
        out[name] = data
    return out


def flac_samples(data: bytes, item: str = "audio.flac"):
    """Mono float32 samples of a clip's (verified) FLAC bytes, the values
    :meth:`copdata.dataset.store.Clip.audio` decodes from the file."""
    import numpy as np
    import soundfile

    try:
        samples, _ = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise DatasetError(f"audio.flac cannot be decoded ({exc})", item=item) from exc
    return samples.mean(axis=1).astype(np.float32)


def roll_array(data: bytes, item: str = "roll.npy"):
    """The uint8 ``(T, 88)`` roll of a clip's (verified) ``roll.npy`` bytes."""
    import numpy as np

    try:
        roll = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DatasetError(f"roll.npy cannot be read ({exc})", item=item) from exc
    if roll.dtype != np.uint8 or roll.ndim != 2 or roll.shape[1] != 88:
        raise DatasetError(f"roll.npy is {roll.dtype} {roll.shape}, not uint8 (T, 88)", item=item)
    return roll
