"""TFDS builder package for ADE20K-Outdoors sky segmentation.

Importing this package registers the ``ade20k_outdoors_sky`` dataset with TFDS; it
does nothing else (no prints, no environment or global changes).

Example:
    >>> import tensorflow_datasets as tfds
    >>> import tfds_ade20k_outdoors
    >>> "ade20k_outdoors_sky" in tfds.list_builders()
    True

From the shell::

    tfds build --imports tfds_ade20k_outdoors ade20k_outdoors_sky

:data:`VOID_LABEL` (2, the mask value of unlabelled pixels in the ``*_void`` configs) is
defined in this package, not imported from ``skyseg_tf``, so that this package imports on
its own; it equals ``skyseg_tf.data.spec.VOID_LABEL``.
"""

from tfds_ade20k_outdoors.ade20k_outdoors_sky.ade20k_outdoors_sky_dataset_builder import (
    ADE_CHALLENGE_URL,
    KAGGLE_DATASET,
    MANUAL_DOWNLOAD_INSTRUCTIONS,
    ON_BAD_EXAMPLE_CHOICES,
    OUTDOOR_SCENE_CATEGORIES,
    SKY_CLASS_INDEX,
    SKY_LABEL,
    SPLIT_PERCENTAGES,
    UNLABELLED_CHOICES,
    UNLABELLED_CLASS_INDEX,
    VOID_LABEL,
    Ade20kOutdoorsSkyConfig,
    Builder,
    split_for_file_name,
)

Ade20kOutdoorsSky = Builder
"""The ``ade20k_outdoors_sky`` builder class (TFDS requires the name ``Builder``)."""

DATASET_NAME = "ade20k_outdoors_sky"

__all__ = [
    "ADE_CHALLENGE_URL",
    "Ade20kOutdoorsSky",
    "Ade20kOutdoorsSkyConfig",
    "DATASET_NAME",
    "KAGGLE_DATASET",
    "MANUAL_DOWNLOAD_INSTRUCTIONS",
    "ON_BAD_EXAMPLE_CHOICES",
    "OUTDOOR_SCENE_CATEGORIES",
    "SKY_CLASS_INDEX",
    "SKY_LABEL",
    "SPLIT_PERCENTAGES",
    "UNLABELLED_CHOICES",
    "UNLABELLED_CLASS_INDEX",
    "VOID_LABEL",
    "split_for_file_name",
]
