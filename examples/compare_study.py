"""Score trained runs side by side, with the study's published numbers as extra rows.

The study ("Sky Segmentation", 2023) fine-tuned two ImageNet models on ADE20K-Outdoors (60/20/20
split, 20 epochs, Dice loss) and reported on the test split:

* U-Net, ResNet50 encoder: IoU 94.89%, AUROC 80.16%;
* DeepLabV3, ResNet50, output stride 8, ASPP rates 12/24/36: IoU 93.92%, AUROC 80.02%.

This script evaluates the models you trained (``train_unet.py``, ``train_deeplabv3.py``, or
any ``.keras`` / SavedModel) on one test split with
:func:`skyseg_tf.evaluation.evaluate_models`, all models side by side, and prints the table
with the study's rows beneath yours. Each RUN may be a run directory (``best.keras`` and
``config.json``, as ``skyseg_tf.training.train`` writes them), a ``.keras`` file or a SavedModel
folder. The data and image size come from the first run's ``config.json`` (a ``.keras`` file's
folder is searched too), else from ``configs/unet_resnet50_ade20k.yaml``; flags override both.

About AUROC: ``auc`` here is the pixel-level ROC AUC of the sky probability. An IoU of 94% with
an AUROC of only 80% is unusual for that definition (a thresholded mask with IoU 94% alone has a
balanced accuracy near 97%), and the study does not define its AUROC, so compare IoU first and
expect our AUC to come out higher.

Run:
    python examples/compare_study.py runs/unet_resnet50 runs/deeplabv3_resnet50
    python examples/compare_study.py runs/unet_resnet50/best.keras runs/deeplabv3_resnet50/best.keras \\
        --out runs/comparison
    python examples/compare_study.py a.keras b.keras --data synthetic --num-examples 100 --image-size 256

The training examples import :func:`comparison_table` (with :data:`STUDY_RESULTS`) and small
helpers from this file, so the study's numbers live in one place.

Example:
    >>> comparison_table([{"name": "unet_resnet50", "model": "unet_resnet50",
    ...                    "metrics": {"iou": 0.95, "auc": 0.99, "dice": 0.97}}]).splitlines()[2]
    '| unet_resnet50 (ours) | 95.00% | 99.00% | 97.00% | +0.11 |'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys

EXAMPLES_DIR = pathlib.Path(__file__).resolve().parent
CONFIG_DIR = EXAMPLES_DIR / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "unet_resnet50_ade20k.yaml"
"""Where the data and image size come from when no run directory says."""

STUDY_TITLE = "Sky Segmentation (2023)"


@dataclasses.dataclass(frozen=True)
class StudyResult:
    """One row of the study's results table (fractions, not percent)."""

    label: str
    iou: float
    auc: float


STUDY_RESULTS = {
    "unet_resnet50": StudyResult("U-Net, ResNet50", iou=0.9489, auc=0.8016),
    "deeplabv3_resnet50": StudyResult("DeepLabV3, ResNet50, OS 8", iou=0.9392, auc=0.8002),
}
"""The study's test-split numbers, keyed by the registry name of our matching model."""

RUN_CONFIG = "config.json"
"""The training config that ``skyseg_tf.training.train`` writes into each run directory."""


# --------------------------------------------------------------------------------------------
# Small helpers shared by the examples (no TensorFlow needed)
# --------------------------------------------------------------------------------------------


def parse_image_size(text: str) -> tuple[int, int]:
    """Parses ``"512"`` or ``"512x384"`` (height x width) for argparse.

    Example:
        >>> parse_image_size("64"), parse_image_size("128x96")
        ((64, 64), (128, 96))
    """
    parts = text.lower().replace(",", "x").split("x")
    try:
        numbers = tuple(int(part) for part in parts)
    except ValueError:
        numbers = ()
    if len(numbers) not in (1, 2) or min(numbers) <= 0:
        raise argparse.ArgumentTypeError(
            f"expected one positive int or HEIGHTxWIDTH (e.g. 512 or 512x384); received {text!r}")
    return numbers * 2 if len(numbers) == 1 else numbers


def read_yaml(path) -> dict:
    """Reads a YAML config file into a dict (the keys of ``skyseg_tf.training.TrainConfig``)."""
    import yaml

    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


