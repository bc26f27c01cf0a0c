"""What every transcriber shares: the interface, the input checks, package lookups.

A transcriber (:mod:`copdata.transcription.basic_pitch`,
:mod:`copdata.transcription.transkun`) is an object with the
:class:`Transcriber` interface; :mod:`copdata.transcription.registry` picks
one by name. Each validates its input with :func:`check_audio` (mono float32
out; typed errors for bad rates, NaN/inf samples, no samples and silence).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import math
from pathlib import Path
from typing import Any, Iterable, Protocol

import numpy as np

from ..errors import MediaError, SampleRateError, SilentInputError, TooShortError, TranscriberError
from ..notes import Note

SILENT_PEAK_DBFS = -80.0  # input whose peak is below this is silence


class Transcriber(Protocol):
    """The interface every transcriber has (``--transcriber`` picks one)."""

    name: str

    def info(self) -> dict[str, Any]:
        """What a dataset or a result records of the transcriber (name, version,
        model checksum, settings, runtime)."""

    def transcribe(self, audio: np.ndarray, sample_rate: int, *,
                   item: str | None = None) -> list[Note]:
        """Notes of ``audio`` (any rate; multichannel is mixed down)."""

    def transcribe_batch(self, audios: Iterable[tuple[np.ndarray, int]]) -> list[list[Note]]:
        """Notes of several ``(audio, sample_rate)`` inputs."""

    def transcribe_blocks(self, blocks: Iterable[np.ndarray], sample_rate: int, *,
                          item: str | None = None, spool_dir: str | Path | None = None):
        """Notes of a block stream and its
        :class:`~copdata.transcription.stream.AudioSummary`."""


def package_folders(module: str, label: str, install_hint: str) -> list[str]:
    """Folders of an installed package, found with importlib without importing it;
    :class:`TranscriberError` naming ``install_hint`` when it is not installed."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise TranscriberError(f"{label} is not installed; install it with `{install_hint}`",
                               item=module)
    return list(spec.submodule_search_locations)



def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def resampler_name() -> str:
    if importlib.util.find_spec("soxr") is not None:
        return f"soxr HQ {package_version('soxr')}"
    return f"scipy.signal.resample_poly {package_version('scipy')}"



def check_audio(audio: np.ndarray, sample_rate: int, item: str | None = None) -> np.ndarray:
    """Validate and mix down: returns mono float32 audio, or raises.

    A 2-D array is multichannel: its shorter axis (<= 8) is the channel axis and
    is averaged. Raises :class:`SampleRateError` for a non-positive rate,
    :class:`MediaError` for NaN/inf samples or more than 2 dimensions,
    :class:`TooShortError` for no samples, :class:`SilentInputError` when the
    peak is below -80 dBFS."""
    if not isinstance(sample_rate, (int, float, np.number)) or sample_rate <= 0 \
            or int(sample_rate) != sample_rate:
        raise SampleRateError(f"sample_rate must be a positive integer, got {sample_rate!r}",
                              item=item)
    audio = np.asarray(audio)
    if audio.ndim == 2:
        channel_axis = int(np.argmin(audio.shape))
        if audio.shape[channel_axis] > 8:
            raise MediaError(f"audio of shape {audio.shape} is not mono or multichannel "
                             "(no axis of <= 8 channels); pass a 1-D array", item=item)
        audio = audio.mean(axis=channel_axis)
    elif audio.ndim != 1:
        raise MediaError(f"audio must be 1-D (mono) or 2-D (channels), got shape {audio.shape}",
                         item=item)
    if audio.shape[0] == 0:
        raise TooShortError("audio has no samples", item=item)
    audio = audio.astype(np.float32, copy=False)
    if not np.all(np.isfinite(audio)):
        raise MediaError(f"audio has {int(np.sum(~np.isfinite(audio)))} NaN/inf samples; "
                         "fix the decoder or drop this item", item=item)
    peak = float(np.max(np.abs(audio)))
    if peak <= 10 ** (SILENT_PEAK_DBFS / 20):
        level = "-inf" if peak == 0 else f"{20 * math.log10(peak):.1f}"
        raise SilentInputError(f"audio peak is {level} dBFS (silence threshold "
                               f"{SILENT_PEAK_DBFS:.0f} dBFS); nothing to transcribe", item=item)
    return audio
