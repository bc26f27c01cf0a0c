"""Typed errors of copdata.

Every error carries the offending input (``item``) and says what to do. A build
catches :class:`CopDataError` per source item and records it as a failed row in
``report.json``; anything else escaping an item is recorded as ``InternalError``
with its message, so one bad item never stops a build.
"""

from __future__ import annotations


class CopDataError(Exception):
    """Base class: an error about one input that a build reports and survives."""

    exit_status = 2  # of a CLI that stops on it: a usage or input error

    def __init__(self, message: str, item: str | None = None):
        self.item = item
        super().__init__(f"{item}: {message}" if item else message)

    @property
    def error_class(self) -> str:
        return type(self).__name__


class MediaError(CopDataError):
    """A media file cannot be opened or decoded (corrupt, empty, truncated)."""


class MissingStreamError(MediaError):
    """A media file lacks a stream the build needs (e.g. a video without audio)."""


class TooShortError(CopDataError):
    """An item is shorter than one clip."""


class QualityRejectedError(CopDataError):
    """Every clip of an item failed the build's QA thresholds (``--qa-min-*``)."""


class SilentInputError(CopDataError):
    """An item's audio is digital silence, so no notes can be transcribed."""


class SampleRateError(CopDataError):
    """Audio arrives at a sample rate other than the one required."""


class MidiError(CopDataError):
    """A MIDI file cannot be read or holds no piano notes."""


class ManifestError(CopDataError):
    """A manifest row or input list is malformed."""


class RenderError(CopDataError):
    """Audio cannot be rendered (e.g. FluidSynth or the SoundFont is missing)."""


class TranscriberError(CopDataError):
    """The transcription model is missing or failed to run."""


class DatasetError(CopDataError):
    """A dataset folder is missing files or violates the clip contract."""


class DownloadError(CopDataError):
    """A download failed; ``kind`` classifies why (see copdata.sources.youtube)."""

    def __init__(self, message: str, item: str | None = None, kind: str = "network"):
        self.kind = kind
        super().__init__(message, item)

    @property
    def error_class(self) -> str:
        return f"DownloadError.{self.kind}"


class UnsafePathError(CopDataError):
    """A name from an input (split, clip id, cache key) would write outside its root."""


class BuildLockedError(CopDataError):
    """Another build holds the output folder."""
