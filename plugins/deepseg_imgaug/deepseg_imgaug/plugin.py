"""Hook implementations of the deepseg_imgaug plugin: the ``imgaug`` augmenter."""

from deepseg_core import hookimpl
from plugins.deepseg_imgaug.deepseg_imgaug.augmenter import ImgaugAugmenter


@hookimpl
def deepseg_register_augmenters(registry):
    """Register the ``imgaug`` augmenter."""
    registry.add_augmenter("imgaug", ImgaugAugmenter)
