"""The ``skyseg`` command line: parses arguments and calls the library, nothing else.

User mistakes (bad arguments, missing files, invalid config values) print one clear line and
exit with status 2; failures of the work itself exit with status 1.
"""

from __future__ import annotations

import functools
import json
import os
import sys

import click

USER_ERRORS = (ValueError, TypeError, FileNotFoundError, NotADirectoryError, KeyError)


def _friendly_errors(function):
    """Turns user mistakes into one line on stderr and a non-zero exit, not a traceback."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        from skyseg_tf.training import TrainingError

        try:
            return function(*args, **kwargs)
        except USER_ERRORS as error:
            raise click.UsageError(str(error)) from None
        except (TrainingError, OSError) as error:
            raise click.ClickException(str(error)) from None

    return wrapper


def _parse_size(value: str | None):
    if value is None:
        return None
    parts = value.lower().replace(",", "x").split("x")
    try:
        numbers = tuple(int(p) for p in parts)
    except ValueError:
        raise click.BadParameter(f"expected HEIGHTxWIDTH or one int, e.g. 256x256; received {value!r}") from None
    return numbers * 2 if len(numbers) == 1 else numbers


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="skyseg-tf")
def main():
    """skyseg: sky segmentation with TensorFlow/Keras (U-Net, DeepLabV3 on ResNet50).

    Start with `skyseg demo` (trains, evaluates, predicts and exports on built-in synthetic
    scenes), then `skyseg train --help`.
    """


# ----------------------------------------------------------------------------- models
@main.command("models")
@click.option("--params/--no-params", default=False, help="Build each model to count its parameters (slow).")
@_friendly_errors
def models_command(params):
    """List the model zoo's registry names."""
    import skyseg_tf

    for name in skyseg_tf.list_models():
        if params:
            model = skyseg_tf.build_model(name, encoder_weights=None)
            click.echo(f"{name:36s} {model.count_params():>12,d} parameters")
        else:
            click.echo(name)


