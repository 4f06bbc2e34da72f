"""Reproduce the study's U-Net run on ADE20K-Outdoors with one command, then score the test split.

The study ("Sky Segmentation", 2023) fine-tuned a U-Net with an ImageNet ResNet50 encoder on
ADE20K-Outdoors (sky vs other, 60/20/20 split) for 20 epochs with Dice loss and reported a test
IoU of 94.89%. This script does the same in four library calls:

1. ``TrainConfig.from_file("configs/unet_resnet50_ade20k.yaml")``, with the command line's
   overrides applied (``--epochs``, ``--batch-size``...). Every value is checked up front.
2. If the TFDS dataset ``ade20k_outdoors_sky/kaggle`` is not built yet, build it from the Kaggle
   archive in ``--manual-dir``.
3. ``skyseg_tf.training.train(config)``: ``model.fit`` under the ``auto`` strategy (the one GPU,
   all local GPUs, or the workers ``TF_CONFIG`` names), with mixed precision on GPUs. It writes
   ``RUN_DIR/`` (``best.keras`` by validation IoU, history, training curves, TensorBoard logs);
   started again after a crash, it resumes from the last finished epoch.
4. ``skyseg_tf.evaluation.evaluate_models`` scores ``best.keras`` on the test split; the table is
   printed beside the study's numbers and the full report goes to ``RUN_DIR/test_evaluation/``.

The data, once (Kaggle serves the archive only to signed-in users, so TFDS cannot fetch it)::

    pip install kaggle   # and put your API token in ~/.kaggle/kaggle.json
    kaggle datasets download -d residentmario/ade20k-outdoors -p ~/Downloads
    tfds build --imports tfds_ade20k_outdoors ade20k_outdoors_sky/kaggle --manual_dir ~/Downloads

or let this script build it: ``python examples/train_unet.py --manual-dir ~/Downloads``. (In
Python, after ``import skyseg_tf``: ``tfds.load("ade20k_outdoors_sky/kaggle",
download_and_prepare_kwargs={"download_config": tfds.download.DownloadConfig(
manual_dir=os.path.expanduser("~/Downloads"))})``.)

Image size: 512x512, not 256x256 (see the config file): DeepLabV3's ASPP rates 12/24/36 at
output stride 8 were designed for inputs of about 513 px, and the two runs share one size so their
numbers compare. Global batch 8 with mixed precision; pass ``--batch-size 4`` on a small GPU.

Run:
    python examples/train_unet.py                            # GPU machine, dataset built
    python examples/train_unet.py --manual-dir ~/Downloads   # builds the dataset first
    python examples/train_unet.py --data-dir /data/tfds --run-dir runs/unet_b16 --batch-size 16
    python examples/train_unet.py --data synthetic --num-examples 20 --image-size 64 --epochs 1 \\
        --encoder-weights none --batch-size 4 --run-dir /tmp/unet_smoke   # a CPU smoke run

Example:
    >>> main(["--data", "synthetic", "--num-examples", "20", "--image-size", "64", "--epochs",
    ...       "1", "--encoder-weights", "none", "--batch-size", "4"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import os
import sys

from compare_study import CONFIG_DIR, comparison_table, evaluation_source, parse_image_size

DEFAULT_CONFIG = CONFIG_DIR / "unet_resnet50_ade20k.yaml"
DESCRIPTION = ("Reproduce the study's U-Net (ResNet50, ImageNet) run on ADE20K-Outdoors, "
               "then score the test split beside the study's numbers.")
TEST_REPORT_DIR = "test_evaluation"
"""Sub-folder of the run directory that receives the test-split report."""


def build_parser(default_config, description: str) -> argparse.ArgumentParser:
    """The command line shared by ``train_unet.py``, ``train_deeplabv3.py`` and
    ``train_distributed.py``: a config file and flags that override its values.

    Example:
        >>> build_parser(DEFAULT_CONFIG, "x").parse_args(["--image-size", "64"]).image_size
        (64, 64)
    """
    parser = argparse.ArgumentParser(
        description=description,
        epilog="Flags override the config file. Rerun the same command after a crash to resume.",
    )
    parser.add_argument("--config", default=str(default_config),
                        help="YAML or JSON training config (default: %(default)s)")
    parser.add_argument("--data", help="ade20k_outdoors_sky/kaggle (the study's), "
                                       "ade20k_outdoors_sky/scene_parse, another TFDS name, or synthetic")
    parser.add_argument("--data-dir", help="TFDS data_dir (default: TFDS's, ~/tensorflow_datasets)")
    parser.add_argument("--manual-dir", help="folder holding the Kaggle archive; builds the TFDS "
                                             "dataset first if it is not built yet")
    parser.add_argument("--num-examples", type=int, help="synthetic scenes, all splits (--data synthetic)")
    parser.add_argument("--run-dir", help="output folder (default: the config's run_dir)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--steps-per-epoch", type=int, help="limit the steps of each epoch")
    parser.add_argument("--image-size", type=parse_image_size, help="model input size, e.g. 512 or 512x512")
    parser.add_argument("--batch-size", type=int, help="global batch size over all replicas")
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--encoder-weights", help="imagenet, none, or a weights file")
    parser.add_argument("--strategy", help="auto, one_device, mirrored or multi_worker_mirrored")
    parser.add_argument("--mixed-precision", choices=("auto", "on", "off"), default="auto",
                        help="auto (default): the config's setting on a GPU, off on a CPU")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--verbose", type=int, choices=(0, 1, 2),
                        help="1: progress bars, 2: one line per epoch")
    parser.add_argument("--skip-test", action="store_true", help="train only; do not score the test split")
    return parser


def is_tfds(data: str) -> bool:
    """Whether a config's ``data`` names a TFDS dataset (anything but synthetic and folder)."""
    return data not in ("synthetic", "folder")


