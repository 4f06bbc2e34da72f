"""``train(config)``: model.fit under a tf.distribute strategy, with a run directory that survives crashes.

A run directory holds::

    config.json          the validated config
    model_rewrites.json  which fast-training rewrites the trained model has (kept on resume)
    history.csv          one row per finished epoch (appended across resumes)
    history.json         the same, as lists per metric
    best.keras           the model with the best validation figure (``config.monitor``)
    training_curves.png  loss and IoU, train vs validation (the study's Figure 3)
    backup/              BackupAndRestore state while a run is unfinished
    tensorboard/         TensorBoard logs

Run ``train`` again with the same ``run_dir`` after a crash or a kill and it resumes from the
last backed-up epoch and finishes with the configured number of epochs.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
from typing import Sequence

import keras
import tensorflow as tf

from skyseg_tf.data import make_dataset
from skyseg_tf.data.sources import parse_source, source_spec
from skyseg_tf.losses import get_loss
from skyseg_tf.metrics import default_metrics
from skyseg_tf.models import build_model, output_activation
from skyseg_tf.models.optimize import fuse_batch_norms, split_pays_off, split_upsampling_convs
from skyseg_tf.training.config import ConfigError, TrainConfig
from skyseg_tf.training.curves import plot_training_curves
from skyseg_tf.training.strategy import get_distribution_strategy, is_chief
from skyseg_tf.training.validation import PerSourceValidation, ValidationSource, monitor_mode

MONITOR = "val_iou"
"""The default of ``TrainConfig.monitor``."""
BEST_MODEL = "best.keras"
HISTORY_CSV = "history.csv"
HISTORY_JSON = "history.json"
CURVES_PNG = "training_curves.png"
REWRITES_JSON = "model_rewrites.json"


def _training_rewrites(config: TrainConfig, strategy, run_dir: str) -> dict:
    """The model rewrites of this run: ``{"fused_batch_norms": bool, "split_upsampling": bool}``.

    A new run decides from ``config.fast_training`` and the machine
    (:func:`skyseg_tf.models.optimize.split_pays_off`) and records the decision in
    ``model_rewrites.json``. A run that resumes from a backup keeps the
    recorded decision, so the backup's variables fit the model even if the config's
    ``fast_training``, the batch or the machine changed (a backup without the record is from a
    version before these rewrites: none).
    """
    path = os.path.join(run_dir, REWRITES_JSON)
    if os.path.isdir(os.path.join(run_dir, "backup")):
        if not os.path.exists(path):
            return {"fused_batch_norms": False, "split_upsampling": False}
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    replica_batch = config.global_batch_size // strategy.num_replicas_in_sync
    rewrites = {"fused_batch_norms": config.fast_training,
                "split_upsampling": config.fast_training and split_pays_off(replica_batch)}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(rewrites, handle, indent=2)
    return rewrites


class TrainingError(RuntimeError):
    """Training stopped (NaN loss, out of memory); the message says why and what was kept."""


@dataclasses.dataclass
class TrainResult:
    """What a finished run produced.

    Attributes:
        run_dir: The run directory.
        best_model_path: Path of the best ``.keras`` model (by ``config.monitor``).
        history: Per-epoch values, ``{"loss": [...], "val_iou": [...], ...}``.
        best_val_iou: The validation IoU of the best epoch (with the default monitor, the best
            validation IoU).
        epochs_completed: Epochs finished over all (resumed) invocations.
        monitor: The figure that picked the best epoch (``config.monitor``).
        best_value: Its value at the best epoch.
        best_epoch: The best epoch, counted from 1 (``0`` when no epoch finished).
    """

    run_dir: str
    best_model_path: str
    history: dict
    best_val_iou: float
    epochs_completed: int
    monitor: str = MONITOR
    best_value: float = float("nan")
    best_epoch: int = 0


class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and remembers where it happened."""

    def __init__(self):
        super().__init__()
        self.tripped_at = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.tripped_at = (self._epoch, batch)
            self.model.stop_training = True

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch


