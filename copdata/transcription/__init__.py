"""Transcription: audio -> notes, one module per transcriber behind one interface.

* :mod:`~copdata.transcription.base`: the :class:`Transcriber` interface and
  what every transcriber shares (input checks, package lookups).
* :mod:`~copdata.transcription.basic_pitch`: basic-pitch's ONNX model (fast,
  weak on real piano); :mod:`~copdata.transcription.basic_pitch_grid` holds its
  sample/frame grid and :mod:`~copdata.transcription.stream` its bounded-memory
  streaming pass.
* :mod:`~copdata.transcription.transkun`: Transkun (piano-specific, accurate;
  slow on CPU).
* :mod:`~copdata.transcription.registry`: pick one by name
  (``--transcriber``), transcribe a file; its names are re-exported here.
* :mod:`~copdata.transcription.post`: optional note post-processing
  (``--note-post``).
"""

from .base import Transcriber
from .registry import (DEFAULT_TRANSCRIBER, TRANSCRIBERS, check_transcriber_name, get_transcriber,
                       resolve_transcriber_name, transcribe_file, transcriber_for,
                       transcriber_info)

__all__ = ["DEFAULT_TRANSCRIBER", "TRANSCRIBERS", "Transcriber", "check_transcriber_name",
           "get_transcriber", "resolve_transcriber_name", "transcribe_file", "transcriber_for",
           "transcriber_info"]
