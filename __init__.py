"""eventfold: event-sourced totals you can rebuild, catch up and prove.

The package is laid out as ``eventfold.domain`` (aggregates and domain events),
``eventfold.infra`` (the file event store and source readers),
``eventfold.projections`` (projection framework) and ``eventfold.cli``.
"""

__version__ = "0.1.0"
