"""The dataset on disk: its rows, the writer and reader, and the checks over it.

* :mod:`~copdata.dataset.store`: the folder layout, :class:`ClipWriter` (atomic
  clip folders) and the reader (:func:`open_dataset`, :class:`Dataset`,
  :class:`Clip`; also ``copdata.open_dataset``).
* :mod:`~copdata.dataset.rows`: one clip's ``clips.jsonl`` row
  (:class:`ClipRow`, :class:`ClipStats`).
* :mod:`~copdata.dataset.validate`: ``copdata validate``;
  :mod:`~copdata.dataset.integrity`: view hashes, spans, cross-split duplicates.
* :mod:`~copdata.dataset.stats`: ``copdata stats``; :mod:`~copdata.dataset.show`:
  ``copdata show``.
"""
