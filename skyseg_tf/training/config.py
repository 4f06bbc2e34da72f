"""Training configuration: one validated dataclass that the CLI, config files and Python share."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Optional

from skyseg_tf.data.augment import STRENGTHS as AUGMENT_STRENGTHS
from skyseg_tf.data.pipeline import AUGMENT_NAMES
from skyseg_tf.losses import LOSSES as _LOSS_CLASSES
from skyseg_tf.preprocessing import RESIZE_MODES, VIEWS

# The choices of each option, defined here or read from the module that implements them, and
# read by the CLI: one list per option.
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker_mirrored")
OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine", "plateau")
LOSSES = tuple(_LOSS_CLASSES)
AUGMENTATIONS = (*AUGMENT_NAMES, "none")


class ConfigError(ValueError):
    """An invalid configuration value: names the key, the value, and what is valid."""


def _fail(key: str, value: Any, valid: str) -> None:
    raise ConfigError(f"Invalid config value {key}={value!r}: {valid}.")


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs; defaults follow the study (Dice loss, 20 epochs).

    Attributes:
        model: Registry name (``skyseg_tf.list_models()``).
        encoder_weights: ``"imagenet"``, ``None`` or a weights file for the encoder.
        model_kwargs: Extra builder arguments (``{"output_stride": 16}``...).
        initial_weights: Start from a trained model of the same architecture: a ``.keras`` file
            or a preset name (``skyseg_tf.list_presets()``); its weights are loaded into the
            built model before training (fine-tuning, or a second stage of a recipe).
        data: Data source: ``"synthetic"``, ``"ade20k_outdoors_sky"`` (TFDS),
            ``"folder"`` with ``data_kwargs={"images": DIR, "masks": DIR}``, or ``"mix"`` with
            ``data_kwargs={"sources": [spec, ...], "weights": [...]}`` (several sources drawn
            with weights; see :func:`skyseg_tf.data.make_dataset`; needs ``steps_per_epoch``).
        data_kwargs: Arguments of the source (``num_examples``, ``seed``, ``data_dir``,
            ``sky_value``, ``sky_color``, ``file_list``...).
        val_images: A separate folder of validation photos (a pre-split dataset); with
            ``val_masks``. The folder options (``sky_value``, ``sky_color``, ``mask_suffix``...)
            are those of the (first) folder source. ``None``: the source's ``validation_split``.
        val_masks: The masks of ``val_images``.
        train_split: Split used for training.
        validation_split: Split used for validation, the best checkpoint and early stopping.
        image_size: ``(height, width)`` the pipeline resizes to (divisible by 32 for U-Net).
        global_batch_size: Batch size over all replicas (each replica gets an equal share).
        epochs: Number of epochs.
        steps_per_epoch: Limit of steps per epoch (``None``: one pass over the data).
        validation_steps: Limit of validation steps (``None``: the whole split).
        loss: ``"dice"``, ``"bce"``, ``"bce_dice"`` or ``"focal"``.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"`` (momentum 0.9).
        learning_rate: Initial learning rate.
        weight_decay: Weight decay for ``adamw``.
        lr_schedule: ``"constant"``, ``"cosine"`` (decay to 1% over the run) or ``"plateau"``
            (halve after ``reduce_lr_patience`` epochs without validation IoU gain).
        reduce_lr_patience: Patience of the plateau schedule.
        early_stopping_patience: Stop after this many epochs without gain (``None``: never).
        monitor: The validation figure that picks the best epoch (``best.keras``), early
            stopping and the plateau schedule; maximised, except losses and false-sky figures
            (``val_loss``, ``val_<source>_false_sky``, ``_over_1pct``, ``_over_5pct``), minimised. ``"val_iou"`` (default), or,
            when a ``"mix"`` validates on several sources or on a negatives source (each epoch
            logs per-source figures, :mod:`skyseg_tf.training.validation`), ``"val_score"`` (the
            mean over sources of their IoU, or ``1 -`` the share of photos with more than 1% false
            sky for photos without sky) or one source's figure such as ``"val_msrc_v2_iou"``.
        freeze_encoder_epochs: Train only the decoder for the first N epochs.
        bn_momentum: Override the momentum of every BatchNormalization layer (``None``: keep
            the architecture's). Keras's MobileNetV3 uses 0.999, whose moving statistics need
            thousands of steps to settle; 0.9 suits short runs from random initialisation.
        mixed_precision: Use the ``mixed_float16`` policy (GPU).
        jit_compile: Compile the train step with XLA.
        fast_training: Train the model rewritten by
            :func:`skyseg_tf.models.optimize.optimize_for_training`: fused BatchNorms, and
            sub-pixel upsampling convs on CPUs when each replica's batch is 8 or more. Same parameters,
            outputs and gradients (to float rounding), faster on a CPU (``docs/benchmarks.md``).
            ``best.keras`` is saved as the model was built (the rewrites are mapped back).
        strategy: ``"auto"``, ``"one_device"``, ``"mirrored"`` or ``"multi_worker_mirrored"``.
        augment: ``"tf"`` (fast path), ``"albumentations"`` or ``"none"``.
        augment_strength: Preset of the augmentation: ``"light"``, ``"default"``, ``"strong"``
            or ``"photo"`` (real photos: tone curve, haze, vignetting, blur, noise, JPEG).
        resize_mode: ``"resize"`` (whole image to ``image_size``), ``"crop"`` or
            ``"short_side"`` (shorter side to ``min(image_size)``, aspect kept, scale jitter
            and random crops when training); recorded in the saved model, so prediction runs
            the model at the scale it was trained at.
        view: The photos the model is for: ``"photo"`` or ``"fisheye"`` (upward hemispherical
            photos), recorded in the saved model (:mod:`skyseg_tf.preprocessing`) so that
            prediction finds each photo's image circle and calls everything outside it "not
            sky". A single source is also trained and validated through that view
            (:func:`~skyseg_tf.data.make_dataset`'s ``view``); in a mix each source spec names
            its own ``view``.
        scale_range: Scale jitter of ``"short_side"`` training crops, ``[low, high]``.
        cache: Cache decoded examples in memory.
        run_dir: Folder for the config, checkpoints, logs, history and plots.
        seed: Seed for shuffling, augmentation and initialisation.
        backup_every_steps: Also back up every N steps (``None``: at each epoch end).
        tensorboard: Write TensorBoard logs.
        verbose: Keras progress output: 1 (progress bars), 2 (a line per epoch) or 0.
    """

    model: str = "unet_resnet50"
    encoder_weights: Optional[str] = "imagenet"
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    initial_weights: Optional[str] = None
    data: str = "synthetic"
    data_kwargs: dict = dataclasses.field(default_factory=dict)
    val_images: Optional[str] = None
    val_masks: Optional[str] = None
    train_split: str = "train"
    validation_split: str = "validation"
    image_size: tuple = (256, 256)
    global_batch_size: int = 8
    epochs: int = 20
    steps_per_epoch: Optional[int] = None
    validation_steps: Optional[int] = None
    loss: str = "dice"
    optimizer: str = "adam"
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    lr_schedule: str = "constant"
    reduce_lr_patience: int = 3
    early_stopping_patience: Optional[int] = None
    monitor: str = "val_iou"
    freeze_encoder_epochs: int = 0
    bn_momentum: Optional[float] = None
    mixed_precision: bool = False
    jit_compile: bool = False
    fast_training: bool = True
    strategy: str = "auto"
    augment: str = "tf"
    augment_strength: str = "default"
    resize_mode: str = "resize"
    view: str = "photo"
    scale_range: tuple = (1.0, 1.6)
    cache: bool = False
    run_dir: str = "runs/train"
    seed: int = 0
    backup_every_steps: Optional[int] = None
    tensorboard: bool = True
    verbose: int = 1

    def __post_init__(self):
        self.validate()

    def validate(self) -> "TrainConfig":
        """Checks every value; raises :class:`ConfigError` naming the key, value and what is valid.

        Example:
            >>> TrainConfig(epochs=0)
            Traceback (most recent call last):
            ...
            skyseg_tf.training.config.ConfigError: Invalid config value epochs=0: ...
        """
        from skyseg_tf.models import list_models  # Deferred: keeps config import light.

        if self.model not in list_models():
            _fail("model", self.model, f"valid models are {', '.join(list_models())}")
        if self.encoder_weights not in ("imagenet", None) and not (
            isinstance(self.encoder_weights, str) and os.path.isfile(self.encoder_weights)
        ):
            _fail("encoder_weights", self.encoder_weights, "use 'imagenet', null/None or the path of an existing weights file")
        if self.initial_weights is not None:
            from skyseg_tf.presets import list_presets

            if not isinstance(self.initial_weights, str) or not (
                    os.path.isfile(self.initial_weights) or self.initial_weights in list_presets()):
                _fail("initial_weights", self.initial_weights, "use null/None, an existing .keras file or a preset name")
        for key in ("model_kwargs", "data_kwargs"):
            if not isinstance(getattr(self, key), dict):
                _fail(key, getattr(self, key), "must be a mapping of argument names to values")
        if not isinstance(self.data, str) or not self.data:
            _fail("data", self.data, "use 'synthetic', 'ade20k_outdoors_sky[/config]' or 'folder'")
        if self.data == "folder" and not {"images", "masks"} <= set(self.data_kwargs):
            _fail("data_kwargs", self.data_kwargs, "data='folder' needs data_kwargs with 'images' and 'masks' folders")
        if self.data == "mix":
            sources = self.data_kwargs.get("sources")
            if not isinstance(sources, list) or not sources:
                _fail("data_kwargs", self.data_kwargs, "data='mix' needs data_kwargs with a list 'sources' of source specs (and optionally 'weights')")
            if self.steps_per_epoch is None:
                _fail("steps_per_epoch", None, "data='mix' draws from its sources forever; set steps_per_epoch (e.g. the real training images / global_batch_size)")
        if not (isinstance(self.monitor, str) and self.monitor.startswith("val_")):
            _fail("monitor", self.monitor, "name a validation figure, e.g. 'val_iou' or (with several validated sources) 'val_score'")
        if (self.val_images is None) != (self.val_masks is None):
            _fail("val_images" if self.val_masks is not None else "val_masks", None, "give val_images and val_masks together (a folder of validation photos and one of their masks)")
        for key in ("val_images", "val_masks"):
            value = getattr(self, key)
            if value is not None and not (isinstance(value, str) and os.path.isdir(value)):
                _fail(key, value, "must be an existing folder")
        size = self.image_size
        if isinstance(size, int):
            size = (size, size)
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)):
            _fail("image_size", self.image_size, "must be two positive ints (height, width), e.g. [256, 256]")
        self.image_size = tuple(size)
        scale = self.scale_range
        if not (isinstance(scale, (list, tuple)) and len(scale) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in scale) and 0 < scale[0] <= scale[1]):
            _fail("scale_range", self.scale_range, "must be [low, high] with 0 < low <= high, e.g. [1.0, 1.6]")
        self.scale_range = (float(scale[0]), float(scale[1]))
        for key in ("global_batch_size", "epochs"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                _fail(key, value, "must be a positive int")
        for key in ("steps_per_epoch", "validation_steps", "early_stopping_patience", "backup_every_steps"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                _fail(key, value, "must be a positive int or null/None")
        for key in ("reduce_lr_patience", "freeze_encoder_epochs", "seed"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                _fail(key, value, "must be a non-negative int")
        if self.freeze_encoder_epochs >= self.epochs and self.freeze_encoder_epochs:
            _fail("freeze_encoder_epochs", self.freeze_encoder_epochs, f"must be smaller than epochs ({self.epochs})")
        for key, valid in (("loss", LOSSES), ("optimizer", OPTIMIZERS), ("lr_schedule", LR_SCHEDULES),
                           ("strategy", STRATEGIES), ("augment", AUGMENTATIONS),
                           ("augment_strength", AUGMENT_STRENGTHS), ("resize_mode", RESIZE_MODES),
                           ("view", VIEWS)):
            if getattr(self, key) not in valid:
                _fail(key, getattr(self, key), f"valid values are {', '.join(valid)}")
        for key in ("learning_rate", "weight_decay"):
            value = getattr(self, key)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (key == "learning_rate" and value == 0):
                _fail(key, value, "must be a positive number" if key == "learning_rate" else "must be a non-negative number")
        if self.bn_momentum is not None and not (
            isinstance(self.bn_momentum, (int, float)) and not isinstance(self.bn_momentum, bool) and 0 < self.bn_momentum < 1
        ):
            _fail("bn_momentum", self.bn_momentum, "must be null/None or a number between 0 and 1, e.g. 0.9")
        for key in ("mixed_precision", "jit_compile", "fast_training", "cache", "tensorboard"):
            if not isinstance(getattr(self, key), bool):
                _fail(key, getattr(self, key), "must be true or false")
        if self.verbose not in (0, 1, 2):
            _fail("verbose", self.verbose, "valid values are 0, 1 (progress bars) and 2 (one line per epoch)")
        if not isinstance(self.run_dir, str) or not self.run_dir:
            _fail("run_dir", self.run_dir, "must be a folder path")
        return self

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Builds a config from a mapping; unknown keys are an error listing the valid keys.

        Example:
            >>> TrainConfig.from_dict({"model": "unet_mobilenet_v3_large", "epochs": 2}).epochs
            2
        """
        if not isinstance(values, dict):
            raise ConfigError(f"A training config must be a mapping of keys to values; received {type(values).__name__}.")
        names = [field.name for field in dataclasses.fields(cls)]
        values = dict(values)
        for key in ("learning_rate", "weight_decay", "bn_momentum"):
            # YAML 1.1 reads 1e-4 (no dot) as a string; accept what is plainly a number.
            if isinstance(values.get(key), str):
                try:
                    values[key] = float(values[key])
                except ValueError:
                    raise ConfigError(f"Invalid config value {key}={values[key]!r}: must be a number, e.g. 1.0e-4.") from None
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise ConfigError(f"Unknown config key(s) {', '.join(unknown)}; valid keys are {', '.join(names)}.")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "TrainConfig":
        """Reads a JSON or YAML config file (a ``str`` or ``pathlib.Path``).

        Example:
            >>> import json, tempfile
            >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            ...     json.dump({"epochs": 3}, f)
            >>> TrainConfig.from_file(f.name).epochs
            3
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ConfigError(f"Config file {path!r} does not exist.")
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        try:
            if path.lower().endswith((".yaml", ".yml")):
                import yaml

                values = yaml.safe_load(text) or {}
            else:
                values = json.loads(text)
        except Exception as error:  # The parsers' own errors carry line numbers.
            raise ConfigError(f"Could not parse config file {path!r}: {error}") from error
        return cls.from_dict(values)

    def to_dict(self) -> dict:
        """A JSON-ready dict (what the run directory's config.json holds).

        Example:
            >>> TrainConfig().to_dict()["loss"]
            'dice'
        """
        values = dataclasses.asdict(self)
        values["image_size"] = list(self.image_size)
        values["scale_range"] = list(self.scale_range)
        return values

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some values changed (validated).

        Example:
            >>> TrainConfig().replace(epochs=5).epochs
            5
        """
        return TrainConfig.from_dict({**dataclasses.asdict(self), **changes})
