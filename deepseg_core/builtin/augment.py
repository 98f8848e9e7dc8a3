"""Built-in plugin augment."""
