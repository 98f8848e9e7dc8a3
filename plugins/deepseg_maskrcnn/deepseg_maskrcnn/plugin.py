"""Hook implementations of the deepseg_maskrcnn plugin (filled in by its issue)."""
