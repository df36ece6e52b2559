"""Reconstruction: a trusted summary that stands for the lost events of a period.

- ``plan.py``: what the store's reconstructions mean to a fold (adjustments at
  their positions, raw events held out while they stand);
- ``making.py``: ``eventfold reconstruct``: making one from a summary file, and
  retiring one;
- ``standing.py``: the reconstructions as of one position, and which raw events
  they hold out of a total (``events``, ``explain``).
"""
