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

from skyseg_tf.data.negatives import WINDOW_POLICIES
from skyseg_tf.hemisphere.lens import PROJECTIONS
from skyseg_tf.hemisphere.measure import LENSES
from skyseg_tf.inference.predict import MODES as PREDICT_MODES
from skyseg_tf.inference.refine import REFINE_METHODS
from skyseg_tf.presets import DEFAULT_PRESET
from skyseg_tf.training.config import (
    AUGMENT_STRENGTHS,
    AUGMENTATIONS,
    LOSSES,
    LR_SCHEDULES,
    OPTIMIZERS,
    RESIZE_MODES,
    STRATEGIES,
)

USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError, KeyError)
"""Exception types that mean a user mistake, when this library raised them on purpose."""

_PACKAGE_DIRS = tuple(
    os.path.dirname(os.path.abspath(module_file)) + os.sep
    for module_file in (__file__, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                               "tfds_ade20k_outdoors", "__init__.py"))
)


def is_user_error(error: BaseException) -> bool:
    """Whether an exception is this library's message about bad input, not a bug.

    It is when it has one of the :data:`USER_ERRORS` types and was raised by a ``raise``
    statement in this library's own code (skyseg_tf, tfds_ade20k_outdoors), or is an OS error
    about a file the user named. A ``TypeError`` or ``KeyError`` from Keras, TensorFlow or a
    bug here (a wrong call, a missing key) is not, and keeps its traceback.

    Example:
        >>> is_user_error(KeyError("x"))  # never raised, so not raised by this library
        False
    """
    import linecache

    if not isinstance(error, USER_ERRORS):
        return False
    if isinstance(error, (FileNotFoundError, FileExistsError, NotADirectoryError)) and error.filename:
        return True  # the OS named a file the user gave
    frame = error.__traceback__
    if frame is None:
        return False
    while frame.tb_next is not None:
        frame = frame.tb_next
    filename = os.path.abspath(frame.tb_frame.f_code.co_filename)
    if not filename.startswith(_PACKAGE_DIRS):
        return False
    return linecache.getline(filename, frame.tb_lineno).strip().startswith("raise")


def _friendly_errors(function):
    """Turns user mistakes into one line on stderr and a non-zero exit, not a traceback."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        from skyseg_tf.training import TrainingError

        try:
            return function(*args, **kwargs)
        except USER_ERRORS as error:
            if not is_user_error(error):
                raise  # a bug (here or in a dependency): keep the traceback
            raise click.UsageError(str(error)) from None
        except TrainingError as error:
            raise click.ClickException(str(error)) from None
        except OSError as error:
            if not error.filename:
                raise
            raise click.ClickException(str(error)) from None  # e.g. an output folder we may not write

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
    """List the model zoo's registry names and the pretrained presets."""
    import skyseg_tf
    from skyseg_tf.presets import DEFAULT_PRESET, preset_info

    for name in skyseg_tf.list_models():
        if params:
            model = skyseg_tf.build_model(name, encoder_weights=None)
            click.echo(f"{name:36s} {model.count_params():>12,d} parameters")
        else:
            click.echo(name)
    click.echo("")
    click.echo("Pretrained (skyseg_tf.from_preset(NAME); `skyseg predict` uses the default):")
    for name in skyseg_tf.list_presets():
        info = preset_info(name)
        default = " (default)" if name == DEFAULT_PRESET else ""
        click.echo(f"  {name}{default}: {info.get('description', info['model'])}")


# ----------------------------------------------------------------------------- train
@main.command("train")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False), help="JSON or YAML config file.")
@click.option("--model", help="Registry name, e.g. unet_resnet50 (see `skyseg models`).")
@click.option("--encoder-weights", help="'imagenet', 'none', or a weights file.")
@click.option("--initial-weights", help="Start from a trained model of the same architecture: a .keras file or a preset.")
@click.option("--data", help="'synthetic', 'ade20k_outdoors_sky[/kaggle|/scene_parse|/kaggle_void|/scene_parse_void]' "
                             "or 'folder'.")
@click.option("--images", type=click.Path(exists=True, file_okay=False), help="Image folder (with --data folder).")
@click.option("--masks", type=click.Path(exists=True, file_okay=False), help="Mask folder (with --data folder).")
@click.option("--sky-value", "sky_values", type=int, multiple=True,
              help="Label that means sky in label-map masks (repeat for several), e.g. 3 for ADE20K.")
