"""The CLI's commands: each calls the application layer and renders its result."""
