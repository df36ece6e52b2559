"""Domain model: aggregates and domain events.

Imports only the standard library and ``eventsourcing.domain``.
"""
