"""Hook implementations of the deepseg_kea_io plugin (filled in by its issue)."""
