"""copdata: the five-view Chain-of-Perform piano dataset (video, audio, MIDI, roll, steps)."""

import os as _os

# onnxruntime (the transcriber's runtime) otherwise starts Microsoft's telemetry
# at import and writes a device id and an event database under
# ~/.cache/Microsoft/DeveloperTools/. Its own switch turns that off; it must be
# set before onnxruntime is imported (a user's explicit value is kept).
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
# matplotlib (roll and spectrogram PNGs) keeps its font cache in MPLCONFIGDIR,
# by default ~/.cache/matplotlib: keep it inside the toolkit's cache instead
# ($COPBENCH_CACHE, default ~/.cache/copbench), unless the user set it.
_os.environ.setdefault("MPLCONFIGDIR", _os.path.join(
    _os.environ.get("COPBENCH_CACHE") or _os.path.join(_os.path.expanduser("~"), ".cache",
                                                       "copbench"), "matplotlib"))

from .dataset.store import Clip, Dataset, open_dataset
from .notes import Note

__version__ = "0.1.0"
__all__ = ["Clip", "Dataset", "Note", "open_dataset", "__version__"]
