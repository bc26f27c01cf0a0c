import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def make_video(tmp_path):
    from mediafactory import make_video as _make

    def factory(name="v.mp4", **kw):
        return _make(tmp_path / name, **kw)

    return factory
