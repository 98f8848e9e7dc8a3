"""Built-in plugin tiler."""
