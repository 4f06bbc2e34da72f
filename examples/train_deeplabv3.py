"""Reproduce the study's DeepLabV3 run on ADE20K-Outdoors with one command, then score the test split.

The study's second model: DeepLabV3 with an ImageNet ResNet50 encoder at output stride 8 (the
last two ResNet stages dilated instead of strided) and ASPP rates 12/24/36, with a two-class
softmax head over (other, sky), fine-tuned for 20 epochs with Dice loss; test IoU 93.92%.

The run is ``train_unet.py``'s with another config file, ``configs/deeplabv3_resnet50_ade20k.yaml``
(read ``train_unet.py`` for the steps, the data download and the choice of 512x512). The config's
``model_kwargs: {classes: 2, activation: softmax}`` give the study's head; the Dice loss and the
metrics take the sky channel of a two-channel output (``skyseg_tf.losses.sky_probability``), so
the numbers compare with the U-Net's one-channel sigmoid output as they are.

Run:
    python examples/train_deeplabv3.py                            # GPU machine, dataset built
    python examples/train_deeplabv3.py --manual-dir ~/Downloads   # builds the dataset first
    python examples/train_deeplabv3.py --data synthetic --num-examples 20 --image-size 64 \\
        --epochs 1 --encoder-weights none --batch-size 4 --run-dir /tmp/deeplab_smoke   # CPU smoke run

Then compare both runs with the study::

    python examples/compare_study.py runs/unet_resnet50 runs/deeplabv3_resnet50 --out runs/comparison

Example:
    >>> main(["--data", "synthetic", "--num-examples", "20", "--image-size", "64", "--epochs",
    ...       "1", "--encoder-weights", "none", "--batch-size", "4"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import sys

from compare_study import CONFIG_DIR
from train_unet import reproduce

DEFAULT_CONFIG = CONFIG_DIR / "deeplabv3_resnet50_ade20k.yaml"
DESCRIPTION = ("Reproduce the study's DeepLabV3 (ResNet50, output stride 8, ASPP 12/24/36) run on "
               "ADE20K-Outdoors, then score the test split beside the study's numbers.")


def main(argv=None) -> int:
    """Parses ``argv``, trains DeepLabV3, scores it; returns the exit status."""
    return reproduce(argv, DEFAULT_CONFIG, DESCRIPTION)


if __name__ == "__main__":
    sys.exit(main())
