"""Infrastructure: the file-based event store and source readers."""