class SafeBackupAndRestore(keras.callbacks.BackupAndRestore):
    """BackupAndRestore that never overwrites the last good backup with diverged weights."""

    def __init__(self, nan_guard: NaNGuard, **kwargs):
        super().__init__(**kwargs)
        self._nan_guard = nan_guard

    def on_epoch_end(self, epoch, logs=None):
        if self._nan_guard.tripped_at is None:
            super().on_epoch_end(epoch, logs)

    def on_train_batch_end(self, batch, logs=None):
        if self._nan_guard.tripped_at is None:
            super().on_train_batch_end(batch, logs)

    def on_train_end(self, logs=None):
        if self._nan_guard.tripped_at is None:
            super().on_train_end(logs)


def cosine_learning_rate(initial: float, epochs: int, floor: float = 0.01):
    """Per-epoch cosine decay from ``initial`` to ``floor * initial``; stable across resumes.

    Example:
        >>> schedule = cosine_learning_rate(1e-3, 10)
        >>> round(schedule(0, 0.0), 6), round(schedule(10, 0.0), 6)
        (0.001, 1e-05)
    """

    def schedule(epoch, _lr):
        progress = min(epoch / max(epochs, 1), 1.0)
        return initial * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))

    return schedule


def set_batch_norm_momentum(model: keras.Model, momentum: float) -> int:
    """Sets the momentum of every BatchNormalization layer, nested models included.

    Returns the number of layers changed. The value is saved with the model's config.

    Example:
        >>> inputs = keras.Input((4, 4, 2))
        >>> model = keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.999)(inputs))
        >>> set_batch_norm_momentum(model, 0.9)
        1
    """
    changed = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            changed += set_batch_norm_momentum(layer, momentum)
        elif isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
            changed += 1
    return changed


def _make_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(config.learning_rate, momentum=0.9)
    return keras.optimizers.Adam(config.learning_rate)


def _source(config: TrainConfig) -> dict:
    """The pipeline's source spec: the source's own arguments travel inside it."""
    return source_spec(config.data, **config.data_kwargs)


def _validation_source(config: TrainConfig, source: dict):
    """The validation source: ``val_images``/``val_masks`` with the folder options, else ``source``."""
    if config.val_images is None:
        return source, config.validation_split
    folder = source
    if source["type"] == "mix":
        folder = next((s for s in source["sources"] if isinstance(s, dict) and s.get("type") == "folder"), {})
    options = {k: v for k, v in folder.items() if k not in ("type", "images", "masks", "split", "file_list", "weight", "validate")}
    # A pre-split folder is used whole (split=None).
    return {"type": "folder", "images": config.val_images, "masks": config.val_masks, "split": None, **options}, "validation"


def _augment(config: TrainConfig):
    if config.augment == "none":
        return False
    if config.augment == "tf":
        from skyseg_tf.data.augment import tf_augment

        return tf_augment(config.augment_strength)
    from skyseg_tf.data.augment import albumentations_augment

    return albumentations_augment(config.image_size, config.augment_strength, seed=config.seed)


def _per_source_validation(config: TrainConfig, source: dict, common: dict) -> list[ValidationSource] | None:
    """The validated sources of a mix, each its own pipeline, when there is more than one or a
    negatives source among them; else ``None`` (Keras validates on the one source)."""
    if source.get("type") != "mix" or config.val_images is not None:
        return None
    arguments = parse_source(source, {})[1]
    chosen = [(spec, name, view) for spec, name, use, view in
              zip(arguments["sources"], arguments["names"], arguments["validate"], arguments["views"]) if use]
    negative = [isinstance(spec, dict) and spec.get("type") == "negatives" for spec, _, _ in chosen]
    if len(chosen) < 2 and not any(negative):
        return None
    sources = []
    for (spec, name, view), is_negative in zip(chosen, negative):
        dataset = make_dataset(spec, config.validation_split, config.image_size, augment=False,
                               training=False, **{**common, "view": view})
        if config.validation_steps is not None:
            dataset = dataset.take(config.validation_steps)
        sources.append(ValidationSource(name, dataset, is_negative))
    return sources


