"""Hook implementations of the deepseg_unet64 plugin (filled in by its issue)."""
