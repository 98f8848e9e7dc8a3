"""The inputs of every stage: image sources stacked on one grid, training scenes, spatial
folds, band statistics, label indices for augmenters."""
