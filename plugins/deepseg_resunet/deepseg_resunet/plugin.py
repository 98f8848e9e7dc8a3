"""Hook implementations of the deepseg_resunet plugin (filled in by its issue)."""
