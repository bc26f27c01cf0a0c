import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# Hypothesis: a bounded number of examples, no deadline (shared CI cores), and in CI
# (CI=true) derandomized with no example database, so a CI run is reproducible.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("dev", max_examples=40, deadline=None)
_hypothesis_settings.register_profile("ci", max_examples=40, deadline=None, derandomize=True,
                                      database=None, print_blob=True)
_hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev"))


# tqdm's default write lock holds a multiprocessing semaphore shared by every forked process.
# mutmut runs each mutant in a process forked from one server: a mutant killed while it held
# that semaphore left it taken, and every later mutant's progress bar blocked on it (each then
# counted as killed by timeout). Tests need no cross-process lock: a per-process one.
import threading as _threading  # noqa: E402

import tqdm as _tqdm  # noqa: E402

_tqdm.tqdm.set_lock(_threading.RLock())

@pytest.fixture
def make_video(tmp_path):
    from mediafactory import make_video as _make

    def factory(name="v.mp4", **kw):
        return _make(tmp_path / name, **kw)

    return factory
