"""The application layer: the eventsourcing application and its services."""
