"""copbench: the CoP benchmark (metrics, baselines, results with provenance, leaderboard).

Library entry points (the CLI is a thin layer over them):

- :func:`copbench.run.run_benchmark` scores a model on a dataset split and
  returns (and writes) a results dict;
- :func:`copbench.load_results` / :func:`copbench.load_per_clip` read a results
  folder into pandas DataFrames (:mod:`copbench.frame`);
- :func:`copbench.leaderboard.render_leaderboard` and
  :func:`copbench.compare.compare_results` read results JSON files;
- :func:`copbench.listen.build_study` writes a listening study and
  :func:`copbench.mos.run_mos` turns its ratings into MOS;
- :func:`copbench.metrics.frechet_distance` and the metric registry
  :func:`copbench.metrics.build_metrics`.
"""

__version__ = "0.1.0"
__all__ = ["__version__", "load_per_clip", "load_results"]


def __getattr__(name: str):
    # pandas is imported only when a frame is asked for
    if name in ("load_results", "load_per_clip"):
        from . import frame
        return getattr(frame, name)
    raise AttributeError(f"module 'copbench' has no attribute {name!r}")
