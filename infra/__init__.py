"""Infrastructure: the file event store, the backends, reading source files, errors."""
