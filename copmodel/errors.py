"""Typed errors of copmodel (subclasses of :class:`copdata.errors.CopDataError`).

Each carries the offending input (``item``) and says what to do.
"""

from __future__ import annotations

from copdata.errors import CopDataError


class CopModelError(CopDataError):
    """Base class of copmodel errors."""


class ConfigError(CopModelError):
    """A preset or sequence-length configuration is inconsistent."""


class WeightsNotFoundError(CopModelError):
    """Pretrained weights were asked for but are not present locally."""


class CheckpointError(CopModelError):
    """A checkpoint is missing, unreadable or of another stage/format."""
