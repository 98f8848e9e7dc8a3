"""Hook implementations of the deepseg_imgaug plugin: the ``imgaug`` augmenter."""

from deepseg_core import hookimpl

from .augmenter import ImgaugAugmenter


@hookimpl
def deepseg_register_augmenters(registry):
    """Register the ``imgaug`` augmenter."""
    registry.add_augmenter("imgaug", ImgaugAugmenter)
