"""DeepSeg plugin package deepseg_maskrcnn."""
