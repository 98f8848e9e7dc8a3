"""DeepSeg plugin package deepseg_resunet."""
