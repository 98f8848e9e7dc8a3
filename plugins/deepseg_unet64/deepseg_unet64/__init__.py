"""DeepSeg plugin package deepseg_unet64."""