# ----------------------------------------------------------------------------- train
@main.command("train")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="JSON or YAML config file.")
@click.option("--model", help="Registry name, e.g. unet_resnet50 (see `skyseg models`).")
@click.option("--encoder-weights", help="'imagenet', 'none', or a weights file.")
@click.option("--data", help="'synthetic', 'ade20k_outdoors_sky[/kaggle|/scene_parse]' or 'folder'.")
@click.option("--images", type=click.Path(exists=True, file_okay=False), help="Image folder (with --data folder).")
@click.option("--masks", type=click.Path(exists=True, file_okay=False), help="Mask folder (with --data folder).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="TFDS data_dir for ade20k_outdoors_sky.")
@click.option("--num-examples", type=int, help="Number of synthetic scenes (with --data synthetic).")
@click.option("--image-size", help="HEIGHTxWIDTH the pipeline resizes to, e.g. 256x256.")
@click.option("--batch-size", "global_batch_size", type=int, help="Global batch size over all replicas.")
@click.option("--epochs", type=int)
@click.option("--steps-per-epoch", type=int)
@click.option("--loss", type=click.Choice(["dice", "bce", "bce_dice", "focal"]))
@click.option("--optimizer", type=click.Choice(["adam", "adamw", "sgd"]))
@click.option("--learning-rate", type=float)
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine", "plateau"]))
@click.option("--freeze-encoder-epochs", type=int)
@click.option("--early-stopping-patience", type=int)
@click.option("--mixed-precision/--no-mixed-precision", default=None)
@click.option("--xla/--no-xla", "jit_compile", default=None, help="Compile the train step with XLA.")
@click.option("--strategy", type=click.Choice(["auto", "one_device", "mirrored", "multi_worker_mirrored"]))
@click.option("--augment", type=click.Choice(["tf", "albumentations", "none"]))
@click.option("--run-dir", type=click.Path(file_okay=False), help="Output folder (resumes if it holds a backup).")
@click.option("--seed", type=int)
@click.option("--verbose", type=click.IntRange(0, 2), help="1: progress bars (default), 2: a line per epoch.")
@_friendly_errors
def train_command(config_path, images, masks, data_dir, num_examples, image_size, encoder_weights, **flags):
    """Train a model with model.fit under a tf.distribute strategy.

    Flags override the config file. A run killed part-way resumes when started again with
    the same --run-dir.
    """
    from skyseg_tf.training import TrainConfig, train

    base = TrainConfig.from_file(config_path).to_dict() if config_path else TrainConfig().to_dict()
    changes = {key: value for key, value in flags.items() if value is not None}
    if image_size:
        changes["image_size"] = list(_parse_size(image_size))
    if encoder_weights is not None:
        changes["encoder_weights"] = None if encoder_weights.lower() == "none" else encoder_weights
    data_kwargs = dict(base.get("data_kwargs") or {})
    for key, value in (("images", images), ("masks", masks), ("data_dir", data_dir), ("num_examples", num_examples)):
        if value is not None:
            data_kwargs[key] = value
    changes["data_kwargs"] = data_kwargs
    config = TrainConfig.from_dict({**base, **changes})
    result = train(config)
    click.echo(f"Best validation IoU {result.best_val_iou:.4f} after {result.epochs_completed} epochs.")
    click.echo(f"Best model: {result.best_model_path}")
    click.echo(f"Curves: {os.path.join(result.run_dir, 'training_curves.png')}")


# ----------------------------------------------------------------------------- data
@main.group("data")
def data_group():
    """Look at and generate data."""


def _source_from_options(source, images, masks, data_dir, num_examples, render_size):
    if source == "folder":
        if not (images and masks):
            raise ValueError("The folder source needs --images DIR and --masks DIR.")
        return {"type": "folder", "images": images, "masks": masks}
    if source == "synthetic":
        spec = {"type": "synthetic", "num_examples": num_examples or 100}
        if render_size:
            spec["image_size"] = render_size
        return spec
    spec = {"type": "tfds", "name": source}
    if data_dir:
        spec["data_dir"] = data_dir
    return spec


_SOURCE_OPTIONS = [
    click.argument("source"),
    click.option("--split", default="train", show_default=True),
    click.option("--images", type=click.Path(exists=True, file_okay=False), help="Image folder (SOURCE=folder)."),
    click.option("--masks", type=click.Path(exists=True, file_okay=False), help="Mask folder (SOURCE=folder)."),
    click.option("--data-dir", type=click.Path(file_okay=False), help="TFDS data_dir."),
    click.option("--num-examples", type=int, help="Synthetic scenes to draw from (SOURCE=synthetic)."),
    click.option("--render-size", help="HEIGHTxWIDTH of synthetic scenes."),
]


def _with_source_options(function):
    for option in reversed(_SOURCE_OPTIONS):
        function = option(function)
    return function


@data_group.command("preview")
@_with_source_options
@click.option("--out", default="preview.png", show_default=True, type=click.Path(dir_okay=False))
@click.option("--num", default=16, show_default=True, type=int)
@click.option("--columns", default=4, show_default=True, type=int)
@_friendly_errors
def data_preview(source, split, images, masks, data_dir, num_examples, render_size, out, num, columns):
    """Write a contact sheet (PNG grid of images with their sky masks) of SOURCE.

    SOURCE is synthetic, folder (with --images/--masks) or ade20k_outdoors_sky[/CONFIG].
    """
    from skyseg_tf.data import contact_sheet, load_source

    spec = _source_from_options(source, images, masks, data_dir, num_examples, _parse_size(render_size))
    path = contact_sheet(load_source(spec, split).take(num), out, num=num, columns=columns, title=f"{source} ({split})")
    click.echo(f"Wrote {path}")


@data_group.command("synthetic")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for images/ and masks/.")
@click.option("--num-examples", default=100, show_default=True, type=int)
@click.option("--image-size", default="256x256", show_default=True)
@click.option("--seed", default=0, show_default=True, type=int)
@_friendly_errors
def data_synthetic(out, num_examples, image_size, seed):
    """Write synthetic sky scenes as PNG images and 0/255 masks (for `--data folder`)."""
    from skyseg_tf.data.synthetic import write_synthetic_folder

    write_synthetic_folder(out, num_examples=num_examples, image_size=_parse_size(image_size), seed=seed)
    click.echo(f"Wrote {num_examples} scenes to {os.path.join(out, 'images')} and {os.path.join(out, 'masks')}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
