"""The demonstration (``eventfold demo``) and the sample sources it generates.

- ``story.py``: the whole story on an embedded store, in well under a minute;
- ``sample.py``: realistic generated sources (deterministic for a seed), also
  used by the benchmarks and the tests.
"""
