"""Data-set plumbing every task shares.

* :mod:`.sources`: where records come from (``data.source`` = embedded twin, local
  release files, the hub): :class:`~.sources.SourcedTask` dispatches to a task's hooks.
* :mod:`.release` and :mod:`.split_files`: readers of release files (one JSON file per
  split; per-split JSON lines, JSON or parquet tables) with one-line errors.
* :mod:`.twins`: what the embedded twins share (stable seeds, weighted picks, made-up
  names, disjoint split assignment).
"""
