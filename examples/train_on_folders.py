"""Train a sky model on your own photos and masks, score it on held-out images, predict them.

Your data: a folder of photos and a folder of masks with the same file names (``a.jpg`` with
``a.png``, or ``a_mask.png`` with ``--mask-suffix _mask``). Masks are either binary (0/255 or 0/1,
sky = the high value) or label maps, where ``--sky-value`` names the sky label (3 in ADE20K
annotations). ``skyseg data synthetic --out my_data`` writes such folders to try this on.

Splits. The folder source splits one folder 60/20/20 into ``train`` / ``validation`` / ``test`` by
a stable hash of each photo's file name (the rule of the ``ade20k_outdoors_sky`` TFDS builder,
:func:`tfds_ade20k_outdoors.split_for_file_name`), so a photo stays in its split when you add
others. Training uses ``train``, picks ``best.keras`` on ``validation``, and this script scores
``best.keras`` on ``test`` and writes masks for the ``test`` photos. With your own held-out folders
(``--val-images DIR --val-masks DIR``) every pair of ``--images`` trains and the held-out folders
are scored instead; ``train()`` takes one data source, so its ``val_*`` numbers and the choice of
``best.keras`` then come from the training pairs themselves.

Steps, one library call each: ``find_image_mask_pairs`` checks the folders;
``skyseg_tf.training.train`` with ``data="folder"`` trains (rerun the same command to resume after
a crash); ``evaluate_models`` scores the held-out pairs; ``predict_paths`` writes masks and
overlays at each photo's own resolution.

Run:
    python examples/train_on_folders.py --images my_data/images --masks my_data/masks
    python examples/train_on_folders.py --images photos --masks labels --sky-value 3 \\
        --predict new_photos/ --run-dir runs/my_sky
    python examples/train_on_folders.py --images train/img --masks train/mask \\
        --val-images val/img --val-masks val/mask --model deeplabv3plus_resnet50 --epochs 30
    python examples/train_on_folders.py --images my_data/images --masks my_data/masks \\
        --model unet_mobilenet_v3_large --encoder-weights none --image-size 64 --epochs 1   # quick CPU try

Example:
    >>> main(["--images", "my_data/images", "--masks", "my_data/masks"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import sys

from compare_study import parse_image_size


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Train a sky segmentation model on your own image and mask folders, score it on "
                    "held-out pairs and predict photos.",
        epilog="Rerun the same command after a crash to resume training.",
    )
    data = parser.add_argument_group("data")
    data.add_argument("--images", required=True, help="folder of photos (.jpg, .jpeg, .png)")
    data.add_argument("--masks", required=True, help="folder of masks with the photos' file names")
    data.add_argument("--sky-value", type=int, nargs="+",
                      help="label(s) meaning sky in label-map masks (ADE20K: 3); default: binary masks")
    data.add_argument("--mask-suffix", default="", help="what mask names add to the photo's, e.g. _mask")
    data.add_argument("--val-images", help="held-out photos (with --val-masks); default: the 20%% test split")
    data.add_argument("--val-masks", help="held-out masks (with --val-images)")
    training = parser.add_argument_group("training")
    training.add_argument("--model", default="unet_resnet50", help="registry name (default: unet_resnet50)")
    training.add_argument("--encoder-weights", default="imagenet", help="imagenet (default), none, or a file")
    training.add_argument("--image-size", type=parse_image_size, default=(256, 256),
                          help="model input size (default: 256x256)")
    training.add_argument("--batch-size", type=int, default=8, help="global batch size (default: 8)")
    training.add_argument("--epochs", type=int, default=20)
    training.add_argument("--learning-rate", type=float, default=1e-4)
    training.add_argument("--loss", default="dice", help="dice (default), bce, bce_dice or focal")
    training.add_argument("--strategy", default="auto", help="auto, one_device, mirrored, multi_worker_mirrored")
    training.add_argument("--mixed-precision", choices=("auto", "on", "off"), default="auto",
                          help="auto (default): on with a GPU")
    training.add_argument("--seed", type=int, default=0, help="seed of shuffling and augmentation")
    training.add_argument("--run-dir", default="runs/folders", help="output folder (default: runs/folders)")
    training.add_argument("--verbose", type=int, choices=(0, 1, 2), default=2)
    output = parser.add_argument_group("prediction")
    output.add_argument("--predict", nargs="+", metavar="PATH",
                        help="photos or folders to predict after training (default: the held-out photos)")
    args = parser.parse_args(argv)
    if (args.val_images is None) != (args.val_masks is None):
        parser.error("give --val-images and --val-masks together")
    return args


def check_split_sizes(pairs, batch_size: int) -> dict:
    """Counts the pairs of each hash split; fails early when a split cannot do its job.

    Returns:
        ``{split: [image paths]}``.

    Raises:
        ValueError: Fewer training pairs than one batch, or an empty validation or test split.
    """
    from tfds_ade20k_outdoors import split_for_file_name

    images = collections.defaultdict(list)
    for image, _ in pairs:
        images[split_for_file_name(image.name)].append(image)
    counts = {split: len(images[split]) for split in ("train", "validation", "test")}
    if counts["train"] < batch_size or not counts["validation"] or not counts["test"]:
        raise ValueError(
            f"the 60/20/20 split of {len(pairs)} pairs gives {counts}; training needs at least one "
            f"batch ({batch_size}) and validation and test at least one pair each. Add pairs, lower "
            "--batch-size, or pass held-out folders with --val-images/--val-masks.")
    return images


def main(argv=None) -> int:
    """Parses ``argv``, trains, scores the held-out pairs, predicts; returns the exit status."""
    args = parse_args(argv)
    import tensorflow as tf

    from skyseg_tf.data.folder import find_image_mask_pairs
    from skyseg_tf.evaluation import evaluate_models
    from skyseg_tf.inference import load_model, predict_paths
    from skyseg_tf.training import TrainConfig, TrainingError, train

    # Arguments of skyseg_tf.data.folder_dataset, shared by training and scoring.
    folder_kwargs = {"mask_suffix": args.mask_suffix} if args.mask_suffix else {}
    if args.sky_value:
        folder_kwargs["sky_value"] = args.sky_value
    try:
        # Checks the folders now: unmatched or duplicate names fail here with a list of files.
        pairs = find_image_mask_pairs(args.images, args.masks, mask_suffix=args.mask_suffix)
        if args.val_images:
            find_image_mask_pairs(args.val_images, args.val_masks, mask_suffix=args.mask_suffix)
            train_kwargs = {**folder_kwargs, "split": None}  # every pair trains (and "validates")
            held_out = {"type": "folder", "images": args.val_images, "masks": args.val_masks,
                        **folder_kwargs, "split": None}
            held_out_photos = [args.val_images]
            num_train = len(pairs)
        else:
            train_kwargs = dict(folder_kwargs)  # the pipeline asks the folder for each split by name
            held_out = {"type": "folder", "images": args.images, "masks": args.masks, **folder_kwargs}
            by_split = check_split_sizes(pairs, args.batch_size)
            held_out_photos = [str(path) for path in by_split["test"]]
            num_train = len(by_split["train"])
        config = TrainConfig(
            model=args.model,
            encoder_weights=None if args.encoder_weights.lower() == "none" else args.encoder_weights,
            data="folder",
            data_kwargs={"images": args.images, "masks": args.masks, **train_kwargs},
            image_size=tuple(args.image_size),
            global_batch_size=args.batch_size,
            epochs=args.epochs,
            learning_rate=args.learning_rate,
            loss=args.loss,
            strategy=args.strategy,
            mixed_precision=args.mixed_precision == "on" or (
                args.mixed_precision == "auto" and bool(tf.config.list_physical_devices("GPU"))),
            seed=args.seed,
            run_dir=args.run_dir,
            verbose=args.verbose,
        )
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    print(f"Training {config.model} on {num_train} of {len(pairs)} pairs in {args.images} at "
          f"{config.image_size[0]}x{config.image_size[1]} for {config.epochs} epochs -> {config.run_dir}")
    try:
        result = train(config)
    except TrainingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    model = load_model(result.best_model_path)

    run_dir = pathlib.Path(result.run_dir)
    report = evaluate_models(
        [model], held_out, split="test", image_size=config.image_size,
        batch_size=config.global_batch_size, out_dir=run_dir / "test_evaluation", progress=False)
    evaluation = report.models[0]
    metrics = evaluation.metrics
    print(f"Held-out score on {evaluation.num_images} pairs: IoU {metrics['iou']:.4f}, ROC AUC "
          f"{metrics['auc']:.4f}, Dice {metrics['dice']:.4f}, boundary F {metrics['boundary_f']:.4f} "
          f"(report: {report.files['markdown']})")

    # "resize" shows each photo to the model at the training size, as in training; the outputs
    # are written at the photo's own resolution.
    summary = predict_paths(model, args.predict or held_out_photos, run_dir / "predictions",
                            save=("mask", "overlay"), mode="resize", input_size=config.image_size,
                            progress=False, overwrite=True)  # this run's model: replace older masks
    print(f"Predictions in {run_dir / 'predictions'}: {summary}")
    print(f"Best model: {result.best_model_path}")
    return 0 if summary.ok else 1


if __name__ == "__main__":
    sys.exit(main())
