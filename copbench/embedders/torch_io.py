"""Reading weights files without executing them (no unpickling of code).

``.safetensors`` files are read with safetensors. Torch files go through
``torch.load(weights_only=True)``: torch's restricted unpickler rebuilds
tensors, containers and primitive types and refuses every other global, so a
file that would run code on load fails with an error instead. Published
training checkpoints such as PANNs' ``Cnn14_16k_mAP=0.438.pth`` also hold the
training sampler's state as numpy arrays and scalars; for those exactly the
numpy globals that rebuild arrays and scalars of plain numeric dtypes are
allowed (both the numpy 1 ``numpy.core`` and numpy 2 ``numpy._core`` spellings),
nothing else. The tensors are then taken from the ``model`` / ``state_dict``
entry and the rest is dropped.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UnsafeWeightsError, WeightsMissingError
from .weights import WeightsSpec, locate, verify

_NUMERIC = ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8")


def numpy_safe_globals() -> list:
    """The numpy callables and types a checkpoint needs for numeric arrays and scalars."""
    import numpy as np
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy 1
        from numpy.core import multiarray
    out = [np.ndarray, np.dtype]
    for name in ("_reconstruct", "scalar"):
        fn = getattr(multiarray, name)
        out += [fn, (fn, f"numpy.core.multiarray.{name}"), (fn, f"numpy._core.multiarray.{name}")]
    out += [type(np.dtype(code)) for code in _NUMERIC]
    return out


def load_torch_file(path: str | Path):
    """``torch.load`` with ``weights_only=True`` plus numeric numpy arrays/scalars."""
    import pickle

    import torch
    try:
        with torch.serialization.safe_globals(numpy_safe_globals()):
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as exc:
        raise UnsafeWeightsError(
            "the weights file holds objects other than tensors and numeric arrays, so it is not "
            "loaded (loading it would mean executing code from it); convert it to a plain state "
            f"dict or safetensors on a trusted machine ({str(exc).splitlines()[0][:200]})",
            item=str(path)) from None


def read_state_dict(path: str | Path) -> dict:
    """A state dict from ``.safetensors`` or a torch file; a ``{"model": ...}`` or
    ``{"state_dict": ...}`` wrapper (a training checkpoint) is unwrapped and every
    entry that is not a tensor is dropped."""
    import torch
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    state = load_torch_file(path)
    for key in ("model", "state_dict"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise UnsafeWeightsError("the weights file does not hold a state dict", item=str(path))
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def load_verified_file(spec: WeightsSpec) -> tuple[dict, dict]:
    """Locate, checksum and read a single-file weights spec: (state dict, weights info)."""
    path = locate(spec)
    if path.is_dir():
        path = path / spec.filename
    if not path.is_file():
        raise WeightsMissingError(f"expected a weights file, found {path}", item=str(path))
    info = verify(path, spec)
    return read_state_dict(path), info
