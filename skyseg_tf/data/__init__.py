"""Data for skyseg-tf: sources, the ``tf.data`` input pipeline and augmentation.

Sources yield element dicts (:data:`ELEMENT_SPEC`): the ``ade20k_outdoors_sky`` TFDS dataset,
image folders (:func:`folder_dataset`) and procedural scenes (:func:`synthetic_sky`).
:func:`make_dataset` turns any of them into batches for ``model.fit``; :func:`contact_sheet`
draws a grid of elements to look at.

Example:
    >>> from skyseg_tf.data import make_dataset
    >>> ds = make_dataset("synthetic", "train", (64, 64), global_batch_size=2, num_examples=5)
    >>> [t.shape.as_list() for t in next(iter(ds))]
    [[2, 64, 64, 3], [2, 64, 64, 1]]
"""

from skyseg_tf.data.augment import (
    STRENGTHS,
    TFAugment,
    albumentations_augment,
    tf_augment,
    wrap_albumentations,
)
from skyseg_tf.data.folder import folder_dataset
from skyseg_tf.data.pipeline import (
    AUGMENT_NAMES,
    RESIZE_MODES,
    VALID_SPLITS,
    load_source,
    make_dataset,
)
from skyseg_tf.data.preview import contact_sheet
from skyseg_tf.data.spec import (
    ELEMENT_SPEC,
    FILE_NAME_KEY,
    IMAGE_KEY,
    MASK_KEY,
    SKY_FRACTION_KEY,
    element_spec,
)
from skyseg_tf.data.synthetic import synthetic_sky

__all__ = [
    "AUGMENT_NAMES",
    "ELEMENT_SPEC",
    "FILE_NAME_KEY",
    "IMAGE_KEY",
    "MASK_KEY",
    "RESIZE_MODES",
    "SKY_FRACTION_KEY",
    "STRENGTHS",
    "TFAugment",
    "VALID_SPLITS",
    "albumentations_augment",
    "contact_sheet",
    "element_spec",
    "folder_dataset",
    "load_source",
    "make_dataset",
    "synthetic_sky",
    "tf_augment",
    "wrap_albumentations",
]