@click.option("--sky-color", "sky_colors", multiple=True,
              help="R,G,B colour of sky in colour-coded label maps (repeat for several), e.g. 0,128,128.")
@click.option("--void-masks", type=click.Path(exists=True, file_okay=False),
              help="Folder of void masks (one per photo, same name; non-zero = unlabelled, in no loss or metric).")
@click.option("--monitor", help="Validation figure that picks the best epoch: val_iou (default), or val_score and "
                                "per-source figures when a mix validates on several sources.")
@click.option("--file-list", type=click.Path(exists=True, dir_okay=False),
              help="Train on the images named in this file (one per line, e.g. the dataset's train.txt).")
@click.option("--val-images", type=click.Path(exists=True, file_okay=False), help="A separate validation image folder.")
@click.option("--val-masks", type=click.Path(exists=True, file_okay=False), help="The masks of --val-images.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="TFDS data_dir for ade20k_outdoors_sky.")
@click.option("--num-examples", type=int, help="Number of synthetic scenes (with --data synthetic).")
@click.option("--image-size", help="HEIGHTxWIDTH the pipeline resizes (or crops) to, e.g. 256x256.")
@click.option("--resize-mode", type=click.Choice(RESIZE_MODES),
              help="resize: whole image; crop: full-resolution crops; short_side: shorter side to "
                   "min(image size), aspect kept, scale jitter and crops (for real photos).")
@click.option("--augment-strength", type=click.Choice(AUGMENT_STRENGTHS),
              help="Augmentation preset; photo: exposure, tone curve, haze, vignetting, blur, noise, JPEG.")
@click.option("--batch-size", "global_batch_size", type=int, help="Global batch size over all replicas.")
@click.option("--epochs", type=int)
@click.option("--steps-per-epoch", type=int)
@click.option("--loss", type=click.Choice(LOSSES))
@click.option("--optimizer", type=click.Choice(OPTIMIZERS))
@click.option("--learning-rate", type=float)
@click.option("--lr-schedule", type=click.Choice(LR_SCHEDULES))
@click.option("--freeze-encoder-epochs", type=int)
@click.option("--early-stopping-patience", type=int)
@click.option("--mixed-precision/--no-mixed-precision", default=None)
@click.option("--xla/--no-xla", "jit_compile", default=None, help="Compile the train step with XLA.")
@click.option("--fast-training/--no-fast-training", default=None,
              help="Train with fused BatchNorms and sub-pixel upsampling convs (same maths, faster; default on).")
@click.option("--strategy", type=click.Choice(STRATEGIES))
@click.option("--augment", type=click.Choice(AUGMENTATIONS))
@click.option("--run-dir", type=click.Path(file_okay=False), help="Output folder (resumes if it holds a backup).")
@click.option("--seed", type=int)
@click.option("--verbose", type=click.IntRange(0, 2), help="1: progress bars (default), 2: a line per epoch.")
@_friendly_errors
def train_command(config_path, images, masks, sky_values, sky_colors, void_masks, file_list, data_dir, num_examples,
                  image_size, encoder_weights, **flags):
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
    for key, value in (("images", images), ("masks", masks), ("data_dir", data_dir), ("num_examples", num_examples),
                       ("file_list", file_list), ("void", void_masks), *_label_options(sky_values, sky_colors).items()):
        if value is not None:
            data_kwargs[key] = value
    changes["data_kwargs"] = data_kwargs
    config = TrainConfig.from_dict({**base, **changes})
    result = train(config)
    if result.monitor == "val_iou":
        click.echo(f"Best validation IoU {result.best_val_iou:.4f} after {result.epochs_completed} epochs.")
    else:
        click.echo(f"Best epoch {result.best_epoch} of {result.epochs_completed}: {result.monitor} "
                   f"{result.best_value:.4f}, validation IoU {result.best_val_iou:.4f}.")
    click.echo(f"Best model: {result.best_model_path}")
    click.echo(f"Curves: {os.path.join(result.run_dir, 'training_curves.png')}")


# ----------------------------------------------------------------------------- data
@main.group("data")
def data_group():
    """Look at and generate data."""


def _label_options(sky_values, sky_colors) -> dict:
    """``{"sky_value": ..., "sky_color": ...}`` from repeated --sky-value / --sky-color options."""
    from skyseg_tf.data.folder import check_sky_color

    options = {}
    if sky_values:
        options["sky_value"] = list(sky_values) if len(sky_values) > 1 else sky_values[0]
    if sky_colors:
        colours = [check_sky_color(text)[0].tolist() for text in sky_colors]
        options["sky_color"] = colours if len(colours) > 1 else colours[0]
    return options


def _source_from_options(source, images, masks, data_dir, num_examples, render_size, sky_values=(), sky_colors=(),
                         void_masks=None, split_group=None, window_policy=None):
    from skyseg_tf.data.sources import source_spec

    if source in ("folder", "negatives") and not images:
        raise ValueError(f"The {source} source needs --images DIR" + (" (and --masks DIR, or none for photos "
                                                                      "without sky)." if source == "folder" else "."))
    if source == "folder" and not masks:
        source = "negatives"  # A folder of photos without masks: photos without sky.
    if source != "folder" and (sky_values or sky_colors or void_masks):
        raise ValueError("--sky-value, --sky-color and --void-masks describe folder masks; use them with "
                         "SOURCE=folder and --masks DIR.")
    if source not in ("folder", "negatives") and (split_group or window_policy):
        raise ValueError("--split-group and --window-policy describe a folder of photos; use them with "
                         "SOURCE=folder or SOURCE=negatives.")
    folder_options = {key: value for key, value in (("split_group", split_group), ("void", void_masks))
                      if value is not None}
    if source == "negatives":
        if masks:
            raise ValueError("SOURCE=negatives is a folder of photos without sky and takes no --masks; use "
                             "SOURCE=folder for photos with masks.")
        if window_policy:
            folder_options["window_policy"] = window_policy
        return source_spec("negatives", images=images, **folder_options)
    if source == "folder":
        return source_spec("folder", images=images, masks=masks, **_label_options(sky_values, sky_colors),
                           **folder_options)
    if source == "synthetic":
        return source_spec("synthetic", num_examples=num_examples or 100, **({"render_size": render_size} if render_size else {}))
    return source_spec(source, **({"data_dir": data_dir} if data_dir else {}))


_SOURCE_OPTIONS = [
    click.argument("source"),
    click.option("--images", type=click.Path(exists=True, file_okay=False),
                 help="Image folder (SOURCE=folder or negatives)."),
    click.option("--masks", type=click.Path(exists=True, file_okay=False),
                 help="Mask folder (SOURCE=folder); without it the photos are scored as photos without sky."),
    click.option("--sky-value", "sky_values", type=int, multiple=True,
                 help="Label that means sky in label-map masks (repeat for several)."),
    click.option("--sky-color", "sky_colors", multiple=True,
                 help="R,G,B colour of sky in colour-coded label maps, e.g. 0,128,128 (repeatable)."),
    click.option("--void-masks", type=click.Path(exists=True, file_okay=False),
                 help="Folder of void masks, one per photo (same name): non-zero pixels are unlabelled "
                      "and count in no metric (SOURCE=folder)."),
    click.option("--split-group", help="Regular expression whose first group names a photo's group; a group "
                                       "shares a split, e.g. '^([^_]+)_' for <house>_<room>.jpg."),
    click.option("--window-policy", type=click.Choice(WINDOW_POLICIES),
                 help="Photos without sky: ignore_blue (default) leaves blue-sky-coloured pixels (windows) "
                      "out; none counts every pixel as not sky."),
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
@click.option("--split", default="train", show_default=True, help="train, validation or test.")
@click.option("--out", default="preview.png", show_default=True, type=click.Path(dir_okay=False))
@click.option("--num", default=16, show_default=True, type=int)
@click.option("--columns", default=4, show_default=True, type=int)
@_friendly_errors
def data_preview(source, split, images, masks, sky_values, sky_colors, void_masks, split_group, window_policy,
                 data_dir, num_examples, render_size, out, num, columns):
    """Write a contact sheet (PNG grid of images with their sky masks) of SOURCE.

    SOURCE is synthetic, folder (with --images/--masks), negatives (--images: photos without
    sky) or ade20k_outdoors_sky[/CONFIG].
    """
    from skyseg_tf.data import contact_sheet, load_source

    spec = _source_from_options(source, images, masks, data_dir, num_examples, _parse_size(render_size),
                                sky_values, sky_colors, void_masks, split_group, window_policy)
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

# ----------------------------------------------------------------------------- evaluate
@main.command("evaluate")
@click.argument("models", nargs=-1, required=True)
@_with_source_options
@click.option("--split", default="test", show_default=True,
              help="train, validation or test; all: every photo of a folder (your own test set).")
@click.option("--image-size", help="Score at this model input size HEIGHTxWIDTH. Default: each image predicted as "
                                   "`skyseg predict` does (at the scale the model was trained at) and scored at its "
                                   "own resolution.")
@click.option("--batch-size", default=8, show_default=True, type=int)
@click.option("--original-resolution/--input-resolution", default=False, show_default=True,
              help="Also score at each image's own resolution (predictions resized back).")
@click.option("--max-examples", type=int, help="Evaluate at most this many images.")
@click.option("--num-figures", default=8, show_default=True, type=int, help="Images in the sample and worst-IoU grids.")
@click.option("--threshold", default=0.5, show_default=True, type=float)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write metrics.md, metrics.json and figures here.")
@_friendly_errors
def evaluate_command(models, source, split, images, masks, sky_values, sky_colors, void_masks, split_group,
                     window_policy, data_dir, num_examples, render_size, image_size, batch_size, original_resolution,
                     max_examples, num_figures, threshold, out_dir):
    """Score saved models (.keras, SavedModel or a preset name) on SOURCE, side by side.

    SOURCE is synthetic, folder (with --images/--masks, optionally --void-masks), negatives or
    folder without --masks (photos without sky: only false sky is scored), or
    ade20k_outdoors_sky[/CONFIG]. Prints the study's Table 1 (IoU, ROC AUC) with Dice, pixel
    accuracy, precision, recall, boundary F-score and images/s, then the false-sky figures: the
    share of non-sky pixels called sky and of photos with more than 1% and 5% of it.
    """
    from skyseg_tf.evaluation import evaluate_models

    spec = _source_from_options(source, images, masks, data_dir, num_examples, _parse_size(render_size),
                                sky_values, sky_colors, void_masks, split_group, window_policy)
    if spec["type"] == "negatives" and source == "folder":
        click.echo(f"No --masks: scoring the photos of {images} as photos without sky (false sky only).", err=True)
    report = evaluate_models(
        list(models), spec, split=split, image_size=_parse_size(image_size),
        batch_size=batch_size, original_resolution=original_resolution, max_examples=max_examples,
        out_dir=out_dir, num_figure_examples=num_figures, threshold=threshold,
    )
    click.echo(report.markdown)
    if out_dir:
        click.echo(f"Wrote the report to {out_dir}")


def _load_model_or_preset(model: str | None):
    """A model from a path, a preset name, or (None) the default pretrained preset."""
    from skyseg_tf.presets import DEFAULT_PRESET, from_preset, list_presets

    if model is None:
        return from_preset(DEFAULT_PRESET)
    if not os.path.exists(model) and model in list_presets():
        return from_preset(model)
    if not os.path.exists(model):
        raise FileNotFoundError(f"--model: {model!r} is neither a file or folder nor a preset "
                                f"({', '.join(list_presets())}). Pass a .keras file, a SavedModel folder or a preset name.")
    from skyseg_tf.inference import load_model

    return load_model(model)


# ----------------------------------------------------------------------------- predict
@main.command("predict")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--model", "model_path", help=".keras file, SavedModel folder or preset name (default: the pretrained "
                                           f"{DEFAULT_PRESET}; `skyseg models` lists the presets).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False))
@click.option("--save", default="mask,probability,overlay", show_default=True,
              help="Comma list of mask, probability, overlay, alpha (soft matte PNG), rgba (photo with the sky "
                   "transparent).")
@click.option("--input-size", help="Model input size HEIGHTxWIDTH for resize mode (default: automatic).")
@click.option("--mode", type=click.Choice(PREDICT_MODES), default="auto", show_default=True)
@click.option("--tile-size", default=512, show_default=True, type=int)
@click.option("--overlap", default=64, show_default=True, type=int)
@click.option("--refine", type=click.Choice([m or "none" for m in REFINE_METHODS]), default="none", show_default=True,
              help="Make the sky edge follow the full-resolution image (guided filter).")
@click.option("--threshold", default=0.5, show_default=True, type=float)
@click.option("--recursive/--no-recursive", default=False)
@click.option("--optimize/--no-optimize", default=True, show_default=True,
              help="Run the inference rewrite of a .keras model (BatchNorms folded, sub-pixel upsampling convs): "
                   "same outputs, faster.")
@click.option("--overwrite/--no-overwrite", default=False, show_default=True,
              help="Predict photos whose outputs exist again (default: skip them, so a rerun resumes).")
@click.option("--workers", default=2, show_default=True, type=int,
              help="Threads decoding photos ahead of the model and writing outputs behind it (0: one at a time).")
@click.option("--draft/--no-draft", default=False, show_default=True,
              help="Decode JPEGs at reduced scale when only masks/probabilities are saved without refinement: "
                   "faster; masks may differ where the probability is near the threshold.")
@click.option("--has-sky-fraction", default=None, type=float,
              help="Sky fraction from which a record says has_sky (default: the calibrated value).")
@click.option("--smoothing", default=None, type=float,
              help="Videos: weight of the motion-compensated past in each frame's sky probability, in [0, 1); "
                   "0 turns temporal smoothing off (default: 0.8, see docs/video.md).")
@click.option("--motion", type=click.Choice(["flow", "static"]), default="flow", show_default=True,
              help="Videos: follow the camera with optical flow, or assume a fixed camera (cheaper).")
@click.option("--lookahead", default=None, type=int,
              help="Videos: later frames each frame's smoothing may use (default: 8); 0 smooths over past "
                   "frames only.")
@click.option("--lens", type=click.Choice(LENSES), default="photo", show_default=True,
              help="fisheye: upward hemispherical photos (the model runs on each photo's image circle; default "
                   "model the preset sky_unet_efficientnet_lite0_fisheye); panorama: equirectangular 360-degree "
                   "panoramas (2:1). Both also write PHOTO_polar.png and add the sky view factor, canopy "
                   "openness and gap fractions to each record (docs/hemisphere.md).")
@click.option("--projection", type=click.Choice(PROJECTIONS),
              default="equidistant", show_default=True, help="The fisheye lens's projection (--lens fisheye), or "
                                                             "the one a panorama's sky is drawn with.")
@click.option("--fov", default=180.0, show_default=True, type=float,
              help="The fisheye lens's field of view in degrees, across the image circle.")
@click.option("--circle", "circle_text", default=None,
              help="The image circle of every photo as CX,CY,RADIUS in pixels (--lens fisheye; default: found "
                   "in each photo).")
@click.option("--runner", type=click.Choice(["local", "beam"]), default="local", show_default=True,
              help="local: this process; beam: an Apache Beam pipeline (docs/beam.md; needs skyseg-tf[beam]). "
                   "With beam, --overwrite replaces an earlier run's results (default: refuse).")
@click.option("--beam-options", default=None,
              help='Beam pipeline flags with --runner beam, e.g. "--direct_running_mode=multi_processing '
                   '--direct_num_workers=2" or "--runner=DataflowRunner --project=P ...".')
@_friendly_errors
def predict_command(inputs, model_path, out_dir, save, input_size, mode, tile_size, overlap, refine, threshold,
                    recursive, optimize, overwrite, workers, draft, has_sky_fraction, smoothing, motion, lookahead,
                    lens, projection, fov, circle_text, runner, beam_options):
    """Write sky masks, probability maps, overlays and mattes at each image's own resolution.

    INPUTS are image files, folders, quoted glob patterns ("shots/*.jpg") or video files
    (clip.mp4: a mask video and an overlay video, with temporal smoothing). One record per photo
    (sky fraction, has_sky, mean confidence, skyline profile) is appended to predictions.jsonl and
    predictions.csv in --out. Photos and videos whose outputs exist are skipped unless --overwrite.
    Unreadable files are reported and skipped; the command exits with status 1 if any failed.

    With --lens fisheye (upward hemispherical photos) or --lens panorama (360-degree
    panoramas), each photo also gets a polar plot of its sky and its record the sky view factor,
    canopy openness, gap fraction per zenith ring and sky fraction per azimuth sector.
    """
    hemisphere = _hemisphere_options(lens, projection, fov, circle_text)
    if runner == "beam":
        try:
            from skyseg_tf.beam import predict_pipeline
        except ImportError as error:
            raise click.ClickException(str(error)) from None
        summary = predict_pipeline(
            list(inputs), out_dir, model=model_path, save=tuple(s.strip() for s in save.split(",") if s.strip()),
            threshold=threshold, refine=None if refine == "none" else refine, beam_options=beam_options,
            overwrite=overwrite, input_size=_parse_size(input_size), mode=mode, tile_size=tile_size,
            overlap=overlap, recursive=recursive, optimize=optimize,
            **({} if has_sky_fraction is None else {"has_sky_fraction": has_sky_fraction}), **hemisphere,
        )
        click.echo(str(summary))
        if not summary.ok:
            sys.exit(1)
        return
    from skyseg_tf.inference import predict_paths
    from skyseg_tf.models.optimize import optimize_if_possible
    from skyseg_tf.preprocessing import attach, get

    from skyseg_tf.video import VIDEO_EXTENSIONS

    kinds = tuple(s.strip() for s in save.split(",") if s.strip())
    from skyseg_tf.inference.files import collect_inputs

    def is_video(path) -> bool:
        return os.path.splitext(str(path))[1].lower() in VIDEO_EXTENSIONS

    videos = [path for path in inputs if is_video(path)]
    photos = [path for path in inputs if not is_video(path)]
    # Videos inside input folders are predicted too (their outputs go straight into --out).
    images, skipped = collect_inputs(photos, recursive) if photos else ([], [])
    videos += [str(path) for path in skipped if is_video(path)]
    if hemisphere and videos:
        raise click.UsageError(f"--lens {lens}: videos ({', '.join(map(str, videos))}) are ordinary footage; "
                               "predict them without --lens.")
    stems = [os.path.splitext(os.path.basename(video))[0] for video in videos]
    same = sorted({video for video, stem in zip(videos, stems) if stems.count(stem) > 1})
    if same:
        raise ValueError(f"inputs: videos with the same name would write the same outputs in {out_dir}: "
                         f"{', '.join(same)}. Predict them into different --out folders.")
    options = dict(input_size=_parse_size(input_size), mode=mode, tile_size=tile_size, overlap=overlap,
                   refine=None if refine == "none" else refine)
    if model_path is None and lens == "fisheye":
        from skyseg_tf.presets import FISHEYE_PRESET

        model_path = FISHEYE_PRESET
    model = _load_model_or_preset(model_path)
    if optimize:
        optimized, _ = optimize_if_possible(model)
        model = attach(optimized, get(model))
    ok = True
    if images or not videos:  # with neither, predict_paths says what it looked for
        summary = predict_paths(
            model, photos if len(photos) > 1 else photos[0], out_dir, save=kinds, threshold=threshold,
            recursive=recursive, overwrite=overwrite, workers=workers, draft=draft,
            **({} if has_sky_fraction is None else {"has_sky_fraction": has_sky_fraction}), **options,
            **hemisphere,
        )
        click.echo(str(summary))
        ok = summary.ok
    for video in videos:
        ok = _predict_video(model, video, out_dir, kinds, threshold, smoothing, motion, lookahead, overwrite,
                            options) and ok
    if not ok:
        sys.exit(1)


def _hemisphere_options(lens, projection, fov, circle_text) -> dict:
    """predict_paths' lens, fisheye_lens and circle from the command line (nothing for photos)."""
    if lens == "photo":
        if circle_text is not None:
            raise click.UsageError("--circle: the image circle belongs to --lens fisheye.")
        return {}
    from skyseg_tf.hemisphere import FisheyeLens

    options = {"lens": lens, "fisheye_lens": FisheyeLens(projection, fov)}
    if circle_text is not None:
        try:
            cx, cy, radius = (float(part) for part in circle_text.split(","))
        except ValueError:
            raise click.BadParameter(f"received {circle_text!r}; pass CX,CY,RADIUS in pixels, e.g. 1000,750,740.",
                                     param_hint="--circle") from None
        options["circle"] = (cx, cy, radius)
    return options


def _predict_video(model, video, out_dir, kinds, threshold, smoothing, motion, lookahead, overwrite, options) -> bool:
    """``skyseg predict clip.mp4``: one video, its outputs kept unless --overwrite; False on failure."""
    import pathlib

    from skyseg_tf.video import DEFAULT_LOOKAHEAD, DEFAULT_SMOOTHING, VIDEO_OUTPUT_SUFFIXES, VideoError, predict_video

    save = tuple(f"{kind}_video" for kind in kinds if f"{kind}_video" in VIDEO_OUTPUT_SUFFIXES)
    if not save:
        raise ValueError(f"--save {','.join(kinds)}: a video gets mask and/or overlay videos; pass --save mask,overlay.")
    stem = pathlib.Path(video).stem
    existing = [pathlib.Path(out_dir) / f"{stem}{VIDEO_OUTPUT_SUFFIXES[kind]}" for kind in save]
    if not overwrite and all(path.exists() for path in existing):
        click.echo(f"{video}: its outputs already exist in {out_dir}; left as they are (pass --overwrite to "
                   "predict it again).")
        return True
    try:
        summary = predict_video(model, video, out_dir, save=save, threshold=threshold, motion=motion,
                                smoothing=DEFAULT_SMOOTHING if smoothing is None else smoothing,
                                lookahead=DEFAULT_LOOKAHEAD if lookahead is None else lookahead, **options)
    except (VideoError, ImportError, OSError) as error:
        click.echo(f"FAILED {video}: {error}", err=True)
        return False
    click.echo(str(summary))
    return True


# ----------------------------------------------------------------------------- export
@main.command("export")
@click.option("--model", "model_path", help=f"A .keras model or a preset name (default: the pretrained {DEFAULT_PRESET}).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="TF Serving base folder.")
@click.option("--version", default=1, show_default=True, type=int, help="Version subfolder written under --out.")
@click.option("--image-size", help="Working size HEIGHTxWIDTH of the bytes signature (default: the model's).")
@click.option("--tflite/--no-tflite", default=False, help="Also write float32 and float16 TFLite files.")
@click.option("--onnx/--no-onnx", default=False,
              help='Also write OUT/model.onnx (any batch and size divisible by the stride), checked in onnxruntime; '
                   'needs pip install "skyseg-tf[onnx]".')
@click.option("--overwrite/--no-overwrite", default=False)
@click.option("--optimize/--no-optimize", default=True, show_default=True,
              help="Export the inference rewrite (BatchNorms folded, sub-pixel upsampling convs): same outputs, faster.")
@_friendly_errors
def export_command(model_path, out_dir, version, image_size, tflite, onnx, overwrite, optimize):
    """Export a SavedModel (TF Serving layout, OUT/VERSION/), optionally TFLite and ONNX."""
    from skyseg_tf import export
    from skyseg_tf.export import check_tflite, export_saved_model, export_tflite

    onnx_errors = (export.OnnxNotInstalledError, export.OnnxExportError)
    if onnx:
        try:
            export.require_onnx()  # before the SavedModel, so a missing package fails fast
        except onnx_errors as error:
            raise click.ClickException(str(error)) from None
    model = _load_model_or_preset(model_path)
    size = _parse_size(image_size)
    path = export_saved_model(model, out_dir, version=version, image_size=size, overwrite=overwrite,
                              optimize=optimize)
    click.echo(f"SavedModel: {path} (signatures serving_default, serving_bytes)")
    click.echo(f"Serve it: docker run -p 8501:8501 -v \"{os.path.abspath(out_dir)}:/models/skyseg\" -e MODEL_NAME=skyseg tensorflow/serving")
    if tflite:
        for quantization in (None, "float16"):
            name = "model_float16.tflite" if quantization else "model.tflite"
            tflite_path = export_tflite(model, os.path.join(out_dir, name), image_size=size, quantization=quantization)
            check = check_tflite(model, tflite_path)
            click.echo(f"TFLite: {tflite_path} (max |TFLite - Keras| = {check['max_abs_diff']:.2e})")
    if onnx:
        try:
            onnx_path = export.export_onnx(model, os.path.join(out_dir, export.ONNX_FILE))
        except onnx_errors as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"ONNX: {onnx_path} (input images [batch, height, width, 3]; matches Keras in onnxruntime "
                   f"to {export.ONNX_TOLERANCE:g})")


# ----------------------------------------------------------------------------- demo
@main.command("demo")
@click.option("--out", "out_dir", default="runs/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--quick/--full", default=False, show_default=True,
              help="--quick: a one-minute smoke run at tiny size (no accuracy target).")
@click.option("--epochs", type=int, help="Override the number of training epochs.")
@_friendly_errors
def demo_command(out_dir, quick, epochs):
    """The whole library on built-in synthetic scenes: data, training, evaluation, prediction, export.

    Writes OUT/report.md with the metrics table, training curves, sample grids and overlays.
    """
    from skyseg_tf.demo import run_demo

    report = run_demo(out_dir, quick=quick, epochs=epochs)
    click.echo(f"Done. Read {report}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
