"""DeepSeg augmenter plugin built on albumentations."""