def evaluation_source(config: dict) -> tuple:
    """The ``(source, source_kwargs)`` of :func:`~skyseg_tf.evaluation.evaluate_models` for the
    data a training config names (``data`` and ``data_kwargs`` of a ``TrainConfig`` dict).

    Example:
        >>> evaluation_source({"data": "synthetic", "data_kwargs": {"num_examples": 20}})
        ('synthetic', {'num_examples': 20})
        >>> evaluation_source({"data": "folder", "data_kwargs": {"images": "i", "masks": "m"}})
        ({'type': 'folder', 'images': 'i', 'masks': 'm'}, {})
    """
    kwargs = dict(config.get("data_kwargs") or {})
    data = config.get("data", "synthetic")
    if data == "folder":
        return {"type": "folder", **kwargs}, {}
    if data == "synthetic" and "render_size" in kwargs:  # train() names the render size so
        kwargs["image_size"] = kwargs.pop("render_size")
    return data, kwargs


# --------------------------------------------------------------------------------------------
# Finding the models
# --------------------------------------------------------------------------------------------


def find_model(path) -> tuple[pathlib.Path, dict | None]:
    """Resolves a RUN argument to ``(model path, training config dict or None)``.

    A run directory gives its ``best.keras`` and ``config.json``; a ``.keras`` file gives itself
    and the ``config.json`` beside it, if any; any other folder is taken as a SavedModel.

    Raises:
        FileNotFoundError: If ``path`` does not exist, or a run directory lacks ``best.keras``.

    Example:
        >>> find_model("/nonexistent")
        Traceback (most recent call last):
        ...
        FileNotFoundError: '/nonexistent' does not exist; pass a run directory, a .keras file or a SavedModel folder.
    """
    from skyseg_tf.training.train import BEST_MODEL  # best.keras: the best validation IoU

    path = pathlib.Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"{str(path)!r} does not exist; pass a run directory, a .keras file or a SavedModel folder.")
    folder = path if path.is_dir() else path.parent
    config = None
    if (folder / RUN_CONFIG).is_file():
        config = json.loads((folder / RUN_CONFIG).read_text(encoding="utf-8"))
    if path.is_dir() and config is not None:  # a run directory
        if not (path / BEST_MODEL).is_file():
            raise FileNotFoundError(
                f"run directory {str(path)!r} has no {BEST_MODEL} (no epoch finished yet?); rerun the "
                "training with the same run directory to resume it, or pass a model file.")
        return path / BEST_MODEL, config
    return path, config


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