def _datasets(config: TrainConfig, strategy: tf.distribute.Strategy):
    """``(train, validation, per_source)``: ``validation`` is ``None`` when ``per_source`` (a
    list of :class:`ValidationSource`) does the validating."""
    source = _source(config)
    common = dict(global_batch_size=config.global_batch_size, seed=config.seed, cache=config.cache,
                  resize_mode=config.resize_mode, scale_range=config.scale_range)
    if source.get("type") != "mix":  # a mix's sources each name their own view
        common["view"] = config.view
    train = make_dataset(source, config.train_split, config.image_size, augment=_augment(config), training=True, **common)
    per_source = _per_source_validation(config, source, {**common, "cache": False})
    validation = None
    if per_source is None:
        validation_source, validation_split = _validation_source(config, source)
        validation = make_dataset(validation_source, validation_split, config.image_size, augment=False, training=False, **common)
        keys = ["val_loss"] + [f"val_{metric.name}" for metric in default_metrics()]  # what Keras logs
        if config.monitor not in keys:
            raise ConfigError(
                f"Invalid config value monitor={config.monitor!r}: with one validated source the figures are "
                f"{', '.join(keys)}; per-source figures such as val_score need data='mix' with several "
                "validated sources or a negatives source."
            )
    else:
        keys = PerSourceValidation(per_source).log_keys()
        if config.monitor not in keys:
            raise ConfigError(f"Invalid config value monitor={config.monitor!r}: this mix logs {', '.join(keys)}.")
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train = train.with_options(options)
        validation = None if validation is None else validation.with_options(options)
    return train, validation, per_source


def read_history(path: str) -> dict:
    """Reads a CSVLogger file into ``{column: [values per epoch]}``, last row per epoch winning.

    Example:
        >>> read_history("/nonexistent/history.csv")
        {}
    """
    if not os.path.isfile(path):
        return {}
    rows = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows[int(row["epoch"])] = row
    history: dict = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            history.setdefault(key, []).append(int(value) if key == "epoch" else float(value))
    return history


def _callbacks(config: TrainConfig, run_dir: str, chief: bool, nan_guard: NaNGuard, best_so_far: float | None,
               per_source: PerSourceValidation | None = None):
    monitor, mode = config.monitor, monitor_mode(config.monitor)
    callbacks = [
        nan_guard,
        *([per_source] if per_source is not None else []),  # Before the callbacks that read its figures.
        SafeBackupAndRestore(
            nan_guard,
            backup_dir=os.path.join(run_dir, "backup"),
            save_freq=config.backup_every_steps or "epoch",
            double_checkpoint=True,
        ),
        keras.callbacks.ModelCheckpoint(
            os.path.join(run_dir, BEST_MODEL),
            monitor=monitor,
            mode=mode,
            save_best_only=True,
            initial_value_threshold=best_so_far,
        ),
        keras.callbacks.CSVLogger(os.path.join(run_dir, HISTORY_CSV), append=True),
    ]
    if config.early_stopping_patience:
        callbacks.append(keras.callbacks.EarlyStopping(monitor, mode=mode, patience=config.early_stopping_patience))
    if config.lr_schedule == "plateau":
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(monitor, mode=mode, factor=0.5, patience=config.reduce_lr_patience, min_lr=config.learning_rate / 100)
        )
    elif config.lr_schedule == "cosine":
        callbacks.append(keras.callbacks.LearningRateScheduler(cosine_learning_rate(config.learning_rate, config.epochs)))
    if config.tensorboard and chief:
        callbacks.append(keras.callbacks.TensorBoard(os.path.join(run_dir, "tensorboard"), profile_batch=0))
    return callbacks


def _phases(config: TrainConfig) -> list[tuple[str, bool, int, int]]:
    """(name, encoder_trainable, first_epoch, end_epoch) for each fit call."""
    if config.freeze_encoder_epochs:
        return [
            ("frozen_encoder", False, 0, config.freeze_encoder_epochs),
            ("full", True, config.freeze_encoder_epochs, config.epochs),
        ]
    return [("full", True, 0, config.epochs)]


