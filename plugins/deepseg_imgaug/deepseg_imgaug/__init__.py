"""DeepSeg augmenter plugin built on imgaug (the original DeepSeg tool's augmentation)."""
