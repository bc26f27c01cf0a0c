"""copbench: the CoP benchmark (metrics, baselines, results with provenance, leaderboard).

Library entry points (the CLI is a thin layer over them):

- :func:`copbench.run.run_benchmark` scores a model on a dataset split and
  returns (and writes) a results dict;
- :func:`copbench.leaderboard.render_leaderboard` and
  :func:`copbench.compare.compare_results` read results JSON files;
- :func:`copbench.metrics.frechet_distance` and the metric registry
  :func:`copbench.metrics.build_metrics`.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