def _worker_run_dir(config: TrainConfig, strategy, chief: bool) -> str:
    if chief:
        return config.run_dir
    resolver = strategy.cluster_resolver  # Non-chief workers write their own copies aside.
    return os.path.join(config.run_dir, "workers", f"{resolver.task_type}{resolver.task_id}")


def train(config, strategy: tf.distribute.Strategy | None = None, callbacks: Sequence[keras.callbacks.Callback] = ()) -> TrainResult:
    """Trains a registry model on a data source and writes the run directory.

    Args:
        config: A :class:`TrainConfig`, a dict of its fields, or a JSON/YAML file path.
        strategy: A ready ``tf.distribute`` strategy; default: from ``config.strategy``.
        callbacks: Extra Keras callbacks.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ConfigError: An invalid config value (before any work is done).
        TrainingError: NaN loss or out of memory; the last good checkpoint is kept.

    Example:
        >>> result = train({"model": "unet_mobilenet_v3_large", "encoder_weights": None,
        ...                 "data_kwargs": {"num_examples": 20}, "image_size": [64, 64],
        ...                 "global_batch_size": 4, "epochs": 1, "run_dir": "/tmp/skyseg_doc_run",
        ...                 "verbose": 0})  # doctest: +SKIP
    """
    if isinstance(config, str):
        config = TrainConfig.from_file(config)
    elif isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    elif not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, a dict or a config file path; received {type(config).__name__}.")
    config.validate()
    strategy = strategy or get_distribution_strategy(config.strategy)
    chief = is_chief(strategy)
    run_dir = _worker_run_dir(config, strategy, chief)
    # The data sources check their files (unmatched names, a wrong sky colour...) here, before
    # anything is written.
    keras.utils.set_random_seed(config.seed)
    train_data, validation_data, per_source = _datasets(config, strategy)
    os.makedirs(run_dir, exist_ok=True)
    with open(os.path.join(run_dir, "config.json"), "w", encoding="utf-8") as handle:
        json.dump(config.to_dict(), handle, indent=2)

    previous_policy = keras.config.dtype_policy()
    if config.mixed_precision:
        keras.config.set_dtype_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(config.seed)
        with strategy.scope():
            model = build_model(config.model, encoder_weights=config.encoder_weights, **config.model_kwargs)
            if config.initial_weights is not None:
                load_initial_weights(model, config.initial_weights)
            if config.bn_momentum is not None:
                set_batch_norm_momentum(model, config.bn_momentum)
            rewrites = _training_rewrites(config, strategy, run_dir)
            if rewrites["split_upsampling"]:
                model = split_upsampling_convs(model)
            if rewrites["fused_batch_norms"]:
                model = fuse_batch_norms(model)
        _fit_phases(model, config, strategy, run_dir, chief, train_data, validation_data, list(callbacks), per_source)
    finally:
        keras.config.set_dtype_policy(previous_policy)

    history = read_history(os.path.join(run_dir, HISTORY_CSV))
    with open(os.path.join(run_dir, HISTORY_JSON), "w", encoding="utf-8") as handle:
        json.dump(history, handle, indent=2)
    if chief and os.path.isfile(os.path.join(run_dir, BEST_MODEL)):
        finalize_best_model(run_dir, config)
    if chief and history:
        plot_training_curves(history, os.path.join(run_dir, CURVES_PNG), title=config.model, loss_name=config.loss)
    values = history.get(config.monitor, [])
    pick = min if monitor_mode(config.monitor) == "min" else max
    best_index = pick(range(len(values)), key=values.__getitem__) if values else None
    ious = history.get("val_iou", [])
    return TrainResult(
        run_dir=run_dir,
        best_model_path=os.path.join(run_dir, BEST_MODEL),
        history=history,
        best_val_iou=ious[best_index] if best_index is not None and best_index < len(ious) else float("nan"),
        epochs_completed=len(history.get("epoch", [])),
        monitor=config.monitor,
        best_value=values[best_index] if best_index is not None else float("nan"),
        best_epoch=0 if best_index is None else best_index + 1,
    )


