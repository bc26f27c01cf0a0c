"""copdata: the five-view Chain-of-Perform piano dataset (video, audio, MIDI, roll, steps)."""

from .dataset import Clip, Dataset, open_dataset
from .notes import Note

__version__ = "0.1.0"
__all__ = ["Clip", "Dataset", "Note", "open_dataset", "__version__"]
