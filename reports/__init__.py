"""Rich renderables for the CLI's result objects, one module per result type."""