def load_initial_weights(model: keras.Model, source: str) -> keras.Model:
    """Loads the weights of a trained model (``.keras`` file or preset name) into ``model``.

    The trained model must have the same architecture (the model as built; files written by
    :func:`train` are). Raises ``ValueError`` naming the first layer that does not fit.

    Example:
        >>> load_initial_weights(build_model("unet_mobilenet_v3_large", encoder_weights=None),
        ...                      "sky_unet_mobilenet_v3")  # doctest: +SKIP
    """
    from skyseg_tf.presets import from_preset, list_presets

    if not os.path.isfile(source) and source in list_presets():
        trained = from_preset(source)
    else:
        trained = keras.saving.load_model(source, compile=False)
    mine, theirs = model.weights, trained.weights
    if len(mine) != len(theirs):
        raise ValueError(f"initial_weights: {source!r} has {len(theirs)} weight tensors, the model to train "
                         f"{len(mine)}; it must be the same architecture (model and model_kwargs).")
    for variable, value in zip(mine, theirs):
        if tuple(variable.shape) != tuple(value.shape):
            raise ValueError(f"initial_weights: {source!r}: {value.path} has shape {tuple(value.shape)}, the model "
                             f"to train's {variable.path} {tuple(variable.shape)}; use the same model and model_kwargs.")
        variable.assign(value)
    return model


def finalize_best_model(run_dir: str, config: TrainConfig | None = None) -> str:
    """Makes ``run_dir/best.keras`` the model as built, with its preprocessing recorded.

    A fast-trained checkpoint holds the training rewrites (fused BatchNorms, split upsampling
    convs); they are mapped back onto ``build_model(config.model, **config.model_kwargs)``
    (same numbers, checked on a random batch), so the file matches the architecture layer by
    layer. The training scale (``resize_mode``, ``image_size``) is written into the file, so
    ``predict_image``, ``skyseg evaluate`` and ``skyseg export`` run the model at that scale.
    Runs at the end of :func:`train`; call it on a run directory of an older version.

    Args:
        run_dir: The run directory.
        config: Its config; default: ``run_dir/config.json``.

    Returns:
        The path of ``best.keras``.

    Example:
        >>> finalize_best_model("/nonexistent")  # doctest: +SKIP
    """
    from skyseg_tf.models.optimize import FusedBatchNormalization, NearestUpsampleConv2D, restore_canonical
    from skyseg_tf.preprocessing import Preprocessing, write_to_keras_file

    if config is None:
        config = TrainConfig.from_file(os.path.join(run_dir, "config.json"))
    path = os.path.join(run_dir, BEST_MODEL)
    model = keras.saving.load_model(path, compile=False)
    rewritten = any(isinstance(layer, (FusedBatchNormalization, NearestUpsampleConv2D))
                    for layer in _all_layers(model))
    if rewritten:
        built = build_model(config.model, encoder_weights=None, **config.model_kwargs)
        if config.bn_momentum is not None:
            set_batch_norm_momentum(built, config.bn_momentum)
        restore_canonical(model, built).save(path)
    write_to_keras_file(path, Preprocessing(config.resize_mode, tuple(config.image_size), config.view))
    return path


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


