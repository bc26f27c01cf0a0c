"""Listening tests: a static blind study page (``copbench listen``) whose
ratings :mod:`copbench.mos` turns into MOS with confidence intervals."""

from .order import trial_order
from .study import KEY_FILE, StudyError, StudyKey, build_study, default_key_path, read_key

__all__ = ["KEY_FILE", "StudyError", "StudyKey", "build_study", "default_key_path", "read_key",
           "trial_order"]
