"""DeepSeg plugin package deepseg_kea_io."""