def _percent(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def comparison_table(rows: list[dict]) -> str:
    """A Markdown table: our models (IoU, ROC AUC, Dice, IoU minus the study's), then the study.

    Args:
        rows: One dict per evaluated model: ``name`` (shown), ``model`` (registry name, to find
            the study's matching row, or ``None``) and ``metrics`` (``iou``, ``auc``, ``dice``).

    Returns:
        The table; values in percent, the IoU difference in percentage points.
    """
    lines = ["| model | test IoU | test ROC AUC | test Dice | IoU vs study |",
             "|---|---:|---:|---:|---:|"]
    for row in rows:
        metrics = row["metrics"]
        study = STUDY_RESULTS.get(row.get("model"))
        delta = f"{100 * (metrics['iou'] - study.iou):+.2f}" if study else "-"
        lines.append(f"| {row['name']} (ours) | {_percent(metrics.get('iou'))} | "
                     f"{_percent(metrics.get('auc'))} | {_percent(metrics.get('dice'))} | {delta} |")
    for study in STUDY_RESULTS.values():
        lines.append(f"| {study.label} ({STUDY_TITLE}) | {_percent(study.iou)} | {_percent(study.auc)} | - | - |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


def evaluate_runs(runs, *, source=None, source_kwargs=None, image_size=None, batch_size=8,
                  split="test", max_examples=None, original_resolution=False, out_dir=None,
                  progress=True):
    """Evaluates several runs on one test split, side by side.

    Args:
        runs: Run directories, ``.keras`` files or SavedModel folders (see :func:`find_model`).
        source: A data source spec for ``evaluate_models``; default: the first run's data,
            else the study config's.
        source_kwargs: Its keyword arguments (``{"data_dir": ...}``, ``{"num_examples": ...}``).
        image_size: ``(height, width)`` every model sees; default: the first run's (they must
            agree) or the study config's.
        batch_size: Images per forward pass.
        split: The split to score (``"test"``; TFDS sources also take ``"test[:100]"``).
        max_examples: Score only the first N images.
        original_resolution: Also score at each image's own resolution.
        out_dir: Where ``metrics.md``, ``metrics.json``, the figures and ``comparison.md`` go.
        progress: Show progress bars.

    Returns:
        ``(report, table)``: the :class:`~skyseg_tf.evaluation.EvaluationReport` and the
        comparison table of :func:`comparison_table`.

    Raises:
        FileNotFoundError: A run that does not exist.
        ValueError: Runs trained at different image sizes with no ``image_size`` given, or
            anything ``evaluate_models`` rejects.
    """
    from skyseg_tf.evaluation import evaluate_models
    from skyseg_tf.inference import load_model

    found = [find_model(run) for run in runs]
    configs = [config for _, config in found if config is not None]
    reference = configs[0] if configs else read_yaml(DEFAULT_CONFIG)
    if source is None:
        source, default_kwargs = evaluation_source(reference)
        source_kwargs = {**default_kwargs, **(source_kwargs or {})}
    if image_size is None:
        sizes = {tuple(config["image_size"]) for config in configs}
        if len(sizes) > 1:
            raise ValueError(
                f"the runs were trained at different image sizes {sorted(sizes)}; pass --image-size "
                "to evaluate all of them at one size.")
        image_size = tuple(reference["image_size"])
    # Models are passed as objects, so the table shows their names (unet_resnet50, ...) rather
    # than the file name every run shares (best.keras).
    models = [load_model(path) for path, _ in found]
    report = evaluate_models(
        models, source, split=split, image_size=image_size, batch_size=batch_size,
        original_resolution=original_resolution, max_examples=max_examples, out_dir=out_dir,
        source_kwargs=source_kwargs, progress=progress)
    rows = []
    for evaluation, (_, config) in zip(report.models, found):
        registry_name = config["model"] if config else evaluation.name
        rows.append({"name": evaluation.name, "model": registry_name, "metrics": evaluation.metrics})
    table = comparison_table(rows)
    if out_dir is not None:
        heading = (f"# Test split beside {STUDY_TITLE}\n\n{report.settings['num_images']} images of "
                   f"{report.settings['source']} ({split}) at {image_size[0]}x{image_size[1]}.\n\n")
        (pathlib.Path(out_dir) / "comparison.md").write_text(heading + table + "\n", encoding="utf-8")
    return report, table


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Evaluate trained runs on the test split, side by side, beside the study's numbers.",
        epilog="Defaults for the data and image size come from the first run's config.json.",
    )
    parser.add_argument("runs", nargs="+", metavar="RUN",
                        help="run directory (best.keras + config.json), .keras file or SavedModel folder")
    parser.add_argument("--data", help="data source: ade20k_outdoors_sky[/kaggle|/scene_parse] or synthetic "
                                       "(default: the first run's)")
    parser.add_argument("--data-dir", help="TFDS data_dir of ade20k_outdoors_sky")
    parser.add_argument("--num-examples", type=int, help="synthetic scenes, all splits together (--data synthetic)")
    parser.add_argument("--split", default="test", help="split to score (default: test)")
    parser.add_argument("--image-size", type=parse_image_size, help="model input size, e.g. 512 or 512x512")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass (default: 8)")
    parser.add_argument("--max-examples", type=int, help="score only the first N images")
    parser.add_argument("--original-resolution", action="store_true",
                        help="also score at each image's own resolution")
    parser.add_argument("--out", help="folder for comparison.md, metrics.md, metrics.json and figures")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Parses ``argv``, evaluates, prints the comparison; returns the exit status."""
    args = parse_args(argv)
    source, source_kwargs = None, {}
    if args.data_dir:
        source_kwargs["data_dir"] = args.data_dir
    if args.num_examples:
        source_kwargs["num_examples"] = args.num_examples
    if args.data:
        source = args.data
    try:
        report, table = evaluate_runs(
            args.runs, source=source, source_kwargs=source_kwargs, image_size=args.image_size,
            batch_size=args.batch_size, split=args.split, max_examples=args.max_examples,
            original_resolution=args.original_resolution, out_dir=args.out, progress=not args.quiet)
    except (ValueError, TypeError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    settings = report.settings
    print(f"{settings['num_images']} images, split {settings['split']!r}, "
          f"{settings['image_size'][0]}x{settings['image_size'][1]}\n")
    print(table)
    if args.out:
        print(f"\nWrote {pathlib.Path(args.out) / 'comparison.md'} and the full report "
              f"{report.files['markdown']} (with Pixel acc., Precision, Recall, Boundary F, worst images).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
