"""Typed errors of copbench (subclasses of :class:`copdata.errors.CopDataError`).

Each carries the offending input (``item``) and says what to do.
"""

from __future__ import annotations

from copdata.errors import CopDataError


class BenchError(CopDataError):
    """Base class of copbench errors."""


class ModelError(BenchError):
    """A ``--model`` argument names nothing copbench can produce outputs from."""


class ModelUnavailableError(ModelError):
    """A checkpoint was given but copmodel (its sampling API) cannot be imported."""


class PairingError(BenchError):
    """Outputs and references cannot be paired (e.g. no common clip ids)."""


class MetricError(BenchError):
    """A metric name is unknown or a metric cannot run on its input."""


class WeightsMissingError(BenchError):
    """Pretrained weights are not on disk; the message names what to fetch and where."""


class ChecksumError(BenchError):
    """A weights file does not match its expected checksum."""


class OutputAudioError(BenchError):
    """A model output file cannot be read."""



class IncompleteOutputsError(BenchError):
    """Some clips have broken or no model outputs (scored only with --allow-failures)."""

    exit_status = 1  # the model failed on some clips, not a usage error


class ResultsConflictError(BenchError):
    """A results file of the same name holds another model's results."""


class UnsafeWeightsError(BenchError):
    """A weights file would need code execution (arbitrary pickled objects) to load."""


class UnsupportedWeightsError(BenchError):
    """A weights file is readable but holds a model variant copbench does not run."""
