"""Finding and verifying pretrained weights (never downloading them here:
``copbench weights fetch`` in :mod:`copbench.weights_cli` does that).

A :class:`WeightsSpec` names a file and where it comes from. :func:`locate`
looks, in order, at an explicit path (``--weights NAME=PATH``), the
``$COPBENCH_WEIGHTS`` folder (default ``~/.cache/copbench/weights``), and the
Hugging Face cache (``huggingface_hub`` with ``local_files_only=True``). When
nothing is found it raises :class:`WeightsMissingError` naming the file, the
URL or repo to fetch it from, and where to put it.

Checksums: a file is verified against, in order, an explicit sha256 in the
spec, a ``<file>.sha256`` sidecar, the Hugging Face blob name (the cache
stores LFS files under their sha256), or, weakest, the hex prefix in a
torch-hub style name (``vggish-10086976.pth``, logged as such); every other
source is a full 64-digit sha256 compared in full. A mismatch raises
:class:`ChecksumError`. A
file with nothing to verify against is used with a logged warning and
``verified_against: null`` in the provenance.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..cache import cache_dir, file_sha256
from ..errors import ChecksumError, WeightsMissingError

log = logging.getLogger(__name__)
ENV_VAR = "COPBENCH_WEIGHTS"
_OVERRIDES: dict[str, str] = {}


@dataclass(frozen=True)
class WeightsSpec:
    name: str  # embedder name used by --weights NAME=PATH
    filename: str  # file (or, for hf_repo, a file inside the repo snapshot)
    source: str  # URL or description of where to fetch it
    hf_repo: str | None = None  # a Hugging Face repo whose snapshot holds the files
    sha256: str | None = None
    hf_file_repo: str | None = None  # a Hugging Face repo holding this single file
    allow_patterns: tuple[str, ...] | None = None  # for hf_repo: the files to fetch

    @property
    def url(self) -> str | None:
        """Plain HTTPS URL of a single file (None for Hub files and repos)."""
        return self.source if self.source.startswith("https://") and not (
            self.hf_repo or self.hf_file_repo) else None


def weights_dir() -> Path:
    root = os.environ.get(ENV_VAR)
    return Path(root).expanduser() if root else cache_dir() / "weights"


def set_override(name: str, path: str | Path) -> None:
    """Use ``path`` (a file, or for HF models a folder) for embedder ``name``."""
    _OVERRIDES[name] = str(path)


def clear_overrides() -> None:
    _OVERRIDES.clear()


def _hf_cached_file(repo: str, filename: str) -> Path | None:
    try:
        from huggingface_hub import hf_hub_download
        return Path(hf_hub_download(repo, filename, local_files_only=True,
                                    cache_dir=os.environ.get("HF_HUB_CACHE") or None))
    except Exception:  # not in the cache
        return None


def _hf_snapshot(repo: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
        # $HF_HUB_CACHE is read now, not at huggingface_hub's import.
        return Path(snapshot_download(repo, local_files_only=True,
                                      cache_dir=os.environ.get("HF_HUB_CACHE") or None))
    except Exception:  # LocalEntryNotFoundError and friends: not in the cache
        return None


def locate(spec: WeightsSpec) -> Path:
    """Path of the weights file (for ``hf_repo`` specs: of the snapshot folder)."""
    candidates = []
    if spec.name in _OVERRIDES:
        candidates.append(Path(_OVERRIDES[spec.name]).expanduser())
    if spec.hf_repo:
        candidates.append(weights_dir() / spec.hf_repo.replace("/", "--"))
    else:
        candidates.append(weights_dir() / spec.filename)
    for path in candidates:
        target = path / spec.filename if (spec.hf_repo and path.is_dir()) else path
        if target.is_file():
            return path
    if spec.hf_repo:
        snap = _hf_snapshot(spec.hf_repo)
        if snap is not None and (snap / spec.filename).is_file():
            return snap
    if spec.hf_file_repo:
        cached = _hf_cached_file(spec.hf_file_repo, spec.filename)
        if cached is not None and cached.is_file():
            return cached
    where = ", ".join(str(c) for c in candidates)
    if spec.hf_repo:
        hint = (f"fetch the Hugging Face repo {spec.hf_repo} (e.g. `huggingface-cli download "
                f"{spec.hf_repo}` on a machine with network) into the HF cache, or copy the repo "
                f"files (config.json, {spec.filename}, ...) into {candidates[-1]}")
    else:
        hint = f"fetch {spec.filename} from {spec.source} and put it at {candidates[-1]}"
    hint = f"run `copbench weights fetch {spec.name}`, or {hint}"
    raise WeightsMissingError(f"pretrained weights for '{spec.name}' not found (looked at {where}); "
                              f"{hint}, or pass --weights {spec.name}=PATH", item=spec.filename)


def _expected_sha256(file: Path, spec: WeightsSpec) -> tuple[str | None, str | None]:
    if spec.sha256:
        return spec.sha256.lower(), "spec"
    sidecar = file.with_name(file.name + ".sha256")
    if sidecar.is_file():
        words = sidecar.read_text(errors="replace").split()
        if not words or not re.fullmatch(r"[0-9a-fA-F]{64}", words[0]):
            raise ChecksumError("the sidecar does not hold a full sha256 (64 hex digits); "
                                "delete it and fetch the weights again", item=str(sidecar))
        return words[0].lower(), "sidecar"
    real = file.resolve()
    if "/blobs/" in str(real) and re.fullmatch(r"[0-9a-f]{64}", real.name):
        return real.name, "hf_blob"
    m = re.search(r"-([0-9a-f]{8,64})\.(pth|pt|bin|safetensors)$", file.name)
    if m:
        return m.group(1), "filename_prefix"
    return None, None


def verify(file: str | Path, spec: WeightsSpec) -> dict:
    """Check a weights file's sha256; returns ``{"path", "sha256", "verified_against"}``."""
    file = Path(file)
    digest = file_sha256(file)
    expected, how = _expected_sha256(file, spec)
    if expected is None:
        log.warning("no checksum to verify %s against; recording its sha256 %s", file, digest)
    elif digest != expected if how != "filename_prefix" else not digest.startswith(expected):
        raise ChecksumError(f"sha256 {digest} does not match the expected {expected} (from "
                            f"{how}); the file is corrupt or a different release: fetch it again "
                            f"from {spec.source}", item=str(file))
    elif how == "filename_prefix":
        log.warning("%s is checked only against the %d-hex-digit prefix in its name; `copbench "
                    "weights fetch` records its full sha256 in a sidecar", file, len(expected))
    return {"file": file.name, "sha256": digest, "verified_against": how}