@contextlib.contextmanager
def _keras_multi_worker_fixes(model, strategy, train_data):
    """Works around Keras 3's MultiWorkerMirroredStrategy bugs (keras-team/keras#20585).

    1. ``fit`` first builds the compiled metrics and optimizer symbolically from one batch,
       which it gets by ``strategy.reduce``-ing a distributed batch in eager mode; the collective
       strategy cannot, and ``fit`` fails before the first step. The build needs only shapes,
       so it is done here in the strategy's scope from one local batch, and Keras's own attempt
       is skipped for this model.
    2. Each step's logs are then reduced with ``strategy.reduce("MEAN", value, axis=0)``, which
       fails on the scalar metric results. Those results are read from metric variables that
       the strategy already aggregates over all workers, so the local value is the global one:
       while ``fit`` runs, Keras's multi-worker branch of that reduction is turned off.

    Nothing changes for other strategies.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        yield
        return
    from keras.src.backend.tensorflow import trainer as tf_trainer

    with strategy.scope():
        model._symbolic_build(data_batch=next(iter(train_data)))
    model._maybe_symbolic_build = lambda *args, **kwargs: None
    original = tf_trainer._collective_all_reduce_multi_worker
    tf_trainer._collective_all_reduce_multi_worker = lambda _strategy: False
    try:
        yield
    finally:
        tf_trainer._collective_all_reduce_multi_worker = original


def _fit_phases(model, config, strategy, run_dir, chief, train_data, validation_data, extra_callbacks, per_source=None):
    phases = _phases(config)
    for index, (name, encoder_trainable, first_epoch, end_epoch) in enumerate(phases):
        done_marker = os.path.join(run_dir, f".{name}.done")
        weights_path = os.path.join(run_dir, f"{name}.weights.h5")
        if os.path.exists(done_marker):
            if os.path.exists(weights_path):  # Kept only while a later phase may need to resume.
                model.load_weights(weights_path)
            continue
        from_logits = output_activation(model) is None  # activation=None in model_kwargs
        with strategy.scope():
            model.get_layer("encoder").trainable = encoder_trainable
            model.compile(
                optimizer=_make_optimizer(config),
                loss=get_loss(config.loss, from_logits=from_logits),
                metrics=default_metrics(from_logits=from_logits),
                jit_compile=config.jit_compile,
            )
        history = read_history(os.path.join(run_dir, HISTORY_CSV))
        pick = min if monitor_mode(config.monitor) == "min" else max
        best_so_far = pick(history[config.monitor]) if history.get(config.monitor) else None
        nan_guard = NaNGuard()
        validator = None if per_source is None else PerSourceValidation(per_source, from_logits=from_logits)
        try:
            with _keras_multi_worker_fixes(model, strategy, train_data):
                model.fit(
                    train_data,
                    validation_data=validation_data,
                    initial_epoch=first_epoch,
                    epochs=end_epoch,
                    steps_per_epoch=config.steps_per_epoch,
                    validation_steps=config.validation_steps,
                    callbacks=_callbacks(config, run_dir, chief, nan_guard, best_so_far, validator) + extra_callbacks,
                    verbose=config.verbose,
                    shuffle=False,  # The pipeline shuffles (seeded); Keras cannot shuffle a tf.data.Dataset.
                )
        except tf.errors.ResourceExhaustedError as error:
            raise TrainingError(
                f"Out of memory while training {config.model} at image_size={list(config.image_size)} with "
                f"global_batch_size={config.global_batch_size}. Lower global_batch_size or image_size, or "
                f"enable mixed_precision on a GPU. The last good checkpoint is kept in "
                f"{os.path.join(run_dir, 'backup')}; rerun with the same run_dir to resume. ({error.message.splitlines()[0]})"
            ) from error
        if nan_guard.tripped_at is not None:
            epoch, batch = nan_guard.tripped_at
            raise TrainingError(
                f"The loss became NaN or infinite at epoch {epoch + 1}, batch {batch + 1}; training stopped. "
                f"The last good state is kept in {os.path.join(run_dir, 'backup')} (resume with the same run_dir) "
                f"and the best model so far in {os.path.join(run_dir, BEST_MODEL)}. Try a lower learning_rate "
                f"(now {config.learning_rate}) or mixed_precision=false."
            )
        if model.stop_training and end_epoch < config.epochs:
            break  # Early stopping ended the run inside the first phase.
        last_phase = index == len(phases) - 1
        if not last_phase:
            model.save_weights(weights_path)  # The next phase starts from these if it is resumed.
        with open(done_marker, "w", encoding="utf-8") as handle:
            handle.write("done\n")
        if last_phase:
            for earlier, *_ in phases[:-1]:
                stale = os.path.join(run_dir, f"{earlier}.weights.h5")
                if os.path.exists(stale):
                    os.remove(stale)