def config_from_args(args):
    """The config file's :class:`~skyseg_tf.training.TrainConfig` with the flags applied.

    Raises:
        ValueError: An invalid value (``ConfigError`` names the key, the value and what is
            valid) or a flag that does not fit the data source.
    """
    from skyseg_tf.training import TrainConfig

    values = TrainConfig.from_file(args.config).to_dict()
    if args.data == "folder":
        raise ValueError("--data folder: use examples/train_on_folders.py --images DIR --masks DIR.")
    if args.data and args.data != values["data"]:
        values["data"], values["data_kwargs"] = args.data, {}  # the file's kwargs were for its source
    data_kwargs = values["data_kwargs"]
    if args.num_examples is not None:
        if values["data"] != "synthetic":
            raise ValueError(f"--num-examples is for --data synthetic; the data is {values['data']!r}.")
        data_kwargs["num_examples"] = args.num_examples
    if args.data_dir:
        if not is_tfds(values["data"]):
            raise ValueError(f"--data-dir is for TFDS datasets; the data is {values['data']!r}.")
        data_kwargs["data_dir"] = os.path.expanduser(args.data_dir)
    overrides = {"run_dir": args.run_dir, "epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch,
                 "global_batch_size": args.batch_size, "learning_rate": args.learning_rate,
                 "strategy": args.strategy, "seed": args.seed, "verbose": args.verbose}
    values.update({key: value for key, value in overrides.items() if value is not None})
    if args.image_size:
        values["image_size"] = list(args.image_size)
    if args.encoder_weights is not None:
        values["encoder_weights"] = None if args.encoder_weights.lower() == "none" else args.encoder_weights
    return TrainConfig.from_dict(values)


def resolve_mixed_precision(config, choice: str):
    """Applies ``--mixed-precision``: ``auto`` keeps the config's setting only on a GPU."""
    import tensorflow as tf

    if choice != "auto":
        return config.replace(mixed_precision=choice == "on")
    if config.mixed_precision and not tf.config.list_physical_devices("GPU"):
        print("No GPU found: training in float32 (mixed precision only pays off on GPUs).")
        return config.replace(mixed_precision=False)
    return config


def prepare_tfds(name: str, data_dir: str | None, manual_dir: str | None) -> None:
    """Builds a TFDS dataset once; a no-op when it is built already.

    Raises:
        AssertionError: TFDS's own error when the Kaggle archive is not in the manual folder;
            its message holds the download instructions.
    """
    import tensorflow_datasets as tfds

    import skyseg_tf  # noqa: F401  (registers the ade20k_outdoors_sky builder)

    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return
    print(f"Building the TFDS dataset {name} in {builder.data_dir} (once; this takes a while) ...")
    download_config = None
    if manual_dir:
        download_config = tfds.download.DownloadConfig(manual_dir=os.path.expanduser(manual_dir))
    builder.download_and_prepare(download_config=download_config)


def reproduce(argv=None, default_config=DEFAULT_CONFIG, description: str = DESCRIPTION) -> int:
    """Trains a study config, scores its best checkpoint on the test split; returns the exit status.

    ``train_deeplabv3.py`` calls this with its own config file.
    """
    args = build_parser(default_config, description).parse_args(argv)
    # TensorFlow loads only now, so --help stays instant.
    from skyseg_tf.evaluation import evaluate_models
    from skyseg_tf.inference import load_model
    from skyseg_tf.training import TrainingError, get_distribution_strategy, is_chief, train
    from skyseg_tf.training.train import CURVES_PNG

    try:
        config = config_from_args(args)
        # The strategy first: MultiWorkerMirroredStrategy must exist before other TF work.
        strategy = get_distribution_strategy(config.strategy)
        config = resolve_mixed_precision(config, args.mixed_precision)
        if is_tfds(config.data):
            prepare_tfds(config.data, config.data_kwargs.get("data_dir"), args.manual_dir)
    except (ValueError, TypeError, FileNotFoundError, AssertionError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    print(f"Training {config.model} on {config.data} at {config.image_size[0]}x{config.image_size[1]}: "
          f"{config.epochs} epochs, global batch {config.global_batch_size} over "
          f"{strategy.num_replicas_in_sync} replica(s), {config.loss} loss, {config.optimizer} "
          f"lr {config.learning_rate:g}, mixed precision {'on' if config.mixed_precision else 'off'}; "
          f"run directory {config.run_dir}")
    try:
        result = train(config, strategy=strategy)
    except TrainingError as error:  # NaN loss or out of memory; the message says what was kept
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"Best validation IoU {result.best_val_iou:.4f} after {result.epochs_completed} epochs: "
          f"{result.best_model_path}")
    if args.skip_test or not is_chief(strategy):  # one worker scores the test split
        return 0

    source, source_kwargs = evaluation_source(config.to_dict())
    report = evaluate_models(
        [load_model(result.best_model_path)], source, split="test", image_size=config.image_size,
        batch_size=config.global_batch_size, out_dir=os.path.join(result.run_dir, TEST_REPORT_DIR),
        source_kwargs=source_kwargs, progress=config.verbose == 1)
    evaluation = report.models[0]
    print(f"\nTest split: {evaluation.num_images} images\n")
    print(comparison_table([{"name": evaluation.name, "model": config.model, "metrics": evaluation.metrics}]))
    print(f"\nFull report: {report.files['markdown']}; curves: "
          f"{os.path.join(result.run_dir, CURVES_PNG)}")
    return 0


def main(argv=None) -> int:
    """Parses ``argv``, trains the U-Net, scores it; returns the exit status."""
    return reproduce(argv, DEFAULT_CONFIG, DESCRIPTION)


if __name__ == "__main__":
    sys.exit(main())
