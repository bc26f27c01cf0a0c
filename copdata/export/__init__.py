"""What leaves the dataset folder: the Hugging Face export and what it publishes.

* :mod:`~copdata.export.hf`: ``copdata export`` (Parquet shards, optional
  push) and :func:`~copdata.export.hf.load_export`.
* :mod:`~copdata.export.card`: the dataset card (README.md with YAML header).
* :mod:`~copdata.export.publish`: reading the views a release may publish,
  refusing links and non-regular files.
"""
