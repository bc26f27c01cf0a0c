"""Loading verified state dicts into torch modules (no network, no pickled code)."""

from __future__ import annotations

from pathlib import Path

from ..errors import WeightsMissingError
from .weights import WeightsSpec, locate, verify


def read_state_dict(path: str | Path) -> dict:
    """A state dict from ``.safetensors`` or a torch file (``weights_only=True``);
    a ``{"model": ...}`` or ``{"state_dict": ...}`` wrapper is unwrapped."""
    import torch
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    state = torch.load(str(path), map_location="cpu", weights_only=True)
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def load_verified_file(spec: WeightsSpec) -> tuple[dict, dict]:
    """Locate, checksum and read a single-file weights spec: (state dict, weights info)."""
    path = locate(spec)
    if path.is_dir():
        path = path / spec.filename
    if not path.is_file():
        raise WeightsMissingError(f"expected a weights file, found {path}", item=str(path))
    info = verify(path, spec)
    return read_state_dict(path), info
