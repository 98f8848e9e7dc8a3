"""Hook implementations of the deepseg_albumentations plugin: the ``albumentations`` augmenter."""

from deepseg_core import hookimpl

from .augmenter import AlbumentationsAugmenter


@hookimpl
def deepseg_register_augmenters(registry):
    """Register the ``albumentations`` augmenter."""
    registry.add_augmenter("albumentations", AlbumentationsAugmenter)
