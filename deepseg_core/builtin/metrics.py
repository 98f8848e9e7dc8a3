"""Built-in plugin metrics."""
