"""``deepseg demo``: a synthetic NZTM scene and a small experiment that runs every stage."""
